package job

// The failures of a job's phases. Each phase (set up, run, after, the final
// status, saving a success, recording the result) returns its failure as an
// error; fail, the one place they reach, prints it as the job's error line
// and turns it into the job's exit status. Failures before the job holds
// its lock and has its output are returned by Run, for the command line to
// print.

import (
	"context"
	"errors"

	"github.com/taskrunner/taskrunner/internal/output"
)

// ExitError is the failure of a phase that ends the job with Status, as
// the old tool ended it: 127 for a command not found, 126 for one that
// cannot run, or a post-unpack command's own status.
type ExitError struct {
	Status int
	Err    error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// errStopped is a phase cut short by the stop signal. It prints nothing:
// the signal's exit status says it all.
var errStopped = errors.New("stopped by a signal")

// stopCause returns errStopped for err when the stop signal caused it,
// cancelling the root context, and err otherwise.
func (r *run) stopCause(err error) error {
	if err != nil && r.stopped() != nil && errors.Is(err, context.Canceled) {
		return errStopped
	}
	return err
}

// fail prints err, the failure of a phase, as the job's error line and
// returns the job's exit status: an ExitError's, or else status, and 1 for
// a status that was a success. A nil err leaves status as it is.
func (r *run) fail(status int, err error) int {
	if err == nil {
		return status
	}
	r.report(err)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Status
	}
	if status == 0 {
		return 1
	}
	return status
}

// report prints err as the job's error line, one per line of its text,
// unless the stop signal caused it.
func (r *run) report(err error) {
	if errors.Is(err, errStopped) {
		return
	}
	r.out.Printf(output.Error, "%v", err)
}
