package output

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestColor(t *testing.T) {
	c := jobColor("build")
	tests := []struct {
		name                   string
		opt                    Options
		wantStdout, wantStderr string
	}{
		{"none: the old tool's bytes", Options{},
			"[build] stdout | out\n",
			"[build] stderr | err\n[build] warn | careful\n[build] error | broken\n"},
		{"both streams", Options{ColorStdout: true, ColorStderr: true},
			c + "[build]\x1b[0m stdout | out\n",
			c + "[build]\x1b[0m stderr | err\n" + c + "[build]\x1b[0m \x1b[33mwarn\x1b[0m | careful\n" + c + "[build]\x1b[0m \x1b[31merror\x1b[0m | broken\n"},
		{"stdout only: stderr is a file", Options{ColorStdout: true},
			c + "[build]\x1b[0m stdout | out\n",
			"[build] stderr | err\n[build] warn | careful\n[build] error | broken\n"},
		{"timestamps stay plain", Options{ColorStdout: true, Timestamps: true, Now: func() time.Time { return time.Date(2026, 1, 1, 16, 40, 0, 0, time.UTC) }},
			"16:40:00 " + c + "[build]\x1b[0m stdout | out\n",
			"16:40:00 [build] stderr | err\n16:40:00 [build] warn | careful\n16:40:00 [build] error | broken\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opt.Job = "build"
			h := newHarness(t, tt.opt)
			out, errw := h.job.Writer(Stdout), h.job.Writer(Stderr)
			out.Write([]byte("out\n"))
			errw.Write([]byte("err\n"))
			h.job.Printf(Warn, "careful")
			h.job.Printf(Error, "broken")
			h.job.Close(false)
			h.check("stdout", h.stdout, tt.wantStdout)
			h.check("stderr", h.stderr, tt.wantStderr)
			// The log never gets colour.
			if log := h.read(h.log); strings.Contains(log, "\x1b") {
				t.Errorf("log has colour: %q", log)
			}
		})
	}
}

func TestColorQuietFailure(t *testing.T) {
	// Held lines go to stderr, so they take stderr's colour.
	h := newHarness(t, Options{Job: "build", Quiet: true, ColorStdout: true, ColorStderr: true})
	h.job.Writer(Stdout).Write([]byte("out\n"))
	h.job.Close(true)
	h.check("stderr", h.stderr, jobColor("build")+"[build]\x1b[0m stdout | out\n")
}

func TestJobColorStable(t *testing.T) {
	// The colour of a name is the same in every process: a fixed hash.
	if a, b := jobColor("build"), jobColor("build"); a != b {
		t.Errorf("jobColor(build) = %q, then %q", a, b)
	}
	seen := map[string]bool{}
	for _, name := range []string{"build", "test", "lint", "gen", "docs", "deploy", "a", "b"} {
		c := jobColor(name)
		if c == yellow || c == red {
			t.Errorf("jobColor(%s) is warn's or error's colour", name)
		}
		seen[c] = true
	}
	if len(seen) < 3 {
		t.Errorf("8 names share %d colours", len(seen))
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a file is a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Error("a pipe is a terminal")
	}
	// /dev/tty is the test's controlling terminal, where it has one.
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !IsTerminal(tty) {
			t.Error("/dev/tty is no terminal")
		}
	}
}
