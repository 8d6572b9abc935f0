package cache

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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

// files lists the regular files below dir, relative and slash-separated.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestFolderLayout pins what the folder holds, as openFolder documents:
// the object, its .attrs sidecar, and nothing left from a failed write.
func TestFolderLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	s := openTestFolder(t, dir)
	defer s.Close()
	if got, want := s.Describe(), "file://"+filepath.ToSlash(dir)+"/"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	put(t, s, "latest/job-main.txt", "text/plain; charset=utf-8", []byte("abc\n"))
	abortedWrite(t, s, "bundles/job-abc.tar.zst", 5000)
	want := []string{"latest/job-main.txt", "latest/job-main.txt.attrs"}
	if got := files(t, dir); !slices.Equal(got, want) {
		t.Errorf("files in the folder: %q, want %q", got, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "latest", "job-main.txt"))
	if err != nil || string(b) != "abc\n" {
		t.Errorf("object file holds %q, %v; want the data as written", b, err)
	}
	attrs, _ := os.ReadFile(filepath.Join(dir, "latest", "job-main.txt.attrs"))
	if !strings.Contains(string(attrs), `text/plain; charset=utf-8`) {
		t.Errorf(".attrs file holds %s, want the content type", attrs)
	}

	// A key ending in .attrs would collide with a sidecar.
	if _, err := s.NewWriter(context.Background(), "latest/x.attrs", ""); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewWriter of a key ending in .attrs: %v, want ErrInvalidKey", err)
	}

	// A file put there by hand, with no sidecar, reads back as it is.
	if err := os.WriteFile(filepath.Join(dir, "latest", "by-hand.txt"), []byte("hand"), 0o666); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, s, "latest/by-hand.txt")); got != "hand" {
		t.Errorf("Get of a file without a sidecar = %q", got)
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
