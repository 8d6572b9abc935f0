package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// noStaging fails if a staging folder is left in root.
func noStaging(t testing.TB, root string) {
	t.Helper()
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagingPrefix) {
			t.Errorf("staging folder %s left in the root", e.Name())
		}
	}
}

// TestRestoreStaging checks what Verify sees: the archive staged whole in
// a folder git ignores, the outputs not yet touched.
func TestRestoreStaging(t *testing.T) {
	root, _ := makeRoot(t)
	git, gitErr := exec.LookPath("git")
	if gitErr == nil {
		cmd := exec.Command(git, "init", "-q", ".")
		cmd.Dir = root
		must(t, os.RemoveAll(filepath.Join(root, ".git")))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git init: %v\n%s", err, out)
		}
	}
	before := snapshot(t, root)
	var gitStatus []byte
	verify := func() error {
		sameSnapshot(t, before, withoutStaging(snapshot(t, root)))
		entries, _ := os.ReadDir(root)
		var staging string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), stagingPrefix+strconv.Itoa(os.Getpid())+"-") {
				staging = filepath.Join(root, e.Name())
			}
		}
		if staging == "" {
			t.Fatal("no staging folder named for this process in the root")
		}
		if got, err := os.ReadFile(filepath.Join(staging, ".gitignore")); err != nil || string(got) != "*\n" {
			t.Errorf(".gitignore = %q, %v", got, err)
		}
		if got, _ := os.ReadFile(filepath.Join(staging, "new/dist/app.bin")); string(got) != "new app" {
			t.Errorf("staged dist/app.bin = %q", got)
		}
		if gitErr == nil {
			cmd := exec.Command(git, "status", "--porcelain", "--untracked-files=all")
			cmd.Dir = root
			gitStatus, _ = cmd.Output()
		}
		return nil
	}
	_, err := restoreBytes(t, goodArchive(t), root, testOutputs, RestoreOptions{Verify: verify})
	must(t, err)
	if bytes.Contains(gitStatus, []byte(stagingPrefix)) {
		t.Errorf("git sees the staging folder:\n%s", gitStatus)
	}
	noStaging(t, root)
}

// withoutStaging drops the staging folder from a snapshot.
func withoutStaging(m map[string]string) map[string]string {
	for name := range m {
		if strings.HasPrefix(name, stagingPrefix) {
			delete(m, name)
		}
	}
	return m
}

func TestRestoreVerifyRefuses(t *testing.T) {
	root, outside := makeRoot(t)
	before := snapshot(t, root)
	bad := errors.New("no valid signature")
	_, err := restoreBytes(t, goodArchive(t), root, testOutputs, RestoreOptions{Verify: func() error { return bad }})
	if !errors.Is(err, bad) {
		t.Errorf("err = %v, want Verify's error", err)
	}
	refused(t, root, outside, before)

	// A panic is not expected of Verify, but leaves nothing behind either.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Verify's panic was swallowed")
			}
		}()
		restoreBytes(t, goodArchive(t), root, testOutputs, RestoreOptions{Verify: func() error { panic("boom") }})
	}()
	refused(t, root, outside, before)
}

// TestRestoreLeavesOutputsOnFailure: a corrupt, truncated or cancelled
// archive, or a failing reader, leaves the outputs as they were even after
// good entries, and in the middle of a file.
func TestRestoreLeavesOutputsOnFailure(t *testing.T) {
	noise := make([]byte, 4<<20) // incompressible: most of the archive, many buffers
	rand.NewChaCha8([32]byte{}).Read(noise)
	big := string(noise)
	good := buildArchive(t, dir("out/"), file("out/first", "x"), file("dist/app.bin", "new"), file("out/big", big),
		file("out/last", "y"))
	boom := errors.New("connection reset")
	cases := []struct {
		name   string
		reader func(cancel func()) io.Reader
		want   error
	}{
		{"truncated in a file", func(func()) io.Reader { return bytes.NewReader(good[:len(good)/2]) }, ErrCorrupt},
		{"reader fails in a file", func(func()) io.Reader {
			return io.MultiReader(bytes.NewReader(good[:len(good)/2]), errReader{boom})
		}, boom},
		{"cancelled in a file", func(cancel func()) io.Reader {
			return &cancelAfterRead{r: bytes.NewReader(good), limit: int64(len(good) / 2), cancel: cancel}
		}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := makeRoot(t)
			before := snapshot(t, root)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := Restore(ctx, tc.reader(cancel), root, testOutputs, RestoreOptions{})
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if st.Files < 2 {
				t.Errorf("stats = %+v: the failure came before the good entries", st)
			}
			refused(t, root, outside, before)
		})
	}
}

// TestRestoreUndoesMoves: when an output cannot be moved into place (here
// something turned the folder above it into a file while the archive was
// staged), the outputs already moved go back.
func TestRestoreUndoesMoves(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, root string)
	}{
		{"file above an output", func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "z"), []byte("in the way"), 0o644))
		}},
		{"symlink above an output", func(t *testing.T, root string) {
			must(t, os.Mkdir(filepath.Join(root, "elsewhere"), 0o755))
			must(t, os.Symlink("elsewhere", filepath.Join(root, "z")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := makeRoot(t)
			must(t, os.Chmod(filepath.Join(root, "out/sub"), 0o555))
			must(t, os.Chmod(filepath.Join(root, "out"), 0o555))
			t.Cleanup(func() {
				os.Chmod(filepath.Join(root, "out"), 0o755)
				os.Chmod(filepath.Join(root, "out/sub"), 0o755)
			})
			outputs := []string{"dist/app.bin", "out", "z/new/app"}
			data := buildArchive(t, file("dist/app.bin", "new"), dir("out/"), file("out/x", "x"), file("z/new/app", "app"))
			var before map[string]string
			verify := func() error {
				tc.break_(t, root)
				before = withoutStaging(snapshot(t, root))
				return nil
			}
			_, err := restoreBytes(t, data, root, outputs, RestoreOptions{Verify: verify})
			if err == nil || !strings.Contains(err.Error(), "z/new/app") {
				t.Errorf("err = %v, want one about z/new/app", err)
			}
			t.Logf("err = %v", err)
			sameSnapshot(t, before, snapshot(t, root))
			if left, _ := os.ReadDir(outside); len(left) != 0 {
				t.Errorf("written outside the root: %v", left)
			}
			if left, _ := os.ReadDir(filepath.Join(root, "elsewhere")); len(left) != 0 {
				t.Errorf("written through the symlink: %v", left)
			}
		})
	}
}

// TestRestoreRemovesStaleStaging: staging folders of processes gone are
// removed, read-only folders and all; others are left.
func TestRestoreRemovesStaleStaging(t *testing.T) {
	root, _ := makeRoot(t)
	cmd := exec.Command("true")
	must(t, cmd.Run())
	dead := cmd.Process.Pid
	names := map[string]bool{ // name: removed
		stagingPrefix + strconv.Itoa(dead) + "-0123abcd":        true,
		stagingPrefix + strconv.Itoa(os.Getpid()) + "-0123abcd": false,
		stagingPrefix + "not-a-pid":                             false,
		".taskrunner-other":                                     false,
	}
	for name := range names {
		ro := filepath.Join(root, name, "old/0/ro")
		must(t, os.MkdirAll(ro, 0o755))
		must(t, os.WriteFile(filepath.Join(ro, "f"), nil, 0o444))
		must(t, os.Chmod(ro, 0o555))
		t.Cleanup(func() { os.Chmod(ro, 0o755) })
	}
	_, err := restoreBytes(t, goodArchive(t), root, testOutputs, RestoreOptions{})
	must(t, err)
	for name, removed := range names {
		if _, err := os.Lstat(filepath.Join(root, name)); (err != nil) != removed {
			t.Errorf("%s: removed = %v, want %v", name, err != nil, removed)
		}
	}
}

// TestRestoreInterrupted kills a process in the middle of a restore, once
// the archive is staged: the outputs are as before, and the next restore
// removes what the killed one left.
func TestRestoreInterrupted(t *testing.T) {
	if root := os.Getenv("ARCHIVE_TEST_INTERRUPT_ROOT"); root != "" {
		data := buildArchive(t, dir("out/"), file("out/new.txt", "new"))
		restoreBytes(t, data, root, testOutputs, RestoreOptions{Verify: func() error {
			os.Exit(3) // as if killed
			return nil
		}})
		t.Fatal("the restore went through")
	}
	root, outside := makeRoot(t)
	before := snapshot(t, root)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreInterrupted$")
	cmd.Env = append(os.Environ(), "ARCHIVE_TEST_INTERRUPT_ROOT="+root)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("the restoring process: %v\n%s", err, out)
	}
	left := withoutStaging(snapshot(t, root))
	sameSnapshot(t, before, left)
	if entries, _ := os.ReadDir(root); !hasStaging(entries) {
		t.Fatal("the killed restore left no staging folder: the test tests nothing")
	}
	_, err = restoreBytes(t, buildArchive(t, file("dist/app.bin", "new")), root, testOutputs, RestoreOptions{})
	must(t, err)
	noStaging(t, root)
	if left, _ := os.ReadDir(outside); len(left) != 0 {
		t.Errorf("written outside the root: %v", left)
	}
}

func hasStaging(entries []os.DirEntry) bool {
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagingPrefix) {
			return true
		}
	}
	return false
}
