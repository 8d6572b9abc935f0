package job

import (
	"time"

	"github.com/taskrunner/taskrunner/internal/snapshot"
	"github.com/taskrunner/taskrunner/internal/state"
	"github.com/taskrunner/taskrunner/internal/trace"
)

// Outcomes of a job run, as the trace and the summary name them.
const (
	OutcomeRan         = "ran"
	OutcomeSkipped     = "skipped"
	OutcomeRestored    = "restored"
	OutcomeFuzzy       = "fuzzy"
	OutcomeFailed      = "failed"
	OutcomeAlreadyDone = "already-done"
)

// openTrace starts recording this process's part of the build trace. A
// trace that cannot be written costs the build nothing but the trace.
func (r *run) openTrace() {
	start, ok := state.ParseBuildID(r.buildID)
	if !ok {
		start = r.started
	}
	rec, err := trace.Open(r.state.Build(r.buildID), start)
	if err != nil {
		return
	}
	r.trace = rec
	if s := rec.Start(); r.started.Before(s) {
		// The toplevel started a moment before the build it made.
		r.started = s
	}
}

// phase marks a phase of the job in the trace.
func (r *run) phase(name string) func() { return r.trace.Phase(name) }

// recordBegin marks the job as begun, once it holds its lock: a job that
// begins and never ends was killed. The lane is named here, not when the
// process starts, so that a taskrunner that never got its lock (a signal
// while it waited) leaves no empty lane.
func (r *run) recordBegin() {
	r.trace.Lane(r.opt.Name)
	r.trace.Begin(r.opt.Name, r.started)
}

// recordJob writes the job's own event: its whole run, its outcome, exit
// status, cache bytes, and why it ran.
func (r *run) recordJob(status int, outcome string) {
	if r.trace == nil {
		return
	}
	args := map[string]any{"outcome": outcome, "exit": status}
	if r.remote != nil {
		args["cacheBytes"] = r.remote.Transferred()
	}
	if r.snap != nil {
		if reason := r.snap.After().Reason; reason != "" {
			args["reason"] = reason
		} else if outcome == OutcomeRan || outcome == OutcomeFailed {
			if !r.snap.Called() {
				args["reason"] = snapshot.ReasonNoSnapshot
			}
		}
	}
	r.trace.Complete(r.opt.Name, trace.CatJob, r.started, time.Now(), args)
	r.trace.Close()
}

// outcome names how a job that got past its lock ended.
func outcome(a snapshot.After, status int) string {
	switch {
	case status != 0:
		return OutcomeFailed
	case a.Restored:
		return OutcomeRestored
	case a.Skipped:
		return OutcomeSkipped
	case a.Fuzzy:
		return OutcomeFuzzy
	}
	return OutcomeRan
}
