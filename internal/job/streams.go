package job

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/fds"
)

// streams are the descriptors a job shares with the rest of its build: the
// toplevel's original stdout and stderr, and the parent job's control channel.
type streams struct {
	stdout, stderr *os.File
	// parent is the request pipe of the job that started this one, or nil.
	parent *os.File
}

// openStreams finds the build's streams: a toplevel keeps copies of its own
// stdout and stderr, a subtask opens the descriptors it inherited. Every
// descriptor is made close-on-exec: the task gets the ones it needs
// explicitly, and nothing else leaks into it.
func openStreams(s *config.Settings) (*streams, error) {
	if s.Toplevel() {
		out, err := dupCloexec(1, "stdout")
		if err != nil {
			return nil, err
		}
		errf, err := dupCloexec(2, "stderr")
		if err != nil {
			return nil, err
		}
		return &streams{stdout: out, stderr: errf}, nil
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

// dupCloexec returns a private copy of descriptor fd, so that writing to a
// closed reader is an error to ignore rather than a SIGPIPE. A closed
// descriptor becomes /dev/null.
func dupCloexec(fd int, name string) (*os.File, error) {
	nfd, err := dupfd(fd)
	if err != nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("cannot open %s: %w", os.DevNull, err)
		}
		return f, nil
	}
	return os.NewFile(uintptr(nfd), name), nil
}

func dupfd(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 3)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
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
