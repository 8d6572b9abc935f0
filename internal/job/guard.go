package job

// A task must not outlive its taskrunner, however it dies, nor run twice at
// once. Two things see to it on Linux:
//
//   - The task inherits the job's lock (fds.Lock in the task), so the
//     lock stays held while any process of the task holds it, even once
//     taskrunner is gone: a new run of the job waits for the leftovers of
//     the last one to end. taskrunner releases it for all of them when it
//     ends of its own accord.
//   - The build's watchdog (package watchdog) kills the task's process
//     group with SIGKILL when its taskrunner dies without saying it is
//     done, which ends the leftovers within a moment.

import (
	"errors"

	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/watchdog"
)

// startWatchdog starts the build's watchdog, in the toplevel, without
// waiting for it. A failure only leaves the tasks unguarded: the first
// task that would be says so in a debug line.
func (r *run) startWatchdog() {
	r.guard, r.guardErr = watchdog.Start(r.state.WatchdogPath(r.buildID))
}

// guardTask has the build's watchdog kill the task's process group, pgid,
// should this taskrunner die before endGuard.
func (r *run) guardTask(pgid int) {
	if r.guard == nil && r.guardErr == nil {
		r.guard, r.guardErr = watchdog.Dial(r.state.WatchdogPath(r.buildID))
	}
	err := r.guardErr
	if err == nil {
		err = r.guard.Guard(pgid)
	}
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		r.out.Printf(output.Debug, "no watchdog guards the task, which a killed taskrunner would leave running: %v", err)
	}
}

// endGuard tells the watchdog that this taskrunner ends of its own accord.
func (r *run) endGuard() {
	if r.guard != nil {
		r.guard.Done()
	}
}
