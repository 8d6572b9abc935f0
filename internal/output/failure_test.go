package output

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The error lines of failed writes.
const (
	stdoutFull = "[j] error | cannot write to stdout: no space left on device\n"
	stderrFull = "[j] error | cannot write to stderr: no space left on device\n"
	logFull    = "[j] error | cannot write the job's log: write /state/logs/j.log: file too large\n"
	logClose   = "[j] error | cannot write the job's log: close /state/logs/j.log: input/output error\n"
)

// fakeLog is a log file that takes room bytes, then fails as a file over
// `ulimit -f` does.
type fakeLog struct {
	bytes.Buffer
	room     int
	closeErr bool
}

func (l *fakeLog) Write(p []byte) (int, error) {
	if len(p) > l.room {
		n, _ := l.Buffer.Write(p[:l.room])
		l.room = 0
		return n, &os.PathError{Op: "write", Path: "/state/logs/j.log", Err: syscall.EFBIG}
	}
	l.room -= len(p)
	return l.Buffer.Write(p)
}

func (l *fakeLog) Close() error {
	if l.closeErr {
		return &os.PathError{Op: "close", Path: "/state/logs/j.log", Err: syscall.EIO}
	}
	return nil
}

// A toplevel stream of a test: a file, /dev/full, or a pipe whose reader
// went away.
const (
	file = iota
	full
	gone
)

func openStream(t *testing.T, kind int, name string) *os.File {
	t.Helper()
	var f *os.File
	var err error
	switch kind {
	case file:
		f, err = os.Create(filepath.Join(t.TempDir(), name))
	case full:
		f, err = os.OpenFile("/dev/full", os.O_WRONLY, 0)
	case gone:
		var r *os.File
		r, f, err = os.Pipe()
		if err == nil {
			r.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestWriteFailures(t *testing.T) {
	const unlimited = 1 << 30
	tests := []struct {
		name           string
		stdout, stderr int
		logRoom        int
		logCloseErr    bool
		quiet, failed  bool
		// The job's stdout is `a` and `b`, its stderr `c`, then a warn line
		// `w`; the toplevel's streams that are files get these.
		wantStdout, wantStderr, wantLog string
		// wantErr is what Close and Err return, "" for nil.
		wantErr string
		// outGone and errGone: the job's writer of that stream returns
		// ErrReaderGone.
		outGone, errGone bool
	}{
		{
			name:   "no failure",
			stdout: file, stderr: file, logRoom: unlimited,
			wantStdout: "[j] stdout | a\n[j] stdout | b\n",
			wantStderr: "[j] stderr | c\n[j] warn | w\n",
			wantLog:    "stdout | a\nstdout | b\nstderr | c\nwarn | w\n",
		},
		{
			name:   "stdout full: one error line on stderr, the log goes on",
			stdout: full, stderr: file, logRoom: unlimited,
			wantStderr: stdoutFull + "[j] stderr | c\n[j] warn | w\n",
			wantLog:    "stdout | a\nerror | cannot write to stdout: no space left on device\nstdout | b\nstderr | c\nwarn | w\n",
			wantErr:    "cannot write to stdout: no space left on device",
		},
		{
			name:   "stderr full: one error line on stdout",
			stdout: file, stderr: full, logRoom: unlimited,
			wantStdout: "[j] stdout | a\n[j] stdout | b\n" + stderrFull,
			wantLog:    "stdout | a\nstdout | b\nstderr | c\nerror | cannot write to stderr: no space left on device\nwarn | w\n",
			wantErr:    "cannot write to stderr: no space left on device",
		},
		{
			name:   "both full: the error lines are in the log only",
			stdout: full, stderr: full, logRoom: unlimited,
			wantLog: "stdout | a\nerror | cannot write to stdout: no space left on device\n" +
				"error | cannot write to stderr: no space left on device\nstdout | b\nstderr | c\nwarn | w\n",
			wantErr: "cannot write to stdout: no space left on device",
		},
		{
			name:   "log full: one error line on stderr, the toplevel goes on",
			stdout: file, stderr: file, logRoom: len("stdout | a\nstd"),
			wantStdout: "[j] stdout | a\n[j] stdout | b\n",
			wantStderr: logFull + "[j] stderr | c\n[j] warn | w\n",
			wantLog:    "stdout | a\nstd",
			wantErr:    "cannot write the job's log: write /state/logs/j.log: file too large",
		},
		{
			name:   "log and stderr full: both error lines on stdout",
			stdout: file, stderr: full, logRoom: len("stdout | a\n"),
			wantStdout: "[j] stdout | a\n" + stderrFull + logFull + "[j] stdout | b\n",
			wantLog:    "stdout | a\n",
			wantErr:    "cannot write the job's log: write /state/logs/j.log: file too large",
		},
		{
			name:   "log fails to close",
			stdout: file, stderr: file, logRoom: unlimited, logCloseErr: true,
			wantStdout: "[j] stdout | a\n[j] stdout | b\n",
			wantStderr: "[j] stderr | c\n[j] warn | w\n" + logClose,
			wantLog:    "stdout | a\nstdout | b\nstderr | c\nwarn | w\n",
			wantErr:    "cannot write the job's log: close /state/logs/j.log: input/output error",
		},
		{
			name:   "stdout reader gone: no error, the task's stdout is closed",
			stdout: gone, stderr: file, logRoom: unlimited,
			wantStderr: "[j] stderr | c\n[j] warn | w\n",
			wantLog:    "stdout | a\nstdout | b\nstderr | c\nwarn | w\n",
			outGone:    true,
		},
		{
			name:   "stderr reader gone: no error, the task's stderr is closed",
			stdout: file, stderr: gone, logRoom: unlimited,
			wantStdout: "[j] stdout | a\n[j] stdout | b\n",
			wantLog:    "stdout | a\nstdout | b\nstderr | c\nwarn | w\n",
			errGone:    true,
		},
		{
			name:   "stderr reader gone, stdout full: the error line in the log only",
			stdout: full, stderr: gone, logRoom: unlimited,
			wantLog: "stdout | a\nerror | cannot write to stdout: no space left on device\nstdout | b\nstderr | c\nwarn | w\n",
			wantErr: "cannot write to stdout: no space left on device",
			errGone: true,
		},
		{
			name:   "quiet failure, stderr full: the error line on stdout",
			stdout: file, stderr: full, logRoom: unlimited, quiet: true, failed: true,
			wantStdout: stderrFull,
			wantLog:    "stdout | a\nstdout | b\nstderr | c\nwarn | w\n" + "error | cannot write to stderr: no space left on device\n",
			wantErr:    "cannot write to stderr: no space left on device",
		},
		{
			name:   "quiet success, stdout full: nothing written, nothing failed",
			stdout: full, stderr: file, logRoom: unlimited, quiet: true,
			wantLog: "stdout | a\nstdout | b\nstderr | c\nwarn | w\n",
		},
		{
			name:   "quiet, log full: the error line at once",
			stdout: file, stderr: file, logRoom: 0, quiet: true, failed: true,
			wantStderr: logFull + "[j] stdout | a\n[j] stdout | b\n[j] stderr | c\n[j] warn | w\n",
			wantErr:    "cannot write the job's log: write /state/logs/j.log: file too large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr := openStream(t, tt.stdout, "stdout"), openStream(t, tt.stderr, "stderr")
			log := &fakeLog{room: tt.logRoom, closeErr: tt.logCloseErr}
			lock := NewWriteLock(t.TempDir())
			job := NewJob(Options{
				Job: "j", Quiet: tt.quiet, SpoolDir: t.TempDir(), Log: log,
				Stdout: NewSink(stdout, lock), Stderr: NewSink(stderr, lock),
			})
			out, errw := job.Writer(Stdout), job.Writer(Stderr)
			var outErr, errErr error
			for _, s := range []string{"a\n", "b\n"} {
				if _, err := out.Write([]byte(s)); err != nil && outErr == nil {
					outErr = err
				}
			}
			_, errErr = errw.Write([]byte("c\n"))
			job.Printf(Warn, "w")
			out.Close()
			errw.Close()
			gotErr := job.Err()
			closeErr := job.Close(tt.failed)

			// Close returns the first failure, which Err already knew of
			// unless it came while closing.
			if gotErr != nil && closeErr != gotErr {
				t.Errorf("Close returned %v, Err %v", closeErr, gotErr)
			}
			if got := errString(closeErr); got != tt.wantErr {
				t.Errorf("error: got %q, want %q", got, tt.wantErr)
			}
			if got := errors.Is(outErr, ErrReaderGone); got != tt.outGone || !got && outErr != nil {
				t.Errorf("stdout writer: got %v, want ErrReaderGone %v", outErr, tt.outGone)
			}
			if got := errors.Is(errErr, ErrReaderGone); got != tt.errGone || !got && errErr != nil {
				t.Errorf("stderr writer: got %v, want ErrReaderGone %v", errErr, tt.errGone)
			}
			for _, s := range []struct {
				name string
				kind int
				f    *os.File
				want string
			}{{"stdout", tt.stdout, stdout, tt.wantStdout}, {"stderr", tt.stderr, stderr, tt.wantStderr}} {
				if s.kind != file {
					continue
				}
				b, err := os.ReadFile(s.f.Name())
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != s.want {
					t.Errorf("%s:\ngot  %q\nwant %q", s.name, b, s.want)
				}
			}
			if got := log.String(); got != tt.wantLog {
				t.Errorf("log:\ngot  %q\nwant %q", got, tt.wantLog)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestSinkDropsAfterFailure(t *testing.T) {
	// A sink whose write failed writes nothing more, even once the cause is
	// gone: a stream must not get the tail of the output without its middle.
	f := openStream(t, file, "out")
	s := NewSink(f, NewWriteLock(t.TempDir()))
	s.err = syscall.ENOSPC // as if the disk had been full
	if err := s.Write([]byte("later\n")); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Write after a failure: got %v, want the first error", err)
	}
	if b, _ := os.ReadFile(f.Name()); len(b) != 0 {
		t.Errorf("written after a failure: %q", b)
	}
}
