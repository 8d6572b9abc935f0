package gitx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestIsClean(t *testing.T) {
	tests := []struct {
		name      string
		change    func(t *testing.T, dir string)
		pathspecs []string
		want      bool
	}{
		{"unchanged", func(*testing.T, string) {}, []string{"."}, true},
		{"modified input", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"a.txt": "changed\n"})
		}, []string{"a.txt"}, false},
		{"modified file outside the inputs", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"a.txt": "changed\n"})
		}, []string{"b"}, true},
		{"untracked file in an input folder", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"b/new.txt": "new\n"})
		}, []string{"b"}, true},
		{"staged change", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"b/c.txt": "staged\n"})
			gitT(t, dir, nil, "add", "b/c.txt")
		}, []string{"b"}, false},
		{"deleted input", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "b", "c.txt")); err != nil {
				t.Fatal(err)
			}
		}, []string{"b/*.txt"}, false},
		{"no pathspecs means the whole tree", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"a.txt": "changed\n"})
		}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newRepo(t)
			writeFiles(t, dir, map[string]string{"a.txt": "a\n", "b/c.txt": "c\n"})
			commitAll(t, dir, "first")
			tt.change(t, dir)
			got, err := IsClean(context.Background(), dir, tt.pathspecs)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("IsClean = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHeadAndBranch(t *testing.T) {
	ctx := context.Background()
	dir := newRepo(t)

	var gerr *Error
	if _, err := Head(ctx, dir); !errors.As(err, &gerr) {
		t.Errorf("Head of a repository without commits: err = %v (%T), want *Error", err, err)
	}
	if b, err := CurrentBranch(ctx, dir); err != nil || b != "main" {
		t.Errorf("CurrentBranch before the first commit = %q, %v; want main", b, err)
	}

	writeFiles(t, dir, map[string]string{"a.txt": "a\n", "sub/b.txt": "b\n"})
	first := commitAll(t, dir, "first")
	sub := filepath.Join(dir, "sub")
	if h, err := Head(ctx, sub); err != nil || h != first {
		t.Errorf("Head = %q, %v; want %s", h, err, first)
	}
	if b, err := CurrentBranch(ctx, sub); err != nil || b != "main" {
		t.Errorf("CurrentBranch = %q, %v; want main", b, err)
	}

	gitT(t, dir, nil, "checkout", "-q", "-b", "feature/x")
	if b, err := CurrentBranch(ctx, dir); err != nil || b != "feature/x" {
		t.Errorf("CurrentBranch = %q, %v; want feature/x", b, err)
	}
	gitT(t, dir, nil, "checkout", "-q", "--detach")
	if b, err := CurrentBranch(ctx, dir); err != nil || b != "" {
		t.Errorf("CurrentBranch with a detached HEAD = %q, %v; want \"\", nil", b, err)
	}
}

func TestMergeBase(t *testing.T) {
	ctx := context.Background()
	dir := newRepo(t)
	base := commitAll(t, dir, "base")
	gitT(t, dir, nil, "checkout", "-q", "-b", "feature")
	commitAll(t, dir, "on feature")
	gitT(t, dir, nil, "checkout", "-q", "main")
	commitAll(t, dir, "on main")
	gitT(t, dir, nil, "checkout", "-q", "feature")

	if got, err := MergeBase(ctx, dir, "main"); err != nil || got != base {
		t.Errorf("MergeBase(main) = %q, %v; want %s", got, err, base)
	}

	_, err := MergeBase(ctx, dir, "origin/main")
	var gerr *Error
	if !errors.As(err, &gerr) || errors.Is(err, ErrNoMergeBase) {
		t.Errorf("MergeBase(unknown ref): err = %v, want *Error", err)
	}

	gitT(t, dir, nil, "checkout", "-q", "--orphan", "unrelated")
	commitAll(t, dir, "unrelated root")
	_, err = MergeBase(ctx, dir, "main")
	if !errors.Is(err, ErrNoMergeBase) {
		t.Errorf("MergeBase of unrelated histories: err = %v, want ErrNoMergeBase", err)
	} else if want := "no common ancestor between HEAD and main"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
}
