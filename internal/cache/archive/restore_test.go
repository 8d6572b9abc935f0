package archive

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// snapshot describes every entry under root but root itself: type,
// permissions, contents or link target, and files' times. Folders' times
// are left out: moving an output in and out of a folder changes its time.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x %v", sha256.Sum256(data), fi.ModTime().UnixNano())
		}
		m[filepath.ToSlash(rel)] = desc
		return nil
	})
	must(t, err)
	return m
}

// sameSnapshot reports the differences between two snapshots.
func sameSnapshot(t testing.TB, want, got map[string]string) {
	t.Helper()
	var diffs []string
	for name, w := range want {
		if g, ok := got[name]; !ok {
			diffs = append(diffs, "missing: "+name)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("changed: %s: %s, was %s", name, g, w))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, "new: "+name)
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

// unlock returns the mode of everything under root, and makes its folders
// readable and writable, so that a test can look inside and clean up.
func unlock(t *testing.T, root string) map[string]fs.FileMode {
	modes := make(map[string]fs.FileMode)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		modes[filepath.ToSlash(rel)] = fi.Mode()
		if fi.IsDir() && fi.Mode().Perm()&0o700 != 0o700 {
			return os.Chmod(p, fi.Mode().Perm()|0o700) // before WalkDir reads it
		}
		return nil
	})
	must(t, err)
	return modes
}

// goodArchive replaces both test outputs.
func goodArchive(t testing.TB) []byte {
	return buildArchive(t, dir("dist/"), dir("out/"), file("out/new.txt", "new"), dir("out/ro/"),
		file("out/ro/f", "f"), file("dist/app.bin", "new app"))
}

func TestRestoreReplacesOutputs(t *testing.T) {
	root, _ := makeRoot(t)
	before := snapshot(t, root)
	_, err := restoreBytes(t, goodArchive(t), root, testOutputs, RestoreOptions{})
	must(t, err)
	after := snapshot(t, root)
	for name := range before {
		if !strings.HasPrefix(name, "out") && name != "dist/app.bin" && after[name] != before[name] {
			t.Errorf("%s changed: %s, was %s", name, after[name], before[name])
		}
	}
	for _, gone := range []string{"out/old.txt", "out/sub"} {
		if _, ok := after[gone]; ok {
			t.Errorf("%s is still there: the output was merged into, not replaced", gone)
		}
	}
	for name, want := range map[string]string{"out/new.txt": "new", "out/ro/f": "f", "dist/app.bin": "new app"} {
		if got, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	noStaging(t, root)
}

func TestRestoreModes(t *testing.T) {
	mask := umask()
	cases := []struct {
		entry entry
		want  fs.FileMode
	}{
		{entry{typ: '0', name: "out/rwx-all", mode: 0o777}, 0o777},
		{entry{typ: '0', name: "out/rw-all", mode: 0o666}, 0o666},
		{entry{typ: '0', name: "out/setuid", mode: 0o4755}, 0o755},
		{entry{typ: '0', name: "out/setgid", mode: 0o2755}, 0o755},
		{entry{typ: '0', name: "out/read-only", mode: 0o400}, 0o400},
		{entry{typ: '5', name: "out/dir-all/", mode: 0o777}, 0o777 | fs.ModeDir},
		{entry{typ: '5', name: "out/dir-sticky/", mode: 0o1777}, 0o777 | fs.ModeDir},
		{entry{typ: '5', name: "out/dir-setgid/", mode: 0o2775}, 0o775 | fs.ModeDir},
		{entry{typ: '5', name: "out/dir-read-only/", mode: 0o555}, 0o555 | fs.ModeDir},
		{entry{typ: '0', name: "out/dir-read-only/inside", mode: 0o644}, 0o644},
		{entry{typ: '0', name: "out/implied/inside", mode: 0o644}, 0o644},
	}
	entries := []entry{{typ: '5', name: "out/", mode: 0o777}}
	for _, c := range cases {
		entries = append(entries, c.entry)
	}
	root := t.TempDir()
	_, err := restoreBytes(t, buildArchive(t, entries...), root, []string{"out"}, RestoreOptions{})
	must(t, err)
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "out/dir-read-only"), 0o755) })
	check := func(name string, want fs.FileMode) {
		fi, err := os.Lstat(filepath.Join(root, name))
		if err != nil {
			t.Error(err)
			return
		}
		want &^= mask
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v (umask %03o)", name, fi.Mode(), want, mask)
		}
	}
	for _, c := range cases {
		check(strings.TrimSuffix(c.entry.name, "/"), c.want)
	}
	check("out", 0o777|fs.ModeDir)
	check("out/implied", 0o755|fs.ModeDir)
}

func TestUmask(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status: the umask is assumed 022")
	}
	// Setting it is how to read it otherwise: a test can race with itself.
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	if got := umask(); got != 0o027 {
		t.Errorf("umask() = %03o, want 027", got)
	}
}

// TestRestoreReplacesReadOnlyOutput: old outputs with read-only folders
// are moved away and removed.
func TestRestoreReplacesReadOnlyOutput(t *testing.T) {
	root, _ := makeRoot(t)
	for _, d := range []string{"out/sub", "out"} {
		must(t, os.Chmod(filepath.Join(root, d), 0o555))
	}
	t.Cleanup(func() {
		os.Chmod(filepath.Join(root, "out"), 0o755)
		os.Chmod(filepath.Join(root, "out/ro"), 0o755)
	})
	data := buildArchive(t, entry{typ: '5', name: "out/", mode: 0o555}, entry{typ: '5', name: "out/ro/", mode: 0o500},
		file("out/ro/f", "new"))
	_, err := restoreBytes(t, data, root, []string{"out"}, RestoreOptions{})
	must(t, err)
	noStaging(t, root)
	if got, _ := os.ReadFile(filepath.Join(root, "out/ro/f")); string(got) != "new" {
		t.Errorf("out/ro/f = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "out/sub")); err == nil {
		t.Error("the old out/sub is still there")
	}
	// And again: the new output is read-only too.
	_, err = restoreBytes(t, data, root, []string{"out"}, RestoreOptions{})
	must(t, err)
	noStaging(t, root)
}

// TestRestoreWholeRoot: with the output ".", each entry at the top of the
// archive replaces what is there, and folders the archive only implies
// are merged into, as when an archive of a task's sub-folder is restored.
func TestRestoreWholeRoot(t *testing.T) {
	root, _ := makeRoot(t)
	must(t, os.MkdirAll(filepath.Join(root, "app/out/kept"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "app/build.sh"), []byte("tracked"), 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "lib/old"), 0o755))
	data := buildArchive(t,
		dir("./"),
		file("input.txt", "replaced"),
		file("app/out/result.txt", "result"), // app and app/out implied
		dir("dist/"),
		file("dist/new", "new"),
		dir("lib/"),
		file("fresh/implied/file", "f"),
	)
	before := snapshot(t, root)
	_, err := restoreBytes(t, data, root, []string{"."}, RestoreOptions{})
	must(t, err)
	after := snapshot(t, root)
	noStaging(t, root)
	for name, want := range map[string]string{
		"input.txt": "replaced", "app/out/result.txt": "result", "app/build.sh": "tracked",
		"dist/new": "new", "fresh/implied/file": "f", ".git/config": "[core]\n", "build.sh": "echo build\n",
		"out/old.txt": "old output\n",
	} {
		if got, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	for name, there := range map[string]bool{"app/out/kept": true, "dist/app.bin": false, "lib/old": false} {
		if _, ok := after[name]; ok != there {
			t.Errorf("%s: there = %v, want %v", name, ok, there)
		}
	}
	if after[".git/hooks/pre-commit"] != before[".git/hooks/pre-commit"] {
		t.Error(".git changed")
	}

	// .git stays refused, and so does a link into it.
	for _, bad := range [][]entry{
		{file(".git/config", "x")},
		{symlink("hooks", ".git/hooks")},
		{symlink("a/x", "../.git")},
	} {
		root, outside := makeRoot(t)
		before := snapshot(t, root)
		_, err := restoreBytes(t, buildArchive(t, bad...), root, []string{"."}, RestoreOptions{})
		var unsafe *UnsafeEntryError
		if !errors.As(err, &unsafe) {
			t.Errorf("%v: err = %v, want an *UnsafeEntryError", bad, err)
		}
		refused(t, root, outside, before)
	}
}

// TestRestoreOutputs: outputs are cleaned, one the archive lacks is left
// alone, the folders above an output are created, and an output below a
// symlink or in .git is refused before anything is read.
func TestRestoreOutputs(t *testing.T) {
	root, _ := makeRoot(t)
	data := buildArchive(t, file("new/deep/app", "app"), file("dist/app.bin", "new"))
	outputs := []string{"./dist//app.bin", filepath.Join("new", "deep", "app"), "out", "dist/app.bin"}
	_, err := restoreBytes(t, data, root, outputs, RestoreOptions{})
	must(t, err)
	if got, _ := os.ReadFile(filepath.Join(root, "out/old.txt")); string(got) != "old output\n" {
		t.Errorf("out, not in the archive, changed: out/old.txt = %q", got)
	}
	fi, err := os.Stat(filepath.Join(root, "new/deep"))
	if err != nil || fi.Mode().Perm() != 0o755&^umask() {
		t.Errorf("new/deep: %v, %v; want a folder with mode 0755 less the umask", fi, err)
	}

	must(t, os.Mkdir(filepath.Join(root, "real"), 0o755))
	must(t, os.Symlink("real", filepath.Join(root, "build")))
	for _, outputs := range [][]string{{"build/app"}, {".git/hooks"}, {"../x"}, {"/abs"}, {""}} {
		read := false
		r := readerFunc(func(p []byte) (int, error) { read = true; return 0, io.EOF })
		_, err := Restore(context.Background(), r, root, outputs, RestoreOptions{})
		if err == nil || read {
			t.Errorf("outputs %q: err = %v, read = %v; want an error before reading", outputs, err, read)
		}
		t.Logf("outputs %q: %v", outputs, err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "real")); len(left) != 0 {
		t.Errorf("written through the symlink: %v", left)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestRestoreDeepTree round-trips a tree deeper than the folder handles
// the extractor keeps open, with files at every level, so that it climbs
// up and down past them.
func TestRestoreDeepTree(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "out")
	for i := range 150 {
		must(t, os.MkdirAll(filepath.Join(p, "s"), 0o755))
		must(t, os.WriteFile(filepath.Join(p, "f"), []byte(strconv.Itoa(i)), 0o644))
		must(t, os.WriteFile(filepath.Join(p, "s/g"), []byte(strconv.Itoa(i)), 0o600))
		if i%7 == 0 {
			must(t, os.Chmod(filepath.Join(p, "s"), 0o500))
			defer os.Chmod(filepath.Join(p, "s"), 0o755)
		}
		p = filepath.Join(p, "d")
	}
	file, _ := writeArchive(t, src, []string{"out"})
	dst := t.TempDir()
	_, err := restoreFile(t, file, dst, []string{"out"})
	must(t, err)
	sameTrees(t, src, dst, []string{"out"})
	unlock(t, dst)
}

// TestRestoreRevisitsFolders: an archive may come back to a folder after
// others, even a read-only one; it ends with its archived mode and time.
func TestRestoreRevisitsFolders(t *testing.T) {
	data := buildArchive(t,
		entry{typ: '5', name: "out/ro/", mode: 0o555},
		file("out/ro/a", "a"),
		file("out/other/b", "b"),
		file("out/ro/c", "c"),
		file("out/other/d", "d"),
		entry{typ: '5', name: "out/other/", mode: 0o700},
	)
	root := t.TempDir()
	_, err := restoreBytes(t, data, root, []string{"out"}, RestoreOptions{})
	must(t, err)
	defer unlock(t, root)
	for name, mode := range map[string]fs.FileMode{"out/ro": 0o555, "out/other": 0o700} {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil || fi.Mode().Perm() != mode&^umask() || !fi.ModTime().Equal(time.Unix(1e9, 0)) {
			t.Errorf("%s: %v, %v; want mode %v and the archived time", name, fi.Mode(), err, mode)
		}
	}
	for _, name := range []string{"out/ro/a", "out/ro/c", "out/other/b", "out/other/d"} {
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			t.Error(err)
		}
	}
}
