package gitx

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain isolates every git the tests run (ours and the package's) from
// the machine's configuration and from any repository around the temporary
// folders.
func TestMain(m *testing.M) {
	for _, v := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
		"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT"} {
		os.Unsetenv(v)
	}
	for k, v := range map[string]string{
		"GIT_CONFIG_GLOBAL":       os.DevNull,
		"GIT_CONFIG_NOSYSTEM":     "1",
		"GIT_AUTHOR_NAME":         "Test",
		"GIT_AUTHOR_EMAIL":        "test@example.com",
		"GIT_COMMITTER_NAME":      "Test",
		"GIT_COMMITTER_EMAIL":     "test@example.com",
		"GIT_CEILING_DIRECTORIES": os.TempDir(),
	} {
		os.Setenv(k, v)
	}
	os.Exit(m.Run())
}

// gitT runs git in dir for a test's setup or reference, and returns its
// trimmed output. It does not use the package's runner.
func gitT(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// newRepo returns the root of a new, empty repository.
func newRepo(t testing.TB) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	gitT(t, dir, nil, "init", "-q")
	return dir
}

// writeFiles writes files (path relative to dir → contents), making folders.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// commitAll commits everything in the working tree.
func commitAll(t testing.TB, dir, msg string) string {
	t.Helper()
	gitT(t, dir, nil, "add", "--all")
	gitT(t, dir, nil, "commit", "-q", "--allow-empty", "-m", msg)
	return gitT(t, dir, nil, "rev-parse", "HEAD")
}

// blobSHA is git's object name of a blob holding content.
func blobSHA(content string) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00%s", len(content), content)
	return hex.EncodeToString(h.Sum(nil))
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"fatal", Error{Args: []string{"add", "--all", "--", "x"}, ExitCode: 128,
			Stderr: "fatal: pathspec 'x' did not match any files\n"},
			"git add: pathspec 'x' did not match any files"},
		{"global options skipped", Error{Args: []string{"-c", "core.quotePath=true", "ls-files"}, ExitCode: 128},
			"git ls-files: exit status 128"},
		{"hints dropped", Error{Args: []string{"add", "x.log"}, ExitCode: 1,
			Stderr: "The following paths are ignored by one of your .gitignore files:\nx.log\nhint: Use -f if you really want to add them.\n"},
			"git add: The following paths are ignored by one of your .gitignore files:"},
		{"fatal after warning", Error{Args: []string{"rev-parse", "HEAD"}, ExitCode: 128,
			Stderr: "warning: refname 'HEAD' is ambiguous.\nfatal: ambiguous argument 'HEAD': unknown revision or path not in the working tree.\nUse '--' to separate paths from revisions, like this:\n"},
			"git rev-parse: ambiguous argument 'HEAD': unknown revision or path not in the working tree."},
		{"only a warning", Error{Args: []string{"status"}, ExitCode: 1, Stderr: "\nwarning: odd\nhint: try\n"},
			"git status: warning: odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunError(t *testing.T) {
	dir := newRepo(t)
	_, err := run(context.Background(), dir, nil, "rev-parse", "--verify", "no-such-ref")
	var gerr *Error
	if !errors.As(err, &gerr) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if gerr.ExitCode != 128 || !strings.Contains(gerr.Stderr, "Needed a single revision") ||
		gerr.Args[0] != "rev-parse" || errors.Is(err, ErrNotRepository) {
		t.Errorf("err = %#v", gerr)
	}
}

func TestGitNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := HashInputs(context.Background(), t.TempDir(), []string{"x"})
	if !errors.Is(err, ErrGitNotFound) {
		t.Errorf("err = %v, want ErrGitNotFound", err)
	}
}

func TestCanceled(t *testing.T) {
	dir := newRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Head(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestNotRepository(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	calls := map[string]func() error{
		"HashInputs": func() error { _, err := HashInputs(ctx, dir, []string{"x"}); return err },
		"IsClean":    func() error { _, err := IsClean(ctx, dir, []string{"x"}); return err },
		"Head":       func() error { _, err := Head(ctx, dir); return err },
		"CurrentBranch": func() error {
			_, err := CurrentBranch(ctx, dir)
			return err
		},
		"MergeBase": func() error { _, err := MergeBase(ctx, dir, "main"); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, ErrNotRepository) {
				t.Fatalf("err = %v, want ErrNotRepository", err)
			}
			if want := "not a git repository: " + dir; err.Error() != want {
				t.Errorf("message = %q, want %q", err.Error(), want)
			}
			var gerr *Error
			if !errors.As(err, &gerr) {
				t.Errorf("err does not wrap *Error")
			}
		})
	}
}
