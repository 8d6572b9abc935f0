package cli

import (
	"fmt"
	"os"
	"syscall"
)

// toplevelStreams returns private copies of the process's stdout and
// stderr, for a toplevel job to write to and pass down to its task: on a
// copy, writing to a closed reader is an error to ignore rather than a
// SIGPIPE that kills taskrunner. A closed descriptor becomes /dev/null. The
// copies are close-on-exec: the task gets them explicitly.
func toplevelStreams() (stdout, stderr *os.File, err error) {
	if stdout, err = dupCloexec(1, "stdout"); err != nil {
		return nil, nil, err
	}
	if stderr, err = dupCloexec(2, "stderr"); err != nil {
		stdout.Close()
		return nil, nil, err
	}
	return stdout, stderr, nil
}

// dupCloexec returns a private copy of descriptor fd, or /dev/null when fd
// is closed.
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
