// Package flock is taskrunner's one file lock: an exclusive flock(2) that
// a waiter can give up on.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive flock(2) on path, creating the file with perm if
// need be, and waits for it as long as ctx allows. The lock excludes every
// other holder of a lock on that file, in this process or any other on the
// machine, since each call opens the file anew; the kernel releases it when
// the holder exits, however it exits, so a killed process never leaves it
// held. The file is close-on-exec: no child inherits the lock. The
// returned function releases it.
func Lock(ctx context.Context, path string, perm os.FileMode) (unlock func(), err error) {
	f, err := LockFile(ctx, path, perm, nil)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// LockFile takes the lock as Lock does, for a holder that writes in the
// lock file or shares the lock with a child: it returns the file, open for
// reading and writing, and closing it releases the lock unless a child
// holds a copy of the descriptor. The lock belongs to the open file, not to
// the process: a child that inherits the descriptor (exec.Cmd's ExtraFiles)
// holds the lock with its parent, and it stays held until Unlock, or until
// the parent and every such child have closed it or exited. The lock is
// on the file's inode, so a holder must write through this file and never
// replace it. When another holder has the lock, waiting (if not nil) is
// called once, before LockFile starts to wait.
func LockFile(ctx context.Context, path string, perm os.FileMode, waiting func()) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, fmt.Errorf("cannot open the lock: %w", err)
	}
	fd := int(f.Fd())
	if err := flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return f, nil
	} else if !errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	if waiting != nil {
		waiting()
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
		return f, nil
	case <-ctx.Done():
		// Closing the file drops the lock if the goroutine gets it later.
		go func() { <-done; f.Close() }()
		return nil, fmt.Errorf("waiting for the lock %s: %w", path, ctx.Err())
	}
}

// Hold takes an exclusive flock(2) on the open file f, which may be a
// folder, waiting as long as it takes, for a holder that locks and unlocks
// the same file many times. Unlock releases it.
func Hold(f *os.File) error {
	return flock(int(f.Fd()), syscall.LOCK_EX)
}

// Unlock releases the lock that LockFile or Hold took through f, at once, for the
// children that share it too. It leaves f open.
func Unlock(f *os.File) error {
	return flock(int(f.Fd()), syscall.LOCK_UN)
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// Shared takes a shared flock(2) on path, which must exist and may be a
// folder, waiting for it as long as it takes. Any number of holders, in any
// processes, share it; it excludes an exclusive lock on the same file (see
// TryExclusive). It stays on the file's inode, so it follows the file
// through a rename. The kernel releases it when the holder exits, however it
// exits; the file is close-on-exec. The returned function releases it.
func Shared(path string) (unlock func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open the lock: %w", err)
	}
	if err := flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// TryExclusive takes an exclusive flock(2) on path, which must exist and may
// be a folder, if nobody holds a lock on it, shared or exclusive; it never
// waits. held reports that someone does. With held false and err nil, the
// caller holds the lock until it calls unlock.
func TryExclusive(path string) (unlock func(), held bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	err = flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, true, nil
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	return func() { f.Close() }, false, nil
}
