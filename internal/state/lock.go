package state

import (
	"context"

	"github.com/taskrunner/taskrunner/internal/flock"
)

// Lock takes the exclusive lock of job, waiting for it as long as it takes or
// until ctx ends. The lock is an flock(2) on locks/<job>.lock: it excludes
// every other holder of that lock in any process on the machine, whatever its
// build, and the kernel releases it when the holder exits, however it exits,
// so a killed taskrunner never leaves a stale lock. The returned function
// releases it.
func (d Dir) Lock(ctx context.Context, job string) (unlock func(), err error) {
	return flock.Lock(ctx, d.LockPath(job), 0o644)
}
