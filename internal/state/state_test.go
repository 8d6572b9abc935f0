package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func newDir(t *testing.T) Dir {
	t.Helper()
	d := Dir{Root: filepath.Join(t.TempDir(), "state")}
	if err := d.Prepare(); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPrepare(t *testing.T) {
	d := newDir(t)
	at := time.Date(2026, 11, 29, 16, 40, 0, 123456000, time.UTC)
	id, release, err := d.NewBuild(at)
	if err != nil || id != "2026-11-29T16:40:00.123456Z" {
		t.Fatalf("NewBuild = %q, %v", id, err)
	}
	release()
	for _, sub := range []string{"locks", "hash", "builds/2026-11-29T16:40:00.123456Z/logs", "builds/2026-11-29T16:40:00.123456Z/results"} {
		if fi, err := os.Stat(filepath.Join(d.Root, sub)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	// Preparing again is harmless.
	if err := d.Prepare(); err != nil {
		t.Error(err)
	}
}

func TestPrepareUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Dir{Root: file}.Prepare()
	var ue *UnusableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "TASKRUNNER_STATE_DIRECTORY") {
		t.Errorf("Prepare in a file: %v, want an *UnusableError naming TASKRUNNER_STATE_DIRECTORY", err)
	}
}

func TestPaths(t *testing.T) {
	d := Dir{Root: "/s"}
	for got, want := range map[string]string{
		d.LockPath("build"):         "/s/locks/build.lock",
		d.HashPath("build"):         "/s/hash/build.hash",
		d.LogPath("ID", "build"):    "/s/builds/ID/logs/build.log",
		d.resultPath("ID", "build"): "/s/builds/ID/results/build",
		d.Build("ID"):               "/s/builds/ID",
	} {
		if got != want {
			t.Errorf("path %s, want %s", got, want)
		}
	}
}

func TestHashRoundTrip(t *testing.T) {
	d := newDir(t)
	sha := "0123456789abcdef0123456789abcdef01234567"
	for _, h := range []SavedHash{
		{Hash: "6b36308659163b577fd1c832107dc46ca3aa659b", HashInput: "100644 blob 257cc5642cb1a054f08cc83f2d943e56fd3ebe99\tinput.txt"},
		{Hash: "h", HashInput: "a \"b\" \\ <&> \n\x01 é", MainBranchCommit: &sha},
		{},
	} {
		if err := d.SaveHash("build", h); err != nil {
			t.Fatal(err)
		}
		got, err := d.LoadHash("build")
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || !reflect.DeepEqual(*got, h) {
			t.Errorf("LoadHash = %+v, want %+v", got, h)
		}
	}
}

// TestHashFileBytes: the file is the old tool's JSON, byte for byte, with no
// final newline, and no HTML escaping.
func TestHashFileBytes(t *testing.T) {
	d := newDir(t)
	sha := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		h    SavedHash
		want string
	}{
		{SavedHash{Hash: "6b36308659163b577fd1c832107dc46ca3aa659b", HashInput: "100644 blob 257cc5642cb1a054f08cc83f2d943e56fd3ebe99\tinput.txt"},
			`{"hash":"6b36308659163b577fd1c832107dc46ca3aa659b","hashInput":"100644 blob 257cc5642cb1a054f08cc83f2d943e56fd3ebe99\tinput.txt","mainBranchCommit":null}`},
		{SavedHash{Hash: "h", HashInput: "a<b>&\"c\"\n", MainBranchCommit: &sha},
			`{"hash":"h","hashInput":"a<b>&\"c\"\n","mainBranchCommit":"0123456789abcdef0123456789abcdef01234567"}`},
	}
	for _, tt := range tests {
		if err := d.SaveHash("build", tt.h); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(d.HashPath("build"))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("hash file\n%s\nwant\n%s", b, tt.want)
		}
	}
}

func TestLoadHashMissingOrCorrupt(t *testing.T) {
	d := newDir(t)
	if h, err := d.LoadHash("build"); h != nil || err != nil {
		t.Errorf("LoadHash of no file = %+v, %v; want nil, nil", h, err)
	}
	for _, content := range []string{"", "{", "not json", `{"hash":`} {
		if err := os.WriteFile(d.HashPath("build"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if h, err := d.LoadHash("build"); h != nil || err != nil {
			t.Errorf("LoadHash of %q = %+v, %v; want nil, nil", content, h, err)
		}
	}
	// A file written by the old tool, with spaces and a newline, reads.
	old := "{ \"hash\": \"abc\", \"hashInput\": \"x\", \"mainBranchCommit\": \"def\" }\n"
	if err := os.WriteFile(d.HashPath("build"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := d.LoadHash("build")
	if err != nil || h == nil || h.Hash != "abc" || h.HashInput != "x" || h.MainBranchCommit == nil || *h.MainBranchCommit != "def" {
		t.Errorf("LoadHash of %q = %+v, %v", old, h, err)
	}
}

func TestSaveHashLeavesNoTemporaryFile(t *testing.T) {
	d := newDir(t)
	if err := d.SaveHash("build", SavedHash{Hash: "x"}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(d.Root, "hash"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "build.hash" {
		t.Errorf("hash folder holds %v, want build.hash only", entries)
	}
}

func TestResult(t *testing.T) {
	d := newDir(t)
	id, release, err := d.NewBuild(time.Date(2026, 11, 29, 16, 40, 0, 123456000, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if n, ok, err := d.Result(id, "build"); n != 0 || ok || err != nil {
		t.Errorf("Result before any = %d, %v, %v; want 0, false, nil", n, ok, err)
	}
	for _, status := range []int{0, 3, 130} {
		if err := d.SaveResult(id, "build", status); err != nil {
			t.Fatal(err)
		}
		n, ok, err := d.Result(id, "build")
		if n != status || !ok || err != nil {
			t.Errorf("Result = %d, %v, %v; want %d, true, nil", n, ok, err, status)
		}
	}
	b, err := os.ReadFile(filepath.Join(d.Build(id), "results", "build"))
	if err != nil || string(b) != "130" {
		t.Errorf("result file holds %q (%v), want \"130\"", b, err)
	}
	// Other builds and other jobs have their own results.
	if _, ok, _ := d.Result(id, "other"); ok {
		t.Error("Result of another job found")
	}
	other, releaseOther, err := d.NewBuild(time.Date(2026, 11, 29, 16, 41, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer releaseOther()
	if _, ok, _ := d.Result(other, "build"); ok {
		t.Error("Result in another build found")
	}
	// A file with a newline, as a person or a shell might write it, reads.
	if err := os.WriteFile(filepath.Join(d.Build(id), "results", "build"), []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, ok, err := d.Result(id, "build"); n != 7 || !ok || err != nil {
		t.Errorf("Result of \"7\\n\" = %d, %v, %v", n, ok, err)
	}
	if err := os.WriteFile(filepath.Join(d.Build(id), "results", "build"), []byte("seven"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Result(id, "build"); err == nil {
		t.Error("Result of \"seven\" is no error")
	}
}

func TestCommand(t *testing.T) {
	d := newDir(t)
	id, release, err := d.NewBuild(time.Date(2026, 11, 29, 16, 40, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if c, ok, err := d.Command(id, "gen"); c != "" || ok || err != nil {
		t.Errorf("Command before any = %q, %v, %v; want \"\", false, nil", c, ok, err)
	}
	for _, cmd := range []string{"make gen", "bash -c 'echo a; echo b'"} {
		if err := d.SaveCommand(id, "gen", cmd); err != nil {
			t.Fatal(err)
		}
		if c, ok, err := d.Command(id, "gen"); c != cmd || !ok || err != nil {
			t.Errorf("Command = %q, %v, %v; want %q, true, nil", c, ok, err, cmd)
		}
	}
	b, err := os.ReadFile(filepath.Join(d.Build(id), "commands", "gen"))
	if err != nil || string(b) != "bash -c 'echo a; echo b'\n" {
		t.Errorf("command file holds %q (%v)", b, err)
	}
	// A build whose folder has no commands/ (an older taskrunner's) gets one.
	if err := os.RemoveAll(filepath.Join(d.Build(id), "commands")); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveCommand(id, "gen", "true"); err != nil {
		t.Errorf("SaveCommand without commands/: %v", err)
	}
	// The result file stays a bare exit status.
	if err := d.SaveResult(id, "gen", 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(d.Build(id), "results", "gen")); string(b) != "0" {
		t.Errorf("result file holds %q, want \"0\"", b)
	}
}

func TestValidJobName(t *testing.T) {
	for _, name := range []string{"build", "a.b", "my task", "-x", "..x", "ünï", "job:1"} {
		if err := ValidJobName(name); err != nil {
			t.Errorf("ValidJobName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a/b", "/", "a\nb", "a\x00b"} {
		if err := ValidJobName(name); err == nil {
			t.Errorf("ValidJobName(%q) = nil, want an error", name)
		}
	}
}

func TestLockExcludes(t *testing.T) {
	d := newDir(t)
	unlock, err := d.Lock(context.Background(), "build", testBuild, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.LockPath("build")); err != nil {
		t.Errorf("lock file: %v", err)
	}

	// A second holder waits until its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if unlock2, err := d.Lock(ctx, "build", testBuild, nil); err == nil {
		unlock2.Unlock()
		t.Fatal("a second Lock succeeded while the first was held")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock: %v, want the context's error", err)
	}

	// Another job's lock is independent.
	unlockOther, err := d.Lock(ctx0(t), "other", testBuild, nil)
	if err != nil {
		t.Fatalf("Lock of another job: %v", err)
	}
	unlockOther.Unlock()

	// A waiting holder gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		unlock2, err := d.Lock(ctx0(t), "build", testBuild, nil)
		if err == nil {
			unlock2.Unlock()
		}
		got <- err
	}()
	unlock.Unlock()
	if err := <-got; err != nil {
		t.Fatalf("waiting Lock after unlock: %v", err)
	}

	// And once released, it can be taken at once.
	unlock3, err := d.Lock(ctx0(t), "build", testBuild, nil)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock3.Unlock()
}

// TestLockCancelledWaitDoesNotKeepLock: a wait given up by its context must
// not take the lock later behind the caller's back.
func TestLockCancelledWaitDoesNotKeepLock(t *testing.T) {
	d := newDir(t)
	unlock, err := d.Lock(context.Background(), "build", testBuild, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Lock(ctx, "build", testBuild, nil); err == nil {
		t.Fatal("Lock with a cancelled context succeeded while the lock was held")
	}
	unlock.Unlock()
	unlock2, err := d.Lock(ctx0(t), "build", testBuild, nil)
	if err != nil {
		t.Fatalf("Lock after the cancelled wait: %v", err)
	}
	unlock2.Unlock()
}

// ctx0 is a context that ends the test, rather than hanging it, when a lock
// that should come does not.
func ctx0(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
