package output

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Stream is the kind of a line: the job's own stdout or stderr, or one of
// taskrunner's messages about the job.
type Stream int

// The streams, named in every line as `[<job>] <stream> | <text>`.
const (
	Stdout Stream = iota
	Stderr
	Info
	Warn
	Error
	Debug
)

var streamNames = [...]string{"stdout", "stderr", "info", "warn", "error", "debug"}

func (s Stream) String() string { return streamNames[s] }

// MaxLine is the longest line kept whole. A longer one is passed on in
// pieces of this size, each a line of its own, so that memory stays bounded
// whatever a task prints; no byte is dropped.
const MaxLine = 8 << 20

// Options configure a job's output.
type Options struct {
	Job        string
	Timestamps bool
	ShowDebug  bool // debug lines reach the toplevel, not only the log
	ShowInfo   bool // info lines reach the toplevel, not only the log
	Quiet      bool // hold the toplevel's lines back until the job ends
	Stdout     *Sink
	Stderr     *Sink
	// Log receives every line of the job; nil for none.
	Log io.WriteCloser
	// SpoolDir holds the quiet-mode spool file.
	SpoolDir string
	// Now is the clock of the timestamps; nil for time.Now.
	Now func() time.Time
}

// Job is the output of one job. It is safe for concurrent use: the job's
// stdout and stderr readers and its control channel all write to it.
type Job struct {
	opt Options

	mu     sync.Mutex
	top    []byte // scratch: formatted toplevel lines
	log    []byte // scratch: formatted log lines
	spool  *os.File
	logErr error
	// gone[Stdout] and gone[Stderr] are set once that stream of the
	// toplevel refused a write because its reader went away.
	gone [2]atomic.Bool
}

// NewJob returns the output of one job.
func NewJob(opt Options) *Job {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Job{opt: opt}
}

// Printf writes one message line (or several, split at newlines) on stream.
func (j *Job) Printf(s Stream, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !bytes.HasSuffix([]byte(msg), []byte("\n")) {
		msg += "\n"
	}
	j.emit(s, []byte(msg))
}

// visible reports whether lines of stream s reach the toplevel.
func (j *Job) visible(s Stream) bool {
	switch s {
	case Debug:
		return j.opt.ShowDebug
	case Info:
		return j.opt.ShowInfo
	}
	return true
}

// emit formats lines, which is one or more whole lines each ending in a
// newline, and writes them out in one piece to each destination.
func (j *Job) emit(s Stream, lines []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()

	var ts []byte
	if j.opt.Timestamps {
		ts = j.opt.Now().UTC().AppendFormat(make([]byte, 0, 9), "15:04:05 ")
	}
	name := streamNames[s]
	show := j.visible(s)
	j.top, j.log = j.top[:0], j.log[:0]
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		line := lines[:i+1]
		lines = lines[i+1:]
		if j.opt.Log != nil {
			j.log = append(j.log, ts...)
			j.log = append(j.log, name...)
			j.log = append(j.log, " | "...)
			j.log = append(j.log, line...)
		}
		if show {
			j.top = append(j.top, ts...)
			j.top = append(j.top, '[')
			j.top = append(j.top, j.opt.Job...)
			j.top = append(j.top, "] "...)
			j.top = append(j.top, name...)
			j.top = append(j.top, " | "...)
			j.top = append(j.top, line...)
		}
	}
	if len(j.log) > 0 && j.logErr == nil {
		_, j.logErr = j.opt.Log.Write(j.log)
	}
	if len(j.top) == 0 {
		return
	}
	switch {
	case j.opt.Quiet:
		j.hold(j.top)
	case s == Stdout:
		if err := j.opt.Stdout.Write(j.top); errors.Is(err, syscall.EPIPE) {
			j.gone[Stdout].Store(true)
		}
	default:
		if err := j.opt.Stderr.Write(j.top); errors.Is(err, syscall.EPIPE) {
			j.gone[Stderr].Store(true)
		}
	}
}

// hold appends b to the quiet-mode spool: a temporary file rather than
// memory, so a long quiet job costs no memory.
func (j *Job) hold(b []byte) {
	if j.spool == nil {
		f, err := os.CreateTemp(j.opt.SpoolDir, ".quiet-*")
		if err != nil {
			// Nowhere to hold the lines: better shown early than lost.
			j.opt.Stderr.Write(b)
			return
		}
		os.Remove(f.Name())
		j.spool = f
	}
	if _, err := j.spool.Write(b); err != nil {
		j.opt.Stderr.Write(b)
	}
}

// Close ends the job's output. In quiet mode, a failed job's held lines go to
// the toplevel's stderr, in order; a successful job's are dropped. It
// returns the first error writing the log file.
func (j *Job) Close(failed bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.spool != nil {
		if failed {
			j.release()
		}
		j.spool.Close()
		j.spool = nil
	}
	if j.opt.Log != nil {
		if err := j.opt.Log.Close(); j.logErr == nil {
			j.logErr = err
		}
	}
	return j.logErr
}

// release copies the quiet spool to the toplevel's stderr in pieces that end
// at line boundaries. A line longer than the buffer grows it, so that every
// line still goes out in one write, which no other writer can split.
func (j *Job) release() {
	if _, err := j.spool.Seek(0, io.SeekStart); err != nil {
		return
	}
	buf := make([]byte, 256<<10)
	n := 0 // buf[:n] is the start of a line not yet written
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := j.spool.Read(buf[n:])
		n += m
		cut := bytes.LastIndexByte(buf[:n], '\n') + 1
		if err != nil {
			cut = n
		}
		j.opt.Stderr.Write(buf[:cut])
		n = copy(buf, buf[cut:n])
		if err != nil {
			return
		}
	}
}

// Writer returns a writer that turns what it is given into lines of stream
// s. Close it to pass on a last line that has no newline.
func (j *Job) Writer(s Stream) *LineWriter { return &LineWriter{job: j, s: s} }

// ErrReaderGone is returned by a LineWriter of the job's stdout or stderr
// once that stream of the toplevel is a pipe whose reader went away
// (`taskrunner … | head`, `taskrunner … 2>&1 >/dev/null | head`): the
// caller stops reading the task's stream, so that the task gets SIGPIPE as
// it would in the same pipeline without taskrunner.
var ErrReaderGone = errors.New("the reader of the toplevel's stream went away")

// LineWriter splits a byte stream into lines for a Job.
type LineWriter struct {
	job     *Job
	s       Stream
	partial []byte
}

// Write passes on every whole line in p and keeps the rest for later.
func (w *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	last := bytes.LastIndexByte(p, '\n')
	if last < 0 {
		w.partial = append(w.partial, p...)
		w.cap()
		return n, nil
	}
	lines := p[:last+1]
	if len(w.partial) > 0 {
		// The first line ends the partial one.
		i := bytes.IndexByte(lines, '\n')
		w.partial = append(w.partial, lines[:i+1]...)
		w.emitLines(w.partial)
		w.partial = w.partial[:0]
		lines = lines[i+1:]
	}
	w.emitLines(lines)
	w.partial = append(w.partial, p[last+1:]...)
	w.cap()
	if (w.s == Stdout || w.s == Stderr) && w.job.gone[w.s].Load() {
		return n, ErrReaderGone
	}
	return n, nil
}

// emitLines passes on b, which holds whole lines, in as few pieces as it
// can: a line longer than MaxLine goes out as lines of MaxLine bytes and a
// last, shorter one.
func (w *LineWriter) emitLines(b []byte) {
	start := 0 // the lines before start are out
	for i := 0; i < len(b); {
		end := i + bytes.IndexByte(b[i:], '\n') // the line at i is b[i:end]
		if end-i > MaxLine {
			if start < i {
				w.job.emit(w.s, b[start:i])
			}
			for ; end-i > MaxLine; i += MaxLine {
				w.job.emit(w.s, append(b[i:i+MaxLine:i+MaxLine], '\n'))
			}
			start = i
		}
		i = end + 1
	}
	if start < len(b) {
		w.job.emit(w.s, b[start:])
	}
}

// cap passes on the pieces of a partial line longer than MaxLine. A partial
// line of exactly MaxLine bytes waits: its newline may come next.
func (w *LineWriter) cap() {
	k := 0
	for ; len(w.partial)-k > MaxLine; k += MaxLine {
		w.job.emit(w.s, append(w.partial[k:k+MaxLine:k+MaxLine], '\n'))
	}
	if k > 0 {
		w.partial = append(w.partial[:0], w.partial[k:]...)
	}
}

// Close passes on a last line that has no newline.
func (w *LineWriter) Close() error {
	if len(w.partial) > 0 {
		w.job.emit(w.s, append(w.partial, '\n'))
		w.partial = nil
	}
	return nil
}
