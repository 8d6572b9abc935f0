package flock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestExcludesAndReleases: a second holder waits until the first unlocks.
func TestExcludesAndReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func())
	go func() {
		u, err := Lock(context.Background(), path, 0o600)
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("a second holder got the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("the second holder did not get the lock once it was released")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// TestGiveUp: a waiter whose context ends gets the context's error, and
// does not hold the lock afterwards.
func TestGiveUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path, 0o644); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with an ended context = %v, want DeadlineExceeded", err)
	}
	unlock()
	u, err := Lock(context.Background(), path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	u()
}

// TestOtherProcess: the lock excludes another process, here flock(1).
func TestOtherProcess(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) is not on this machine")
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("flock", "-n", path, "true").Run(); err == nil {
		t.Fatal("another process took the lock while it was held")
	}
	unlock()
	if err := exec.Command("flock", "-n", path, "true").Run(); err != nil {
		t.Fatalf("another process could not take the released lock: %v", err)
	}
}

// TestLockFileWaiting: LockFile calls waiting only when another holder has
// the lock, and closing its file releases the lock.
func TestLockFileWaiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	calls := 0
	f, err := LockFile(context.Background(), path, 0o644, func() { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Errorf("waiting called %d times for a free lock, want 0", calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := LockFile(ctx, path, 0o644, func() { calls++ }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockFile of a held lock = %v, want DeadlineExceeded", err)
	}
	if calls != 1 {
		t.Errorf("waiting called %d times for a held lock, want 1", calls)
	}
	f.Close()
	u, err := Lock(context.Background(), path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	u()
}

// TestSharedExcludesExclusive: shared holders of a folder's lock coexist,
// keep TryExclusive out while any of them holds it, and keep it through a
// rename of the folder.
func TestSharedExcludesExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	first, err := Shared(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Shared(dir)
	if err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(filepath.Dir(dir), "b")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	for _, release := range []func(){first, second} {
		if _, held, err := TryExclusive(moved); err != nil || !held {
			t.Fatalf("TryExclusive while shared = held %v, %v; want held", held, err)
		}
		release()
	}
	unlock, held, err := TryExclusive(moved)
	if err != nil || held {
		t.Fatalf("TryExclusive once released = held %v, %v; want the lock", held, err)
	}
	if _, held, _ := TryExclusive(moved); !held {
		t.Error("a second TryExclusive got the lock while the first held it")
	}
	unlock()
	if _, held, err := TryExclusive(filepath.Join(t.TempDir(), "none")); err == nil || held {
		t.Errorf("TryExclusive of a missing file = held %v, %v; want an error", held, err)
	}
}

// TestSharedWithChild: a child that inherits the locked file holds the lock
// after its parent has closed it, until it exits; Unlock releases it for
// the child too.
func TestSharedWithChild(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) is not on this machine")
	}
	free := func(path string) bool { return exec.Command("flock", "-n", path, "true").Run() == nil }
	for _, unlock := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "x.lock")
		f, err := LockFile(context.Background(), path, 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The child holds the lock until its stdin closes.
		child := exec.Command("sh", "-c", "cat >/dev/null")
		in, err := child.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		child.ExtraFiles = []*os.File{f}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		if unlock {
			if err := Unlock(f); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		if got := free(path); got != unlock {
			t.Errorf("with Unlock %v, the lock is free = %v while the child runs", unlock, got)
		}
		in.Close()
		if err := child.Wait(); err != nil {
			t.Fatal(err)
		}
		if !free(path) {
			t.Errorf("with Unlock %v, the lock is still held once the child has exited", unlock)
		}
	}
}
