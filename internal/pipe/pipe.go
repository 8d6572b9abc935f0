// Package pipe reads the read ends of pipes that a task may never close: a
// background process can inherit the write end and hold it open long after
// the task has exited, so end of file cannot be the only way to stop. A
// Reader reads one pipe; a Mux copies several in one goroutine, in the
// order their data came as far as the kernel can tell.
package pipe

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// maxDrain bounds what Read passes on after Stop, so that a background
// process writing without pause cannot keep the reader going forever.
const maxDrain = 16 << 20

// Reader reads a pipe until end of file, or until Stop: from then on it
// passes on only what the pipe already holds, without waiting, and then
// reports io.EOF.
type Reader struct {
	f        *os.File
	draining bool
	drained  int
	closed   atomic.Bool // the writers closed the pipe: end of file was read
}

// NewReader returns a reader of the pipe f, which must be in non-blocking
// mode (as os.Pipe makes it).
func NewReader(f *os.File) *Reader { return &Reader{f: f} }

// Stop makes Read stop waiting for more data. It may be called from any
// goroutine.
func (r *Reader) Stop() { _ = r.f.SetReadDeadline(time.Now()) }

// Closed reports whether every writer had closed the pipe when reading
// stopped.
func (r *Reader) Closed() bool { return r.closed.Load() }

// Close closes the pipe.
func (r *Reader) Close() error { return r.f.Close() }

// Read reads from the pipe.
func (r *Reader) Read(p []byte) (int, error) {
	if !r.draining {
		n, err := r.f.Read(p)
		if err == io.EOF {
			r.closed.Store(true)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		// The poller reports a passed deadline without reading, so clear
		// it and read what the pipe holds with non-blocking reads.
		r.draining = true
		if err := r.f.SetReadDeadline(time.Time{}); err != nil {
			return n, io.EOF
		}
	}
	if r.drained >= maxDrain {
		return 0, io.EOF
	}
	rc, err := r.f.SyscallConn()
	if err != nil {
		return 0, io.EOF
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true // never wait
	})
	if err != nil || rerr != nil || n <= 0 {
		if err == nil && rerr == nil && n == 0 {
			r.closed.Store(true)
		}
		return 0, io.EOF
	}
	r.drained += n
	return n, nil
}
