package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// entry is one member of a hand-made archive.
type entry struct {
	typ  byte
	name string
	link string // symlink or hard link target
	data string
}

func file(name, data string) entry   { return entry{typ: tar.TypeReg, name: name, data: data} }
func dir(name string) entry          { return entry{typ: tar.TypeDir, name: name} }
func symlink(name, to string) entry  { return entry{typ: tar.TypeSymlink, name: name, link: to} }
func hardlink(name, to string) entry { return entry{typ: tar.TypeLink, name: name, link: to} }

// buildArchive makes a .tar.zst holding entries, in order.
func buildArchive(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := newFrameWriter(&buf, WriteOptions{})
	must(t, err)
	tw := tar.NewWriter(enc)
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: 0o644,
			Size: int64(len(e.data)), ModTime: time.Unix(1e9, 0)}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		must(t, tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(e.data))
		must(t, err)
	}
	must(t, tw.Close())
	must(t, enc.Close())
	return buf.Bytes()
}

func TestExtractRefusesUnsafeEntries(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, root, outside string) // state before extraction
		entries func(outside string) []entry
	}{
		{name: "absolute name", entries: func(o string) []entry {
			return []entry{file(filepath.Join(o, "evil"), "x")}
		}},
		{name: "dot-dot name", entries: func(string) []entry {
			return []entry{file("../outside/evil", "x")}
		}},
		{name: "dot-dot inside name", entries: func(string) []entry {
			return []entry{dir("a/"), file("a/../../outside/evil", "x")}
		}},
		{name: "dot-dot folder", entries: func(string) []entry {
			return []entry{dir("../outside/sub/")}
		}},
		{name: "symlink to absolute path then through it", entries: func(o string) []entry {
			return []entry{symlink("link", o), file("link/evil", "x")}
		}},
		{name: "symlink climbing out", entries: func(string) []entry {
			return []entry{symlink("link", "../outside"), file("link/evil", "x")}
		}},
		{name: "deep symlink climbing out", entries: func(string) []entry {
			return []entry{dir("a/"), dir("a/b/"), symlink("a/b/link", "../../../outside/evil")}
		}},
		{name: "symlink to symlink climbing out", entries: func(string) []entry {
			return []entry{symlink("a", "b"), symlink("b", "../outside"), file("a/evil", "x")}
		}},
		{name: "symlink to existing symlink pointing out", setup: func(t *testing.T, root, o string) {
			must(t, os.Symlink(o, filepath.Join(root, "pre")))
		}, entries: func(string) []entry {
			return []entry{symlink("a", "pre"), file("a/evil", "x")}
		}},
		{name: "symlink through existing relative symlink pointing out", setup: func(t *testing.T, root, o string) {
			must(t, os.Mkdir(filepath.Join(root, "d"), 0o755))
			must(t, os.Symlink("../../outside", filepath.Join(root, "d/pre")))
		}, entries: func(string) []entry {
			return []entry{symlink("a", "d/pre/evil")}
		}},
		{name: "dot-dot after a name made to climb out later", entries: func(string) []entry {
			// Lexically "d/d/.." is "d", but once d -> . it is "..".
			return []entry{symlink("e", "d/d/.."), symlink("d", "."), file("e/outside/evil", "x")}
		}},
		{name: "file through in-root symlink", entries: func(string) []entry {
			return []entry{dir("sub/"), symlink("link", "sub"), file("link/f", "x")}
		}},
		{name: "folder replaced by a symlink, then written through", entries: func(string) []entry {
			return []entry{dir("d/"), file("d/a", "x"), dir("sub/"), symlink("d", "sub"), file("d/b", "x")}
		}},
		{name: "file through existing symlink pointing out", setup: func(t *testing.T, root, o string) {
			must(t, os.Symlink(o, filepath.Join(root, "pre")))
		}, entries: func(string) []entry {
			return []entry{file("pre/evil", "x")}
		}},
		{name: "folder through existing symlink pointing out", setup: func(t *testing.T, root, o string) {
			must(t, os.Symlink("../outside", filepath.Join(root, "pre")))
		}, entries: func(string) []entry {
			return []entry{dir("pre/sub/")}
		}},
		{name: "hard link climbing out", setup: func(t *testing.T, _, o string) {
			must(t, os.WriteFile(filepath.Join(filepath.Dir(o), "secret"), []byte("s"), 0o600))
		}, entries: func(string) []entry {
			return []entry{hardlink("h", "../secret")}
		}},
		{name: "hard link to absolute path", entries: func(o string) []entry {
			return []entry{hardlink("h", filepath.Join(filepath.Dir(o), "secret"))}
		}},
		{name: "hard link to a symlink pointing out", setup: func(t *testing.T, root, o string) {
			must(t, os.Symlink(o, filepath.Join(root, "pre")))
		}, entries: func(string) []entry {
			return []entry{hardlink("h", "pre")}
		}},
		{name: "hard link through a symlink", entries: func(string) []entry {
			return []entry{dir("sub/"), file("sub/f", "x"), symlink("link", "sub"), hardlink("h", "link/f")}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			outside := filepath.Join(base, "outside")
			must(t, os.Mkdir(root, 0o755))
			must(t, os.Mkdir(outside, 0o755))
			if tc.setup != nil {
				tc.setup(t, root, outside)
			}
			data := buildArchive(t, tc.entries(outside)...)
			_, err := Extract(context.Background(), bytes.NewReader(data), root)
			var unsafe *UnsafeEntryError
			if !errors.As(err, &unsafe) {
				t.Errorf("err = %v, want an *UnsafeEntryError", err)
			} else {
				t.Logf("refused: %v", err)
			}
			if left, _ := os.ReadDir(outside); len(left) != 0 {
				t.Errorf("written outside the root: %v", left)
			}
			if left, _ := os.ReadDir(base); len(left) != 2 && tc.setup == nil {
				t.Errorf("written next to the root: %v", left)
			}
		})
	}
}

// TestExtractAcceptsSafeLinks guards against refusing what real outputs
// hold: library version chains, links up to a sibling, links not yet
// satisfied, hard links.
func TestExtractAcceptsSafeLinks(t *testing.T) {
	entries := []entry{
		symlink("lib/libfoo.so", "libfoo.so.1"),
		symlink("lib/libfoo.so.1", "libfoo.so.1.2"),
		file("lib/libfoo.so.1.2", "elf"),
		dir("node_modules/.bin/"),
		symlink("node_modules/.bin/tool", "../tool/cli.js"),
		file("node_modules/tool/cli.js", "js"),
		symlink("a/b/c/up", "../../../lib/./libfoo.so"),
		symlink("dangling", "later/file"),
		hardlink("lib/copy", "lib/libfoo.so.1.2"),
		file("./dot/slash", "x"),
	}
	root := t.TempDir()
	st, err := Extract(context.Background(), bytes.NewReader(buildArchive(t, entries...)), root)
	must(t, err)
	if st.Files != 9 || st.Dirs != 1 {
		t.Errorf("stats = %+v, want 9 files and 1 folder", st)
	}
	got, err := os.ReadFile(filepath.Join(root, "a/b/c/up"))
	if err != nil || string(got) != "elf" {
		t.Errorf("a/b/c/up reads %q, %v; want the library through the chain", got, err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "dot/slash")); string(got) != "x" {
		t.Errorf("dot/slash = %q", got)
	}
}

func TestUnsafeEntryErrorMessage(t *testing.T) {
	data := buildArchive(t, file("../evil", "x"))
	_, err := Extract(context.Background(), bytes.NewReader(data), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `"../evil"`) {
		t.Errorf("err = %v, want it to name the entry", err)
	}
}
