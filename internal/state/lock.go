package state

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Lock takes the exclusive lock of job, waiting for it as long as it takes or
// until ctx ends. The lock is an flock(2) on locks/<job>.lock: it excludes
// every other holder of that lock in any process on the machine, whatever its
// build, and the kernel releases it when the holder exits, however it exits,
// so a killed taskrunner never leaves a stale lock. The returned function
// releases it.
func (d Dir) Lock(ctx context.Context, job string) (unlock func(), err error) {
	return lockFile(ctx, d.LockPath(job))
}

func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock: %w", err)
	}
	fd := int(f.Fd())
	if err := flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return func() { f.Close() }, nil
	}
	// Someone holds it: block in a goroutine so that ctx can end the wait.
	done := make(chan error, 1)
	go func() { done <- flock(fd, syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: %w", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		// Closing the file drops the lock if the goroutine gets it later.
		go func() { <-done; f.Close() }()
		return nil, ctx.Err()
	}
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if err != syscall.EINTR {
			return err
		}
		time.Sleep(0)
	}
}
