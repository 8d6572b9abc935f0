package cache

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/taskrunner/taskrunner/internal/config"
)

func openTestFolder(t *testing.T, dir string) Store {
	t.Helper()
	s, err := Open(context.Background(), config.Cache{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFolderStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) Store {
		return openTestFolder(t, t.TempDir())
	})
}

// entries lists everything below dir, relative and slash-separated, hidden
// names included: folders end in "/", symlinks in "@", anything else that is
// not a regular file in "?".
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			rel += "/"
		case d.Type()&fs.ModeSymlink != 0:
			rel += "@"
		case !d.Type().IsRegular():
			rel += "?"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func wantEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := entries(t, dir); !slices.Equal(got, want) {
		t.Errorf("the folder holds %q, want %q", got, want)
	}
}

// TestFolderLayout pins what the folder holds, as openFolder documents: the
// objects, and while a writer is open its temporary file beside the object.
func TestFolderLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	s := openTestFolder(t, dir)
	defer s.Close()
	if got, want := s.Describe(), "file://"+filepath.ToSlash(dir)+"/"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}

	w, err := s.NewWriter(testCtx(t), "latest/job-main.txt", "text/plain; charset=utf-8")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abc\n")); err != nil {
		t.Fatal(err)
	}
	got := entries(t, dir)
	if len(got) != 2 || got[0] != "latest/" || !regexp.MustCompile(`^latest/\.[0-9a-f]{16}\.tmp$`).MatchString(got[1]) {
		t.Errorf("while writing, the folder holds %q, want latest/ and latest/.<16 hex digits>.tmp", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	abortedWrite(t, s, "bundles/job-abc.tar.zst", 5000)
	// Nothing keeps the content type, nor anything else.
	wantEntries(t, dir, "bundles/", "latest/", "latest/job-main.txt")
	b, err := os.ReadFile(filepath.Join(dir, "latest", "job-main.txt"))
	if err != nil || string(b) != "abc\n" {
		t.Errorf("object file holds %q, %v; want the data as written", b, err)
	}

	// No name is kept for the store's own use.
	put(t, s, "latest/x.attrs", "", []byte("attrs"))
	if got := string(get(t, s, "latest/x.attrs")); got != "attrs" {
		t.Errorf("Get(latest/x.attrs) = %q", got)
	}

	// A file put there by hand reads back as it is.
	if err := os.WriteFile(filepath.Join(dir, "latest", "by-hand.txt"), []byte("hand"), 0o666); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, s, "latest/by-hand.txt")); got != "hand" {
		t.Errorf("Get of a file put by hand = %q", got)
	}
}

// TestFolderModes: folders 0777 and files 0666, less the umask.
func TestFolderModes(t *testing.T) {
	old := unix.Umask(0o027)
	defer unix.Umask(old)
	dir := t.TempDir()
	s := openTestFolder(t, dir)
	defer s.Close()
	put(t, s, "a/b/c.txt", "", []byte("x"))
	for name, want := range map[string]fs.FileMode{"a": fs.ModeDir | 0o750, "a/b": fs.ModeDir | 0o750, "a/b/c.txt": 0o640} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

func TestFolderNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), config.Cache{URL: "file://" + f})
	if err == nil {
		s.Close()
		t.Fatal("Open of a file URL naming a regular file succeeded")
	}
	if !strings.Contains(err.Error(), f) {
		t.Errorf("error %q does not name the folder", err)
	}
}

// returnsSoon runs op and fails the test if it takes more than a few
// seconds, without waiting for it: an open of a named pipe blocks until a
// writer comes.
func returnsSoon(t *testing.T, what string, op func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		op()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// TestFolderNotAFile: only a regular file at the key is an object; anything
// else is a miss at once, and is neither opened nor followed.
func TestFolderNotAFile(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  string
		make func(t *testing.T, dir, path string) // makes the thing at dir/key
	}{
		{"named pipe", "latest/job-main.txt", func(t *testing.T, _, p string) { mkfifo(t, p) }},
		{"named pipe along the key", "pipe/job-main.txt", func(t *testing.T, dir, _ string) { mkfifo(t, filepath.Join(dir, "pipe")) }},
		{"folder", "latest/job-main.txt", func(t *testing.T, _, p string) { mkdir(t, filepath.Join(p, "x")) }},
		{"socket", "s", func(t *testing.T, _, p string) {
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Skip("no unix socket:", err)
			}
			t.Cleanup(func() { l.Close() })
		}},
		{"device", "latest/job-main.txt", func(t *testing.T, _, p string) {
			if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
				t.Skip("cannot make a device here:", err)
			}
		}},
		{"symlink outside", "latest/job-main.txt", func(t *testing.T, _, p string) { symlink(t, secret, p) }},
		{"symlink inside", "latest/job-main.txt", func(t *testing.T, dir, p string) {
			if err := os.WriteFile(filepath.Join(dir, "real.txt"), []byte("real"), 0o666); err != nil {
				t.Fatal(err)
			}
			symlink(t, "../real.txt", p)
		}},
		{"symlink to a named pipe", "latest/job-main.txt", func(t *testing.T, dir, p string) {
			mkfifo(t, filepath.Join(dir, "fifo"))
			symlink(t, "../fifo", p)
		}},
		{"dangling symlink", "latest/job-main.txt", func(t *testing.T, _, p string) { symlink(t, "/nonexistent", p) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mkdir(t, filepath.Join(dir, "latest"))
			path := filepath.Join(dir, filepath.FromSlash(tc.key))
			tc.make(t, dir, path)
			s := openTestFolder(t, dir)
			defer s.Close()
			returnsSoon(t, "Get", func() {
				r, err := s.Get(testCtx(t), tc.key)
				if err == nil {
					r.Close()
					t.Errorf("Get(%q) found an object", tc.key)
				} else if !errors.Is(err, ErrNotFound) {
					t.Errorf("Get(%q) = %v, want ErrNotFound", tc.key, err)
				} else {
					t.Logf("Get: %v", err)
				}
			})
			returnsSoon(t, "Exists", func() {
				if ok, err := s.Exists(testCtx(t), tc.key); ok || err != nil {
					t.Errorf("Exists(%q) = %v, %v; want false, nil", tc.key, ok, err)
				}
			})
			if b, _ := os.ReadFile(secret); string(b) != "secret" {
				t.Fatalf("the file outside holds %q", b)
			}
		})
	}
}

// TestFolderWriteOverSymlink: a write at a key that is a symlink replaces
// the link, and leaves its target alone.
func TestFolderWriteOverSymlink(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o666); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "latest"))
	symlink(t, secret, filepath.Join(dir, "latest", "job-main.txt"))
	s := openTestFolder(t, dir)
	defer s.Close()
	put(t, s, "latest/job-main.txt", "", []byte("new"))
	if b, _ := os.ReadFile(secret); string(b) != "secret" {
		t.Errorf("the link's target holds %q, want it untouched", b)
	}
	if got := string(get(t, s, "latest/job-main.txt")); got != "new" {
		t.Errorf("Get = %q, want the new object", got)
	}
	wantEntries(t, dir, "latest/", "latest/job-main.txt")
}

// TestFolderSymlinkFolder: a symlink to a folder along a key is never
// followed, whether it leads out of the store or into it.
func TestFolderSymlinkFolder(t *testing.T) {
	for _, tc := range []struct {
		name, link, target string // link below dir; target "" for outside
	}{
		{"outside", "bundles", ""},
		{"inside", "bundles", "real"},
		{"deeper", "a/b", "real"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := t.TempDir()
			if tc.target != "" {
				target = filepath.Join(dir, tc.target)
				mkdir(t, target)
			}
			if err := os.WriteFile(filepath.Join(target, "x.tar.zst"), []byte("planted"), 0o666); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, filepath.FromSlash(tc.link))
			mkdir(t, filepath.Dir(link))
			symlink(t, target, link)
			before := entries(t, dir)
			s := openTestFolder(t, dir)
			defer s.Close()

			wantMissing(t, s, tc.link+"/x.tar.zst")
			w, err := s.NewWriter(testCtx(t), tc.link+"/y.tar.zst", "")
			if err == nil {
				w.Write([]byte("through the link"))
				err = w.Close()
			}
			if err == nil {
				t.Errorf("a write through the symlink %s succeeded", tc.link)
			} else if !errors.Is(err, errNotFolder) || !strings.Contains(err.Error(), tc.link) {
				t.Errorf("a write through the symlink %s: %v; want an error naming it as not a folder", tc.link, err)
			} else {
				t.Logf("NewWriter: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(target, "y.tar.zst")); err == nil {
				t.Errorf("a file was written through the symlink %s", tc.link)
			}
			if got := entries(t, dir); !slices.Equal(got, before) {
				t.Errorf("the folder went from %q to %q", before, got)
			}
		})
	}
}

// TestFolderFailedWrite: a write that fails at Close, here because a folder
// is at the key, leaves no temporary file and nothing else changed.
func TestFolderFailedWrite(t *testing.T) {
	dir := t.TempDir()
	s := openTestFolder(t, dir)
	defer s.Close()
	put(t, s, "a/b", "", []byte("old"))
	w, err := s.NewWriter(testCtx(t), "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("a write over a folder succeeded")
	} else {
		t.Logf("Close: %v", err)
	}
	wantEntries(t, dir, "a/", "a/b")
	if got := string(get(t, s, "a/b")); got != "old" {
		t.Errorf("a/b holds %q after a failed write, want %q", got, "old")
	}

	// Abandoned writes, once data was written and before any was.
	put(t, s, "latest/x.txt", "", []byte("old"))
	abortedWrite(t, s, "latest/x.txt", 1000)
	abortedWrite(t, s, "latest/x.txt", 0)
	wantEntries(t, dir, "a/", "a/b", "latest/", "latest/x.txt")
	if got := string(get(t, s, "latest/x.txt")); got != "old" {
		t.Errorf("latest/x.txt holds %q after abandoned writes, want %q", got, "old")
	}
}

// TestFolderRemoved: a write after the folder was removed makes it again; a
// read there is a miss.
func TestFolderRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := openTestFolder(t, dir)
	defer s.Close()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, s, "latest/x.txt")
	put(t, s, "latest/x.txt", "", []byte("x"))
	if got := string(get(t, s, "latest/x.txt")); got != "x" {
		t.Errorf("Get = %q", got)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := unix.Mkfifo(path, 0o666); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o777); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
