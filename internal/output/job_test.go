package output

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// harness is a Job whose toplevel streams and log are files of a test.
type harness struct {
	t                   *testing.T
	stdout, stderr, log *os.File
	job                 *Job
}

func newHarness(t *testing.T, opt Options) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t}
	create := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	h.stdout, h.stderr, h.log = create("stdout"), create("stderr"), create("log")
	lock := NewWriteLock(dir)
	if opt.Job == "" {
		opt.Job = "j"
	}
	opt.Stdout = NewSink(h.stdout, lock)
	opt.Stderr = NewSink(h.stderr, lock)
	opt.Log = h.log
	opt.SpoolDir = dir
	h.job = NewJob(opt)
	return h
}

func (h *harness) read(f *os.File) string {
	h.t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func (h *harness) check(what string, f *os.File, want string) {
	h.t.Helper()
	if got := h.read(f); got != want {
		h.t.Errorf("%s:\ngot  %q\nwant %q", what, abbrev(got), abbrev(want))
	}
}

// abbrev shortens long test strings for error messages.
func abbrev(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:100] + "..." + s[len(s)-100:]
}

func TestLineWriterWholeLines(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"one write", []string{"a\nb\n"}, "[j] stdout | a\n[j] stdout | b\n"},
		{"byte by byte", strings.Split("ab\ncd\n", ""), "[j] stdout | ab\n[j] stdout | cd\n"},
		{"split across writes", []string{"a", "b\nc", "d\ne", "\n"}, "[j] stdout | ab\n[j] stdout | cd\n[j] stdout | e\n"},
		{"empty lines", []string{"\n\nx\n", "\n"}, "[j] stdout | \n[j] stdout | \n[j] stdout | x\n[j] stdout | \n"},
		{"empty writes", []string{"", "a", "", "\n", ""}, "[j] stdout | a\n"},
		{"not UTF-8", []string{"\xff\xfe\x00\r\n"}, "[j] stdout | \xff\xfe\x00\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			w := h.job.Writer(Stdout)
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			// Every whole line is out before Close.
			h.check("stdout before Close", h.stdout, tt.want)
			w.Close()
			if err := h.job.Close(false); err != nil {
				t.Fatal(err)
			}
			h.check("stdout", h.stdout, tt.want)
			h.check("stderr", h.stderr, "")
		})
	}
}

func TestLineWriterPartialLastLine(t *testing.T) {
	h := newHarness(t, Options{})
	w := h.job.Writer(Stderr)
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o"))
	h.check("stderr before Close", h.stderr, "[j] stderr | one\n")
	w.Close()
	h.check("stderr after Close", h.stderr, "[j] stderr | one\n[j] stderr | two\n")
	// A second Close adds nothing.
	w.Close()
	h.job.Close(false)
	h.check("stderr", h.stderr, "[j] stderr | one\n[j] stderr | two\n")
	h.check("log", h.log, "stderr | one\nstderr | two\n")
}

func TestLineWriterMaxLine(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	line := func(s string) string { return "[j] stdout | " + s + "\n" }
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"exactly MaxLine, newline later", []string{x(MaxLine), "\n"}, line(x(MaxLine))},
		{"exactly MaxLine, one write", []string{x(MaxLine) + "\n"}, line(x(MaxLine))},
		{"exactly MaxLine, no newline", []string{x(MaxLine)}, line(x(MaxLine))},
		{"one byte more", []string{x(MaxLine + 1), "\n"}, line(x(MaxLine)) + line("x")},
		{"one byte more, one write", []string{x(MaxLine+1) + "\nnext\n"}, line(x(MaxLine)) + line("x") + line("next")},
		{"ends in the write with the newline", []string{x(MaxLine - 5), x(10) + "\n"}, line(x(MaxLine)) + line(x(5))},
		{"two pieces and a rest", []string{x(2*MaxLine + 3), "\n"}, line(x(MaxLine)) + line(x(MaxLine)) + line(x(3))},
		{"twice MaxLine", []string{"a\n" + x(2*MaxLine) + "\nb\n"}, line("a") + line(x(MaxLine)) + line(x(MaxLine)) + line("b")},
		{"long line after short ones", []string{"a\nb\n" + x(MaxLine+2) + "\nc"}, line("a") + line("b") + line(x(MaxLine)) + line("xx") + line("c")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			w := h.job.Writer(Stdout)
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			w.Close()
			h.job.Close(false)
			h.check("stdout", h.stdout, tt.want)
			h.check("log", h.log, strings.ReplaceAll(tt.want, "[j] ", ""))
		})
	}
}

func TestLineWriterMaxLineInPipeChunks(t *testing.T) {
	// A line of MaxLine+10 bytes read in the 64 KiB pieces of the job's
	// drain: the piece with its newline also brings the bytes over MaxLine.
	h := newHarness(t, Options{})
	w := h.job.Writer(Stdout)
	y := strings.Repeat("y", MaxLine+10)
	data := "abcd\n" + y + "\n"
	buf := make([]byte, 64<<10)
	if _, err := io.CopyBuffer(w, onlyReader{strings.NewReader(data)}, buf); err != nil {
		t.Fatal(err)
	}
	w.Close()
	h.job.Close(false)
	want := "[j] stdout | abcd\n[j] stdout | " + y[:MaxLine] + "\n[j] stdout | " + y[MaxLine:] + "\n"
	h.check("stdout", h.stdout, want)
}

// onlyReader hides every method but Read, so that io.CopyBuffer uses its buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestLogFormat(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 11, 29, 16, 40, 5, 0, time.FixedZone("X", 3600)) }
	tests := []struct {
		name       string
		opt        Options
		wantStdout string
		wantStderr string
		wantLog    string
	}{
		{
			name:       "no timestamps, default visibility",
			opt:        Options{},
			wantStdout: "[j] stdout | out\n",
			wantStderr: "[j] stderr | err\n[j] warn | careful\n[j] error | bad\n",
			wantLog:    "stdout | out\nstderr | err\ninfo | note\nwarn | careful\nerror | bad\ndebug | detail\n",
		},
		{
			name:       "timestamps in UTC",
			opt:        Options{Timestamps: true, Now: now},
			wantStdout: "15:40:05 [j] stdout | out\n",
			wantStderr: "15:40:05 [j] stderr | err\n15:40:05 [j] warn | careful\n15:40:05 [j] error | bad\n",
			wantLog:    "15:40:05 stdout | out\n15:40:05 stderr | err\n15:40:05 info | note\n15:40:05 warn | careful\n15:40:05 error | bad\n15:40:05 debug | detail\n",
		},
		{
			name:       "debug and info shown",
			opt:        Options{ShowDebug: true, ShowInfo: true},
			wantStdout: "[j] stdout | out\n",
			wantStderr: "[j] stderr | err\n[j] info | note\n[j] warn | careful\n[j] error | bad\n[j] debug | detail\n",
			wantLog:    "stdout | out\nstderr | err\ninfo | note\nwarn | careful\nerror | bad\ndebug | detail\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opt)
			out, errw := h.job.Writer(Stdout), h.job.Writer(Stderr)
			out.Write([]byte("out\n"))
			errw.Write([]byte("err\n"))
			h.job.Printf(Info, "note")
			h.job.Printf(Warn, "careful")
			h.job.Printf(Error, "%s", "bad")
			h.job.Printf(Debug, "detail\n")
			out.Close()
			errw.Close()
			if err := h.job.Close(false); err != nil {
				t.Fatal(err)
			}
			h.check("stdout", h.stdout, tt.wantStdout)
			h.check("stderr", h.stderr, tt.wantStderr)
			h.check("log", h.log, tt.wantLog)
		})
	}
}

func TestPrintfMultiline(t *testing.T) {
	h := newHarness(t, Options{})
	h.job.Printf(Warn, "one\ntwo")
	h.job.Printf(Error, "")
	h.job.Close(false)
	h.check("stderr", h.stderr, "[j] warn | one\n[j] warn | two\n[j] error | \n")
}

func TestQuiet(t *testing.T) {
	tests := []struct {
		name       string
		failed     bool
		wantStderr string
	}{
		{"success drops every line", false, ""},
		{"failure prints every line to stderr in order", true,
			"[j] stdout | one\n[j] stderr | two\n[j] warn | three\n[j] stdout | four\n[j] stdout | five\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{Quiet: true})
			out, errw := h.job.Writer(Stdout), h.job.Writer(Stderr)
			out.Write([]byte("one\n"))
			errw.Write([]byte("two\n"))
			h.job.Printf(Warn, "three")
			h.job.Printf(Debug, "hidden")
			out.Write([]byte("four\nfive"))
			h.check("stdout while running", h.stdout, "")
			h.check("stderr while running", h.stderr, "")
			out.Close()
			errw.Close()
			h.job.Close(tt.failed)
			h.check("stdout", h.stdout, "")
			h.check("stderr", h.stderr, tt.wantStderr)
			// The log is as without quiet mode.
			h.check("log", h.log, "stdout | one\nstderr | two\nwarn | three\ndebug | hidden\nstdout | four\nstdout | five\n")
			// The spool is gone from the folder.
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(h.log.Name()), ".quiet-*"))
			if len(left) > 0 {
				t.Errorf("spool files left: %v", left)
			}
		})
	}
}

func TestQuietReleaseLongLines(t *testing.T) {
	// Lines longer than the release buffer, and many short ones, come out
	// whole and in order.
	h := newHarness(t, Options{Quiet: true})
	out := h.job.Writer(Stdout)
	var want strings.Builder
	for i, n := range []int{10, 300 << 10, 3, 1 << 20, 0, 256<<10 - 13, 256 << 10, 7} {
		s := strings.Repeat(string(rune('a'+i)), n) + "\n"
		out.Write([]byte(s))
		want.WriteString("[j] stdout | " + s)
	}
	for i := 0; i < 20000; i++ {
		out.Write([]byte("short\n"))
		want.WriteString("[j] stdout | short\n")
	}
	out.Close()
	h.job.Close(true)
	h.check("stderr", h.stderr, want.String())
}
