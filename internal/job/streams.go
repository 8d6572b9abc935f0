package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/taskrunner/taskrunner/internal/fds"
)

// streams are the descriptors a job shares with the rest of its build: the
// toplevel's original stdout and stderr, and the parent job's control channel.
type streams struct {
	stdout, stderr *os.File
	// parent is the request pipe of the job that started this one, or nil.
	parent *os.File
}

// openStreams finds the build's streams: a toplevel has the copies of its
// own stdout and stderr that its caller made (see Options), a subtask opens
// the descriptors it inherited. Every descriptor is made close-on-exec: the
// task gets the ones it needs explicitly, and nothing else leaks into it.
func openStreams(opt Options) (*streams, error) {
	s := opt.Settings
	if s.Toplevel() {
		if opt.Stdout == nil || opt.Stderr == nil {
			return nil, errors.New("a toplevel job needs its stdout and stderr")
		}
		return &streams{stdout: opt.Stdout, stderr: opt.Stderr}, nil
	}
	in := s.Inherited
	out, err := inherited(in.ToplevelStdout, fds.EnvToplevelStdout)
	if err != nil {
		return nil, err
	}
	errf, err := inherited(in.ToplevelStderr, fds.EnvToplevelStderr)
	if err != nil {
		return nil, err
	}
	st := &streams{stdout: out, stderr: errf}
	if in.RequestPipe >= 0 {
		// A parent that is gone only costs its debug lines.
		st.parent, _ = inherited(in.RequestPipe, fds.EnvRequestPipe)
	}
	if in.ResponsePipe >= 0 {
		syscall.CloseOnExec(in.ResponsePipe)
	}
	return st, nil
}

// inherited opens a descriptor named by the variable name.
func inherited(fd int, name string) (*os.File, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%s=%d names no open file (%v): was taskrunner started by a task of another build?", name, fd, err)
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name), nil
}

// tellParent writes a debug request to the parent job's control channel.
func (s *streams) tellParent(text string) {
	if s.parent == nil {
		return
	}
	b, _ := json.Marshal([]string{"debug", text})
	_, _ = s.parent.Write(append(b, '\n'))
}
