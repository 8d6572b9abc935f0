package job

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/state"
)

// lockWarnAfter is how long a task waits for its lock before it says so in
// a warn line, which shows without TASKRUNNER_DEBUG: long enough that a
// task queued behind a short one stays quiet, short enough that two builds
// waiting for each other's locks are seen to.
const lockWarnAfter = 5 * time.Second

// lock takes the job's lock, waiting for it as long as it takes or until
// ctx ends. A job that has to wait says so at once in a debug line, and
// again in a warn line once it has waited lockWarnAfter, each naming the
// holder of the lock as the holder recorded it. The task inherits the lock
// (see start), so that it stays held while any process of the task lives,
// even if taskrunner is killed.
func (r *run) lock(ctx context.Context) (unlock func(), err error) {
	name := r.opt.Name
	stop := make(chan struct{})
	var warner sync.WaitGroup
	waiting := func() {
		if r.openOutput() != nil {
			return // the same error ends the job once it holds the lock
		}
		h, ok := r.state.LockHolder(name)
		r.out.Printf(output.Debug, "waiting for the lock of %s, held by %s", name, holderText(h, ok, time.Now()))
		warner.Add(1)
		go func() {
			defer warner.Done()
			t := time.NewTimer(lockWarnAfter)
			defer t.Stop()
			select {
			case <-t.C:
			case <-stop:
				return
			}
			// Read again: the holder may have changed, or have written its
			// record since.
			h, ok := r.state.LockHolder(name)
			r.out.Printf(output.Warn, "waiting for task %s: its lock is held by %s", name, holderWarnText(h, ok, time.Now()))
		}()
	}
	l, err := r.state.Lock(ctx, name, r.buildID, waiting)
	close(stop)
	warner.Wait()
	if err != nil {
		return nil, err
	}
	r.lockFile = l.File()
	return l.Unlock, nil
}

// closeWaitOutput closes the output that the wait for the lock opened, if
// it did, when the job ends without running. Its log then holds only the
// wait's lines, whose loss is not worth an error.
func (r *run) closeWaitOutput(failed bool) {
	if r.out != nil {
		_ = r.out.Close(failed)
	}
}

// holderText names the holder of a lock for the debug line:
// "pid 1234 of build B since 08:12:34 UTC".
func holderText(h state.Holder, ok bool, now time.Time) string {
	if !ok {
		return "an unknown process"
	}
	return fmt.Sprintf("pid %d of build %s since %s", h.PID, h.Build, sinceText(h.Since, now))
}

// holderWarnText names the holder of a lock for the warn line:
// "pid 1234 (build B) since 08:12:34 UTC".
func holderWarnText(h state.Holder, ok bool, now time.Time) string {
	if !ok {
		return "an unknown process"
	}
	return fmt.Sprintf("pid %d (build %s) since %s", h.PID, h.Build, sinceText(h.Since, now))
}

// sinceText is a time of today (UTC) as "08:12:34 UTC", and one of another
// day as "2026-11-29 08:12:34 UTC".
func sinceText(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if y, m, d := t.Date(); now.Year() == y && now.Month() == m && now.Day() == d {
		return t.Format("15:04:05 UTC")
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}
