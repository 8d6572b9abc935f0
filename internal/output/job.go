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
	// ColorStdout and ColorStderr colour the lines written to that stream
	// of the toplevel: the job's prefix in its colour, warn and error in
	// theirs.
	ColorStdout, ColorStderr bool
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
	// sinkErr[Stdout] and sinkErr[Stderr] are the first other failure to
	// write to that stream of the toplevel.
	sinkErr [2]error
	// failed is the first write of the job's output that failed, other
	// than to a reader that went away.
	failed error
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

	ts := j.stamp()
	show := j.visible(s)
	// Quiet mode holds every line for the toplevel's stderr.
	to := Stderr
	if s == Stdout && !j.opt.Quiet {
		to = Stdout
	}
	j.top, j.log = j.top[:0], j.log[:0]
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		line := lines[:i+1]
		lines = lines[i+1:]
		if j.opt.Log != nil {
			j.log = appendLog(j.log, ts, s, line)
		}
		if show {
			j.top = j.appendTop(j.top, to, ts, s, line)
		}
	}
	j.writeLog(j.log)
	if len(j.top) == 0 {
		return
	}
	if j.opt.Quiet {
		j.hold(j.top)
		return
	}
	j.write(to, j.top)
}

// stamp is the timestamp that starts a line now, or nil.
func (j *Job) stamp() []byte {
	if !j.opt.Timestamps {
		return nil
	}
	return j.opt.Now().UTC().AppendFormat(make([]byte, 0, 9), "15:04:05 ")
}

// appendTop appends line as the toplevel's stream to shows it: `[<job>]
// <stream> | <line>`, coloured when to is.
func (j *Job) appendTop(b []byte, to Stream, ts []byte, s Stream, line []byte) []byte {
	b = append(b, ts...)
	if !j.colored(to) {
		b = append(b, '[')
		b = append(b, j.opt.Job...)
		b = append(b, "] "...)
		b = append(b, streamNames[s]...)
		b = append(b, " | "...)
		return append(b, line...)
	}
	b = append(b, jobColor(j.opt.Job)...)
	b = append(b, '[')
	b = append(b, j.opt.Job...)
	b = append(b, ']')
	b = append(b, reset...)
	b = append(b, ' ')
	if c := streamColor(s); c != "" {
		b = append(b, c...)
		b = append(b, streamNames[s]...)
		b = append(b, reset...)
	} else {
		b = append(b, streamNames[s]...)
	}
	b = append(b, " | "...)
	return append(b, line...)
}

// colored reports whether lines for the toplevel's stream to get colour.
func (j *Job) colored(to Stream) bool {
	if to == Stdout {
		return j.opt.ColorStdout
	}
	return j.opt.ColorStderr
}

// appendLog appends line as the log has it: `<stream> | <line>`.
func appendLog(b, ts []byte, s Stream, line []byte) []byte {
	b = append(b, ts...)
	b = append(b, streamNames[s]...)
	b = append(b, " | "...)
	return append(b, line...)
}

// writeLog writes b, whole lines, to the log file. After a failed write the
// log gets nothing more.
func (j *Job) writeLog(b []byte) {
	if len(b) == 0 || j.opt.Log == nil || j.logErr != nil {
		return
	}
	if _, err := j.opt.Log.Write(b); err != nil {
		j.logErr = err
		j.fail(fmt.Errorf("cannot write the job's log: %w", err))
	}
}

// write writes b, whole lines, to the toplevel's stream to (Stdout or
// Stderr). A reader that went away is no error: the job's LineWriter for
// that stream then returns ErrReaderGone. Any other failure is reported
// once, and the stream gets nothing more (Sink.Write).
func (j *Job) write(to Stream, b []byte) {
	sink := j.opt.Stdout
	if to == Stderr {
		sink = j.opt.Stderr
	}
	err := sink.Write(b)
	switch {
	case err == nil:
	case errors.Is(err, syscall.EPIPE):
		j.gone[to].Store(true)
	case j.sinkErr[to] == nil:
		j.sinkErr[to] = err
		j.fail(fmt.Errorf("cannot write to %s: %w", to, cause(err)))
	}
}

// works reports whether the toplevel's stream s still takes lines.
func (j *Job) works(s Stream) bool { return j.sinkErr[s] == nil && !j.gone[s].Load() }

// fail records a failed write of the job's output, which makes the job
// fail, and reports it in one error line: to the log, and to the toplevel's
// stderr or, when that is what failed, its stdout. The line goes out at
// once, even in quiet mode: output is being lost now. When no stream works
// any more, only the exit status tells.
func (j *Job) fail(err error) {
	if j.failed == nil {
		j.failed = err
	}
	ts := j.stamp()
	line := []byte(err.Error() + "\n")
	j.writeLog(appendLog(nil, ts, Error, line))
	for _, s := range []Stream{Stderr, Stdout} {
		if j.works(s) {
			j.write(s, j.appendTop(nil, s, ts, Error, line))
		}
		if j.works(s) {
			return
		}
	}
}

// cause is what the system said about a failed write, without the name of
// the file, which for the toplevel's streams is a copy's name of no use to
// the reader.
func cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hold appends b to the quiet-mode spool: a temporary file rather than
// memory, so a long quiet job costs no memory.
func (j *Job) hold(b []byte) {
	if j.spool == nil {
		f, err := os.CreateTemp(j.opt.SpoolDir, ".quiet-*")
		if err != nil {
			// Nowhere to hold the lines: better shown early than lost.
			j.write(Stderr, b)
			return
		}
		os.Remove(f.Name())
		j.spool = f
	}
	if _, err := j.spool.Write(b); err != nil {
		j.write(Stderr, b)
	}
}

// Close ends the job's output. In quiet mode, a failed job's held lines go to
// the toplevel's stderr, in order; a successful job's are dropped. It
// returns the first failed write of the job's output (Err), closing the log
// file included.
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
		if err := j.opt.Log.Close(); err != nil && j.logErr == nil {
			j.logErr = err
			j.fail(fmt.Errorf("cannot write the job's log: %w", err))
		}
	}
	return j.failed
}

// Err returns the first write of the job's output that failed, to the log
// file or to the toplevel's stdout or stderr, or nil. A reader that went
// away is no failure. The job's output reported it already, in one error
// line; the job should fail.
func (j *Job) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failed
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
		j.write(Stderr, buf[:cut])
		n = copy(buf, buf[cut:n])
		if err != nil || !j.works(Stderr) {
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
