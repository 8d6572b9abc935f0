package pipe

import (
	"errors"
	"io"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Mux copies several pipes, each to its own writer, in one goroutine, so
// that what the pipes hold reaches the writers in the order it was read: a
// task's stdout and stderr, written one after the other, keep that order.
//
// The kernel cannot tell which of two pipes was written first once both
// hold data; the Mux then reads them in the order they were added, one read
// each in turn (stdout before stderr, as the old tool in effect did). So a
// write to a pipe added earlier followed by one to a pipe added later always
// keeps its order; the other way round, it keeps it unless both are waiting
// when the Mux looks.
//
// Each pipe ends on its own: at end of file, when its writer returns an
// error, or after Stop, which behaves as Reader.Stop does.
//
// The zero Mux has no pipes and is ready to use.
type Mux struct {
	streams []*Stream
	// wakeR and wakeW make the goroutine blocked in poll(2) look at its
	// streams again: Stop writes a byte to wakeW. Without them (no
	// descriptor left to make them), it looks every 100 ms.
	wakeR, wakeW *os.File
	started      bool
}

// Stream is one pipe of a Mux.
type Stream struct {
	mux  *Mux
	f    *os.File
	fd   int
	w    io.Writer
	done chan struct{}

	stop atomic.Bool // Stop was called

	// Owned by the Mux's goroutine until done is closed.
	closed bool  // the writers closed the pipe: end of file was read
	err    error // the writer's error that ended the copy
	ended  bool
}

// Add adds the read end of a pipe, f, in non-blocking mode (as os.Pipe makes
// it), to be copied to w. Pipes added first are read first when more than
// one is readable. The Mux owns f from then on and closes it when the
// pipe's copy ends. Add must be called before Start.
func (m *Mux) Add(f *os.File, w io.Writer) *Stream {
	if m.started {
		panic("pipe: Mux.Add after Start")
	}
	s := &Stream{mux: m, f: f, fd: -1, w: w, done: make(chan struct{})}
	m.streams = append(m.streams, s)
	return s
}

// Start starts copying in a goroutine of its own, which ends once every
// pipe's copy has ended. Call it before using a Stream in another goroutine.
func (m *Mux) Start() {
	m.started = true
	if r, w, err := os.Pipe(); err == nil {
		m.wakeR, m.wakeW = r, w
	}
	for _, s := range m.streams {
		s.fd = rawFd(s.f)
		if s.fd < 0 {
			s.end(nil)
		}
	}
	go m.run()
}

// Stop makes the stream stop waiting for more data: it passes on what the
// pipe already holds, at most maxDrain bytes, without waiting, and ends. It
// may be called from any goroutine, more than once.
func (s *Stream) Stop() {
	s.stop.Store(true)
	s.mux.wake()
}

// Done is closed when the stream's copy has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Closed reports whether every writer had closed the pipe when the copy
// ended. It waits for Done.
func (s *Stream) Closed() bool {
	<-s.done
	return s.closed
}

// Err returns the error of the writer that ended the copy, or nil. The Mux
// then closed the pipe at once, so that the task's next write to it gets
// SIGPIPE as it would writing to a pipe whose reader went away. It waits
// for Done.
func (s *Stream) Err() error {
	<-s.done
	return s.err
}

// rawFd returns the descriptor of f without the side effects of f.Fd, which
// would make it blocking, or -1.
func rawFd(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(d uintptr) { fd = int(d) }) != nil {
		return -1
	}
	return fd
}

func (m *Mux) wake() {
	if m.wakeW == nil {
		return
	}
	rc, err := m.wakeW.SyscallConn()
	if err != nil {
		return
	}
	// A full wake pipe is awake already; a closed one means the copy ended.
	_ = rc.Write(func(fd uintptr) bool {
		_, _ = unix.Write(int(fd), []byte{0})
		return true
	})
}

// run is the Mux's goroutine: it waits in poll(2) for any of its pipes and
// reads those that are readable, in order.
func (m *Mux) run() {
	wakeFd, timeout := -1, 100
	if m.wakeR != nil {
		defer m.wakeW.Close()
		defer m.wakeR.Close()
		wakeFd, timeout = rawFd(m.wakeR), -1
	}
	buf := make([]byte, 64<<10)
	fds := make([]unix.PollFd, 0, len(m.streams)+1)
	polled := make([]*Stream, 0, len(m.streams))
	for {
		fds = append(fds[:0], unix.PollFd{Fd: int32(wakeFd), Events: unix.POLLIN})
		polled = polled[:0]
		for _, s := range m.streams {
			switch {
			case s.ended:
			case s.stop.Load():
				s.drain(buf)
			default:
				fds = append(fds, unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN})
				polled = append(polled, s)
			}
		}
		if len(polled) == 0 {
			return
		}
		if _, err := unix.Poll(fds, timeout); err != nil {
			if err == unix.EINTR {
				continue
			}
			// Cannot wait any more: end every pipe with what it holds.
			for _, s := range polled {
				s.drain(buf)
			}
			return
		}
		if wakeFd >= 0 && fds[0].Revents != 0 {
			for {
				if n, _ := unix.Read(wakeFd, buf); n <= 0 {
					break
				}
			}
		}
		for i, s := range polled {
			if fds[i+1].Revents != 0 {
				s.readOnce(buf)
			}
		}
	}
}

// readOnce reads from the pipe once and passes on what it got: n bytes,
// and whether the pipe may hold more.
func (s *Stream) readOnce(buf []byte) (n int, more bool) {
	n, err := unix.Read(s.fd, buf)
	switch {
	case n > 0:
		if _, werr := s.w.Write(buf[:n]); werr != nil {
			s.end(werr)
			return n, false
		}
		return n, true
	case err == nil: // end of file
		s.closed = true
		s.end(nil)
	case errors.Is(err, unix.EINTR):
		return 0, true
	case errors.Is(err, unix.EAGAIN):
	default:
		s.end(nil)
	}
	return 0, false
}

// drain passes on what the pipe holds, at most maxDrain bytes, without
// waiting, and ends the stream.
func (s *Stream) drain(buf []byte) {
	for drained := 0; drained < maxDrain; {
		n, more := s.readOnce(buf)
		if !more {
			break
		}
		drained += n
	}
	s.end(nil)
}

// end ends the stream's copy, if it has not ended yet.
func (s *Stream) end(err error) {
	if s.ended {
		return
	}
	s.ended = true
	s.err = err
	s.f.Close()
	close(s.done)
}
