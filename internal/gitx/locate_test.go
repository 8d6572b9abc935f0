package gitx

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLocateAgreesWithGit checks that locate finds the same work tree and
// index as `git rev-parse`, or leaves the layout to git.
func TestLocateAgreesWithGit(t *testing.T) {
	repo := newRepo(t)
	writeFiles(t, repo, map[string]string{"a.txt": "a\n", "sub/deep/b.txt": "b\n"})
	commitAll(t, repo, "init")
	wt := filepath.Join(t.TempDir(), "wt")
	gitT(t, repo, nil, "worktree", "add", "-q", wt)

	moved := newRepo(t)
	gitT(t, moved, nil, "config", "core.worktree", "/nowhere")

	tests := []struct {
		name   string
		dir    string
		env    map[string]string
		wantOK bool
	}{
		{"top", repo, nil, true},
		{"subfolder", filepath.Join(repo, "sub", "deep"), nil, true},
		{"linked worktree", wt, nil, true},
		{"GIT_DIR set", repo, map[string]string{"GIT_DIR": filepath.Join(repo, ".git")}, false},
		{"core.worktree", moved, nil, false},
		{"no repository", t.TempDir(), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			top, index, ok := locate(tt.dir)
			if ok != tt.wantOK {
				t.Fatalf("locate(%s) ok = %v, want %v", tt.dir, ok, tt.wantOK)
			}
			if !ok {
				return
			}
			wantTop := gitT(t, tt.dir, nil, "rev-parse", "--show-toplevel")
			wantIndex := gitT(t, tt.dir, nil, "rev-parse", "--path-format=absolute", "--git-path", "index")
			if top != wantTop || index != wantIndex {
				t.Errorf("locate(%s) = %s, %s; git says %s, %s", tt.dir, top, index, wantTop, wantIndex)
			}
		})
	}
}

// TestLocateCeiling checks that a ceiling folder stops the search, as it
// stops git's.
func TestLocateCeiling(t *testing.T) {
	repo := newRepo(t)
	sub := filepath.Join(repo, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CEILING_DIRECTORIES", repo)
	if _, _, ok := locate(sub); ok {
		t.Fatalf("locate(%s) looked into the ceiling %s", sub, repo)
	}
}
