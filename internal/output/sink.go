// Package output turns a job's output into the lines a user reads: each line
// prefixed with the job's name and stream, written whole to the toplevel's
// stdout or stderr, copied to the job's log file, and held back in quiet mode.
package output

import (
	"io"
	"os"
	"sync"

	"github.com/taskrunner/taskrunner/internal/flock"
)

// Sink is one of the toplevel's original streams. Every taskrunner process
// of a build writes to the same two sinks, so a Sink writes whole lines only
// and never interleaves with another writer within a line.
type Sink struct {
	f    *os.File
	lock *WriteLock
	pipe bool
	// err is the first write that failed, guarded by lock.
	err error
}

// NewSink returns a sink writing to f, serialised by lock.
func NewSink(f *os.File, lock *WriteLock) *Sink {
	fi, err := f.Stat()
	pipe := err == nil && fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0
	return &Sink{f: f, lock: lock, pipe: pipe}
}

// Write writes b, which holds whole lines, in one piece. Once a write has
// failed, the sink writes nothing more and returns that first error again:
// a reader that went away does not come back, and a full disk must not get
// the tail of the output without its middle. What to do about the error
// (EPIPE or another) is the caller's choice.
func (s *Sink) Write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	unlock := s.lock.lock(s.pipe)
	defer unlock()
	if s.err != nil {
		return s.err
	}
	_, s.err = s.f.Write(b)
	return s.err
}

// Writer returns the sink as an io.Writer of whole lines that reports no
// error, for text that must reach the toplevel as it is (the
// `::add-mask::` lines GitHub Actions reads).
func (s *Sink) Writer() io.Writer { return sinkWriter{s} }

type sinkWriter struct{ s *Sink }

func (w sinkWriter) Write(b []byte) (int, error) {
	_ = w.s.Write(b)
	return len(b), nil
}

// WriteLock serialises writes to the toplevel's streams across the goroutines
// of this process and, where the streams are pipes, across the processes of
// the build. A write of at most PIPE_BUF bytes to a pipe is atomic, and so is
// any write to a regular file or terminal, but a longer line written to a
// pipe could be split by another process's write: for pipes, every writer
// therefore also takes an flock(2) on the build's folder, which each process
// opens for itself.
type WriteLock struct {
	mu sync.Mutex
	// dir is the build folder, opened by this process, or nil.
	dir *os.File
}

// NewWriteLock returns a lock using the folder at buildDir across processes.
// When the folder cannot be opened, writes are serialised within this
// process only.
func NewWriteLock(buildDir string) *WriteLock {
	dir, _ := os.Open(buildDir)
	return &WriteLock{dir: dir}
}

func (l *WriteLock) lock(pipe bool) func() {
	l.mu.Lock()
	if l.dir == nil || !pipe {
		return l.mu.Unlock
	}
	_ = flock.Hold(l.dir)
	return func() {
		_ = flock.Unlock(l.dir)
		l.mu.Unlock()
	}
}
