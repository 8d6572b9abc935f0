package snapshot

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/taskrunner/taskrunner/internal/state"
)

func TestHashOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{"100644 blob 257cc5642cb1a054f08cc83f2d943e56fd3ebe99\tinput.txt", "6b36308659163b577fd1c832107dc46ca3aa659b"},
		{"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
	}
	for _, tt := range tests {
		if got := HashOf(tt.in); got != tt.want {
			t.Errorf("HashOf(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// newRepo makes a git repository holding files (path → contents), with
// nothing committed.
func newRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found")
	}
	dir := t.TempDir()
	cmd := exec.Command("git", "init", "-q", dir)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestHashInput(t *testing.T) {
	const listing = "100644 blob 257cc5642cb1a054f08cc83f2d943e56fd3ebe99\tinput.txt"
	dir := newRepo(t, map[string]string{"input.txt": "foo\n"})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"spec example", []string{"input.txt"}, listing},
		// The raw inputs follow the listing directly, with no separator.
		{"inputs and raw", []string{"input.txt", "--raw", "v1", "--raw", "v2"}, listing + "v1\nv2"},
		{"raw only", []string{"--raw", "a", "--raw", "", "--raw", "b\n"}, "a\n\nb\n"},
		{"command only", []string{"--with-command"}, "\ncommand: \"bash\" \"-c\" \"echo 'a b'\\n\\xff\""},
		{"inputs, raw and command", []string{"input.txt", "--raw", "v1", "--with-command"},
			listing + "v1\ncommand: \"bash\" \"-c\" \"echo 'a b'\\n\\xff\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseArgs(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if a.WithCommand {
				a.Command = []string{"bash", "-c", "echo 'a b'\n\xff"}
			}
			got, _, err := HashInput(context.Background(), dir, a)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("HashInput(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

func TestHashInputRawNeedsNoRepository(t *testing.T) {
	a := &Args{Raw: []string{"x"}}
	got, _, err := HashInput(context.Background(), t.TempDir(), a)
	if err != nil || got != "x" {
		t.Errorf("HashInput(raw x) outside a repository = %q, %v; want \"x\", nil", got, err)
	}
}

// recorder is a Reporter that keeps the info lines.
type recorder struct{ info []string }

func (r *recorder) Info(msg string) { r.info = append(r.info, msg) }
func (r *recorder) Debug(string)    {}

func newJob(t *testing.T, dir string) (*Job, *recorder) {
	t.Helper()
	st := state.Dir{Root: t.TempDir()}
	if err := st.Prepare(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	return &Job{Name: "build", Dir: dir, Toplevel: true, State: st, Report: rec}, rec
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	dir := newRepo(t, map[string]string{"input.txt": "foo\n"})
	const hash = "6b36308659163b577fd1c832107dc46ca3aa659b"
	saved := func(j *Job, h string) {
		t.Helper()
		if err := j.State.SaveHash(j.Name, state.SavedHash{Hash: h}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("changed", func(t *testing.T) {
		j, rec := newJob(t, dir)
		saved(j, "0000000000000000000000000000000000000000")
		v, err := j.Decide(ctx, []string{"input.txt"})
		if err != nil || !v.Run || v.Description != nil {
			t.Fatalf("Decide = %+v, %v; want a run with no description", v, err)
		}
		if !slices.Equal(rec.info, []string{"Inputs changed, running task"}) {
			t.Errorf("info lines %q", rec.info)
		}
		a := j.After()
		if !a.InputsChanged || a.Pending == nil || a.Pending.Hash != hash || a.Pending.MainBranchCommit != nil {
			t.Errorf("After = %+v, want the new hash pending", a)
		}
	})
	t.Run("unchanged", func(t *testing.T) {
		j, rec := newJob(t, dir)
		saved(j, hash)
		v, err := j.Decide(ctx, []string{"input.txt"})
		if err != nil || v.Run || v.Description == nil || *v.Description != "local cache hit (?)" {
			t.Fatalf("Decide = %+v, %v; want a local cache hit", v, err)
		}
		if !slices.Equal(rec.info, []string{"skipped, inputs unchanged"}) {
			t.Errorf("info lines %q", rec.info)
		}
		if a := j.After(); a.InputsChanged || a.Pending != nil {
			t.Errorf("After = %+v, want nothing to do", a)
		}
	})
	t.Run("unchanged nested", func(t *testing.T) {
		j, rec := newJob(t, dir)
		j.Toplevel = false
		saved(j, hash)
		if v, err := j.Decide(ctx, []string{"input.txt"}); err != nil || v.Run {
			t.Fatalf("Decide = %+v, %v; want a skip", v, err)
		}
		if len(rec.info) != 0 {
			t.Errorf("a nested skipped job printed %q", rec.info)
		}
	})
	t.Run("forced", func(t *testing.T) {
		j, _ := newJob(t, dir)
		j.Force = true
		saved(j, hash)
		if v, err := j.Decide(ctx, []string{"input.txt"}); err != nil || !v.Run {
			t.Fatalf("Decide = %+v, %v; want a run", v, err)
		}
		if a := j.After(); a.Pending == nil || a.Pending.Hash != hash {
			t.Errorf("After = %+v, want the hash pending", a)
		}
	})
	t.Run("no inputs", func(t *testing.T) {
		j, rec := newJob(t, dir)
		v, err := j.Decide(ctx, []string{"-n", "-o", "out"})
		if err != nil || !v.Run || v.Description == nil || *v.Description != "not cached" {
			t.Fatalf("Decide = %+v, %v; want a run, not cached", v, err)
		}
		if a := j.After(); a.InputsChanged || a.Pending != nil || len(rec.info) != 0 {
			t.Errorf("After = %+v, info %q; want nothing", a, rec.info)
		}
	})
	t.Run("prime cache mode", func(t *testing.T) {
		j, rec := newJob(t, dir)
		j.PrimeCacheMode = true
		v, err := j.Decide(ctx, []string{"input.txt"})
		if err != nil || v.Run || v.Description != nil {
			t.Fatalf("Decide = %+v, %v; want a skip with no description", v, err)
		}
		if a := j.After(); a.InputsChanged || a.Pending == nil || a.Pending.Hash != hash || len(rec.info) != 0 {
			t.Errorf("After = %+v, info %q; want the hash pending, silently", a, rec.info)
		}
	})
	t.Run("called twice", func(t *testing.T) {
		j, _ := newJob(t, dir)
		if _, err := j.Decide(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Decide(ctx, nil); !errors.Is(err, ErrCalledTwice) {
			t.Errorf("second Decide: %v, want ErrCalledTwice", err)
		}
	})
	t.Run("called twice after an error", func(t *testing.T) {
		j, _ := newJob(t, dir)
		if _, err := j.Decide(ctx, []string{"--bogus"}); err == nil {
			t.Fatal("Decide(--bogus) succeeded")
		}
		if _, err := j.Decide(ctx, []string{"input.txt"}); !errors.Is(err, ErrCalledTwice) {
			t.Errorf("second Decide: %v, want ErrCalledTwice", err)
		}
	})
}

// cancellingRemote stands for a stop signal that comes during a restore:
// it cancels the decision's context and misses.
type cancellingRemote struct {
	cancel   context.CancelFunc
	restores int
}

func (c *cancellingRemote) Archive(job, version, hash string) string { return job + "-" + hash }
func (c *cancellingRemote) Restore(context.Context, string, string, []string, func()) bool {
	c.restores++
	c.cancel()
	return false
}
func (c *cancellingRemote) LatestHash(context.Context, string, string) (string, bool) {
	return "", false
}

func TestDecideCancelled(t *testing.T) {
	dir := newRepo(t, map[string]string{"input.txt": "foo\n"})
	j, rec := newJob(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	remote := &cancellingRemote{cancel: cancel}
	j.Remote = remote
	v, err := j.Decide(ctx, []string{"input.txt", "--fuzzy-cache", "--outputs", "out"})
	if !errors.Is(err, context.Canceled) || v.Run {
		t.Fatalf("Decide = %+v, %v; want no run and an error wrapping context.Canceled", v, err)
	}
	if remote.restores != 1 {
		t.Errorf("%d restores; want the exact one, and no fuzzy one after the signal", remote.restores)
	}
	if len(rec.info) != 0 {
		t.Errorf("a cancelled decision printed %q", rec.info)
	}
}
