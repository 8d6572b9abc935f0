package state

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/taskrunner/taskrunner/internal/flock"
)

// Holder is who holds a job's lock, as the holder recorded it in the lock
// file: one JSON line such as
//
//	{"pid":1234,"build":"2026-11-30T08:12:34.123456Z","since":"2026-11-30T08:12:34Z"}
//
// The record only informs a waiter: the flock is what excludes, and a
// record may be missing, torn, or for a moment left by an earlier holder.
type Holder struct {
	PID   int       `json:"pid"`
	Build string    `json:"build"`
	Since time.Time `json:"since"`
}

// maxHolderRecord bounds what LockHolder reads: a record is far shorter.
const maxHolderRecord = 4 << 10

// JobLock is a job's lock, held.
type JobLock struct {
	f *os.File
}

// Lock takes the exclusive lock of job for build, waiting for it as long as
// it takes or until ctx ends. The lock is an flock(2) on locks/<job>.lock:
// it excludes every other holder of that lock in any process on the
// machine, whatever its build. The kernel releases it when the holder
// exits, however it exits, and when every process that inherited it (see
// File) has exited too: a killed taskrunner never leaves a stale lock, and
// the task it ran holds the lock as long as any of its processes lives.
// When another holder has the lock, waiting (if not nil) is called once,
// before Lock starts to wait. Once it holds the lock, Lock records this
// process, build and the time in the lock file (see Holder), as best it
// can.
func (d Dir) Lock(ctx context.Context, job, build string, waiting func()) (*JobLock, error) {
	f, err := flock.LockFile(ctx, d.LockPath(job), 0o644, waiting)
	if err != nil {
		return nil, err
	}
	rec, _ := json.Marshal(Holder{PID: os.Getpid(), Build: build, Since: time.Now().UTC().Truncate(time.Second)})
	// Through the locked descriptor: the flock is on this inode, and a
	// record that fails to be written only leaves the holder unknown.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt(append(rec, '\n'), 0)
	}
	return &JobLock{f: f}, nil
}

// File is the locked file, close-on-exec, for a task to inherit: a process
// that holds a copy of its descriptor holds the lock with this one, even
// after this process exits, until Unlock.
func (l *JobLock) File() *os.File { return l.f }

// Unlock clears the record and releases the lock, for the processes that
// inherited it too.
func (l *JobLock) Unlock() {
	_ = l.f.Truncate(0)
	_ = flock.Unlock(l.f)
	l.f.Close()
}

// LockHolder returns who holds the lock of job, as its holder recorded it,
// and false when that is unknown: no lock file, an empty or torn record,
// or one that does not name a process, a printable build and a time. A process that
// held the lock and was killed leaves its record until the next holder
// writes its own, so the answer may be stale for a moment.
func (d Dir) LockHolder(job string) (Holder, bool) {
	f, err := os.Open(d.LockPath(job))
	if err != nil {
		return Holder{}, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHolderRecord))
	if err != nil {
		return Holder{}, false
	}
	var h Holder
	if json.Unmarshal(b, &h) != nil || h.PID <= 0 || h.Since.IsZero() {
		return Holder{}, false
	}
	if !printable(h.Build) {
		return Holder{}, false
	}
	return h, true
}

// printable reports whether a recorded build id is fit to print: short,
// and visible ASCII only, so that a forged record cannot write escape
// sequences to a terminal.
func printable(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
