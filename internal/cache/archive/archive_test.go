package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// outputs are the paths makeTree creates that the tests archive.
var outputs = []string{"bin/tool", "link-top", "out"}

// makeTree writes a tree of outputs under dir, with fixed old mtimes so a
// restore that keeps the extraction time shows.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	files := []struct {
		name string
		mode fs.FileMode
		data string
	}{
		{"out/a.txt", 0o644, "hello\n"},
		{"out/with space.txt", 0o600, "spaces in the name\n"},
		{"out/empty", 0o644, ""},
		{"out/nested/deep/x.bin", 0o444, strings.Repeat("xyz", 10000)},
		{"bin/tool", 0o755, "#!/bin/sh\necho tool\n"},
		{"not-an-output", 0o644, "left out\n"},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(f.data), f.mode))
		must(t, os.Chmod(p, f.mode))
	}
	must(t, os.Mkdir(filepath.Join(dir, "out/empty-dir"), 0o750))
	must(t, os.Symlink("a.txt", filepath.Join(dir, "out/link")))
	must(t, os.Symlink("../a.txt", filepath.Join(dir, "out/nested/up")))
	must(t, os.Symlink("out/a.txt", filepath.Join(dir, "link-top")))
	must(t, os.Chmod(filepath.Join(dir, "out/nested/deep"), 0o700))
	stamp := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, p := range []string{"out/a.txt", "out/with space.txt", "out/empty", "out/nested/deep/x.bin",
		"bin/tool", "out/empty-dir", "out/nested/deep", "out/nested", "out", "bin"} {
		stamp = stamp.Add(time.Hour)
		must(t, os.Chtimes(filepath.Join(dir, p), stamp, stamp))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sameTrees fails unless every path in names is the same under want and got:
// kind, permission bits, mtime (files and folders), contents, link targets,
// and no extra or missing entries inside folders.
func sameTrees(t *testing.T, want, got string, names []string) {
	t.Helper()
	for _, name := range names {
		err := filepath.WalkDir(filepath.Join(want, name), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(want, p)
			sameEntry(t, rel, p, filepath.Join(got, rel))
			return nil
		})
		must(t, err)
		err = filepath.WalkDir(filepath.Join(got, name), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(got, p)
			if _, err := os.Lstat(filepath.Join(want, rel)); err != nil {
				t.Errorf("%s: extracted but not in the source", rel)
			}
			return nil
		})
		must(t, err)
	}
}

func sameEntry(t *testing.T, rel, want, got string) {
	t.Helper()
	wi, err := os.Lstat(want)
	must(t, err)
	gi, err := os.Lstat(got)
	if err != nil {
		t.Errorf("%s: missing after extraction: %v", rel, err)
		return
	}
	if wi.Mode().Type() != gi.Mode().Type() {
		t.Errorf("%s: type %v, want %v", rel, gi.Mode().Type(), wi.Mode().Type())
		return
	}
	switch {
	case wi.Mode()&fs.ModeSymlink != 0:
		wt, _ := os.Readlink(want)
		gt, _ := os.Readlink(got)
		if wt != gt {
			t.Errorf("%s: link to %q, want %q", rel, gt, wt)
		}
		return
	case wi.Mode().IsRegular():
		wd, _ := os.ReadFile(want)
		gd, _ := os.ReadFile(got)
		if !bytes.Equal(wd, gd) {
			t.Errorf("%s: contents differ", rel)
		}
	}
	if wi.Mode().Perm() != gi.Mode().Perm() && rel != "." {
		t.Errorf("%s: mode %v, want %v", rel, gi.Mode().Perm(), wi.Mode().Perm())
	}
	if rel == "." {
		return // the root is the caller's: Restore leaves its mode and time
	}
	// Our archives and GNU tar's keep whole seconds, PAX ones may keep more.
	if gt, wt := gi.ModTime(), wi.ModTime(); gt.Before(wt.Truncate(time.Second)) || gt.After(wt) {
		t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
	}
}

// writeArchive archives outputs of src into a file and returns its path.
func writeArchive(t *testing.T, src string, paths []string) (string, Stats) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "bundle.tar.zst")
	f, err := os.Create(file)
	must(t, err)
	st, err := Write(context.Background(), f, src, paths, WriteOptions{})
	must(t, err)
	must(t, f.Close())
	return file, st
}

// restoreFile restores the archive in file into dst.
func restoreFile(t *testing.T, file, dst string, outputs []string) (Stats, error) {
	t.Helper()
	f, err := os.Open(file)
	must(t, err)
	defer f.Close()
	return Restore(context.Background(), f, dst, outputs, RestoreOptions{})
}

func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src)
	file, wst := writeArchive(t, src, outputs)
	dst := filepath.Join(t.TempDir(), "not-yet")
	xst, err := restoreFile(t, file, dst, outputs)
	must(t, err)
	sameTrees(t, src, dst, outputs)
	if _, err := os.Lstat(filepath.Join(dst, "not-an-output")); err == nil {
		t.Error("not-an-output was extracted although not asked for")
	}
	fi, _ := os.Stat(file)
	want := Stats{Files: 8, Dirs: 4, Bytes: 6 + 19 + 30000 + 20, Compressed: fi.Size()}
	if wst != want {
		t.Errorf("Write stats = %+v, want %+v", wst, want)
	}
	if xst != want {
		t.Errorf("Restore stats = %+v, want %+v", xst, want)
	}
}

func TestRoundTripWholeRootAndOverlaps(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src)
	must(t, os.WriteFile(filepath.Join(src, "!sorts-before-dot"), nil, 0o644))
	// "." holds everything; the other paths are inside it and must not be
	// archived twice.
	file, st := writeArchive(t, src, []string{"out/a.txt", ".", "out", "!sorts-before-dot"})
	if st.Files != 10 {
		t.Errorf("Files = %d, want 10 (each file once)", st.Files)
	}
	dst := t.TempDir()
	_, err := restoreFile(t, file, dst, []string{"."})
	must(t, err)
	sameTrees(t, src, dst, []string{"."})
}

func TestRestoreReplacesExisting(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src)
	file, _ := writeArchive(t, src, outputs)
	dst := t.TempDir()
	// A file where the archive has a folder, a folder where it has a file,
	// a read-only file with other contents, a link where it has a file.
	must(t, os.WriteFile(filepath.Join(dst, "out"), []byte("stale"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dst, "bin/tool/inner"), 0o755))
	must(t, os.WriteFile(filepath.Join(dst, "link-top"), []byte("stale"), 0o400))
	_, err := restoreFile(t, file, dst, outputs)
	must(t, err)
	sameTrees(t, src, dst, outputs)

	// Again over the restored tree, which has a read-only folder, and
	// extra files in the outputs, which go: outputs are replaced whole.
	must(t, os.Remove(filepath.Join(dst, "out/nested/deep/x.bin"))) // read-only
	must(t, os.WriteFile(filepath.Join(dst, "out/nested/deep/x.bin"), []byte("stale"), 0o600))
	must(t, os.Remove(filepath.Join(dst, "out/a.txt")))
	must(t, os.Symlink("with space.txt", filepath.Join(dst, "out/a.txt")))
	must(t, os.WriteFile(filepath.Join(dst, "out/nested/extra"), nil, 0o644))
	_, err = restoreFile(t, file, dst, outputs)
	must(t, err)
	sameTrees(t, src, dst, outputs)
}

func TestHardLinks(t *testing.T) {
	src := t.TempDir()
	must(t, os.Mkdir(filepath.Join(src, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "d/one"), []byte("shared"), 0o644))
	must(t, os.Link(filepath.Join(src, "d/one"), filepath.Join(src, "d/two")))
	file, st := writeArchive(t, src, []string{"d"})
	if st.Files != 2 || st.Bytes != 6 {
		t.Errorf("stats = %+v, want 2 files of 6 bytes stored once", st)
	}
	if got := listArchive(t, file); !slices.Equal(got, []string{"d/", "d/one", "d/two -> hardlink d/one"}) {
		t.Errorf("entries = %q", got)
	}
	dst := t.TempDir()
	_, err := restoreFile(t, file, dst, []string{"d"})
	must(t, err)
	one, _ := os.Stat(filepath.Join(dst, "d/one"))
	two, _ := os.Stat(filepath.Join(dst, "d/two"))
	if !os.SameFile(one, two) {
		t.Error("d/one and d/two are not one file after extraction")
	}
}

func TestSkipsSpecialFiles(t *testing.T) {
	src := t.TempDir()
	must(t, os.Mkdir(filepath.Join(src, "d"), 0o755))
	must(t, syscall.Mkfifo(filepath.Join(src, "d/fifo"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "d/f"), nil, 0o644))
	file, st := writeArchive(t, src, []string{"d"})
	if st.Skipped != 1 || st.Files != 1 {
		t.Errorf("stats = %+v, want 1 file and 1 skipped", st)
	}
	if got := listArchive(t, file); !slices.Equal(got, []string{"d/", "d/f"}) {
		t.Errorf("entries = %q", got)
	}
}

func TestWriteMissingOutput(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src)
	_, err := Write(context.Background(), io.Discard, src, []string{"out", "dist/app"}, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "dist/app") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want one naming dist/app and wrapping fs.ErrNotExist", err)
	}
}

func TestWriteRefusesUnrestorableSymlinks(t *testing.T) {
	for _, target := range []string{"/usr/bin/python3", "../../elsewhere", "a/../../b", "../input.txt",
		"../.git/config", ".", "../dist/app/.git"} {
		src := t.TempDir()
		must(t, os.Mkdir(filepath.Join(src, "out"), 0o755))
		must(t, os.Symlink(target, filepath.Join(src, "out/link")))
		must(t, os.MkdirAll(filepath.Join(src, "dist/app"), 0o755))
		_, err := Write(context.Background(), io.Discard, src, []string{"out/link", "dist/app"}, WriteOptions{})
		var unsafe *UnsafeEntryError
		if !errors.As(err, &unsafe) || unsafe.Name != "out/link" {
			t.Errorf("link to %s: err = %v, want an *UnsafeEntryError for out/link", target, err)
		}
	}
	// A link to another output is fine, and restores.
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "out"), 0o755))
	must(t, os.MkdirAll(filepath.Join(src, "dist/app"), 0o755))
	must(t, os.Symlink("../dist/app", filepath.Join(src, "out/link")))
	file, _ := writeArchive(t, src, []string{"out", "dist/app"})
	_, err := restoreFile(t, file, t.TempDir(), []string{"out", "dist/app"})
	must(t, err)
}

// TestWriteRefusesGit: .git is never restored, so never archived.
func TestWriteRefusesGit(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, ".git/hooks"), 0o755))
	must(t, os.MkdirAll(filepath.Join(src, "out/vendor/.GIT"), 0o755))
	must(t, os.MkdirAll(filepath.Join(src, "ok"), 0o755))
	for _, tc := range []struct {
		outputs []string
		name    string // of the refused entry, or "" for an error about the outputs
	}{
		{[]string{"."}, ".git"},
		{[]string{"ok", "out"}, "out/vendor/.GIT"},
		{[]string{".git/hooks"}, ""},
		{[]string{"ok/../.git"}, ""},
	} {
		_, err := Write(context.Background(), io.Discard, src, tc.outputs, WriteOptions{})
		var unsafe *UnsafeEntryError
		switch {
		case tc.name != "" && (!errors.As(err, &unsafe) || unsafe.Name != tc.name):
			t.Errorf("%q: err = %v, want an *UnsafeEntryError for %s", tc.outputs, err, tc.name)
		case tc.name == "" && (err == nil || !strings.Contains(err.Error(), "inside .git")):
			t.Errorf("%q: err = %v, want one saying the output is inside .git", tc.outputs, err)
		}
	}
}

// TestWriteLimits: Write refuses what Restore's default limits would.
func TestWriteLimits(t *testing.T) {
	src := t.TempDir()
	deep := strings.TrimSuffix(strings.Repeat("d/", DefaultMaxDepth+1), "/")
	must(t, os.MkdirAll(filepath.Join(src, deep), 0o755))
	_, err := Write(context.Background(), io.Discard, src, []string{"d"}, WriteOptions{})
	var limit *LimitError
	if !errors.As(err, &limit) || limit.What != LimitDepth {
		t.Errorf("err = %v, want a *LimitError on depth", err)
	}
}

// TestWriteLeavesStagingOut: a restore staging its archive in the root
// while the whole root is archived is not archived with it.
func TestWriteLeavesStagingOut(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, stagingPrefix+"1-ab/new/out"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "f"), nil, 0o644))
	file, _ := writeArchive(t, src, []string{"."})
	if got := listArchive(t, file); !slices.Equal(got, []string{"f"}) {
		t.Errorf("entries = %q", got)
	}
}

func TestWriteRefusesOutputsThroughSymlinks(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "real/build"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "real/build/app"), []byte("x"), 0o755))
	must(t, os.Symlink("real/build", filepath.Join(src, "build")))
	_, err := Write(context.Background(), io.Discard, src, []string{"build/app"}, WriteOptions{})
	var unsafe *UnsafeEntryError
	if !errors.As(err, &unsafe) || !strings.Contains(err.Error(), `symlink "build"`) {
		t.Errorf("err = %v, want an *UnsafeEntryError naming the symlink", err)
	}
	// The link itself is an output like any other.
	file, _ := writeArchive(t, src, []string{"build", "real"})
	if got := listArchive(t, file); !slices.Equal(got, []string{"build -> real/build", "real/", "real/build/", "real/build/app"}) {
		t.Errorf("entries = %q", got)
	}
}

func TestWriteRefusesPathsOutsideRoot(t *testing.T) {
	for _, p := range []string{"../x", "out/../../x", "/etc/passwd", ""} {
		_, err := Write(context.Background(), io.Discard, t.TempDir(), []string{p}, WriteOptions{})
		if err == nil {
			t.Errorf("Write(%q) succeeded, want an error", p)
		}
	}
}

// TestNamesMatchGNUTar checks that our entries are the ones GNU tar makes
// for the same command, in the same order.
func TestNamesMatchGNUTar(t *testing.T) {
	needTar(t)
	src := t.TempDir()
	makeTree(t, src)
	file, _ := writeArchive(t, src, outputs)
	ours := listArchive(t, file)
	args := append([]string{"-C", src, "--sort=name", "-cf", "-"}, outputs...)
	out, err := exec.Command("tar", args...).Output()
	must(t, err)
	theirs := listTar(t, bytes.NewReader(out))
	if !slices.Equal(ours, theirs) {
		t.Errorf("our entries:\n%s\nGNU tar's:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
	}
}

func TestGNUTarExtractsOurs(t *testing.T) {
	needTar(t)
	needZstd(t)
	src := t.TempDir()
	makeTree(t, src)
	file, _ := writeArchive(t, src, outputs)
	for _, cmd := range []string{
		`tar --zstd -xf "$ARCHIVE" -C "$DST"`,
		`zstd -dc "$ARCHIVE" | tar -xf - -C "$DST"`,
	} {
		t.Run(strings.Fields(cmd)[0], func(t *testing.T) {
			dst := t.TempDir()
			sh(t, cmd, "ARCHIVE="+file, "DST="+dst)
			sameTrees(t, src, dst, outputs)
		})
	}
}

func TestRestoreReadsGNUTar(t *testing.T) {
	needTar(t)
	needZstd(t)
	src := t.TempDir()
	makeTree(t, src)
	must(t, os.Link(filepath.Join(src, "out/a.txt"), filepath.Join(src, "out/hard")))
	file := filepath.Join(t.TempDir(), "gnu.tar.zst")
	for _, tc := range []struct {
		name, cmd string
		outputs   []string
	}{
		{"pipe", `tar -C "$SRC" -cf - bin/tool link-top out | zstd -3 -T0 -q -o "$ARCHIVE"`, outputs},
		{"tar-zstd-dot", `tar -C "$SRC" --zstd -cf "$ARCHIVE" .`, []string{"."}},
		{"pax-long", `tar -C "$SRC" --format=pax -cf - bin/tool link-top out | zstd -19 -q -o "$ARCHIVE"`, outputs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(file)
			sh(t, tc.cmd, "SRC="+src, "ARCHIVE="+file)
			dst := t.TempDir()
			_, err := restoreFile(t, file, dst, tc.outputs)
			must(t, err)
			sameTrees(t, src, dst, tc.outputs)
			a, _ := os.Stat(filepath.Join(dst, "out/a.txt"))
			h, _ := os.Stat(filepath.Join(dst, "out/hard"))
			if !os.SameFile(a, h) {
				t.Error("out/hard is not a hard link to out/a.txt")
			}
		})
	}
}

func needTar(t *testing.T) {
	t.Helper()
	out, err := exec.Command("tar", "--version").Output()
	if err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		missing(t, "GNU tar is not on this machine: compatibility with it is untested")
	}
}

// missing skips a test whose tool is missing, except in CI (CI=true),
// which installs every tool the tests use: there it fails.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: .ci/run should have installed it)")
	}
	t.Skip(why)
}

func needZstd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("zstd"); err != nil {
		missing(t, "the zstd command is not on this machine (tar --zstd needs it too): compatibility with it is untested")
	}
}

func sh(t *testing.T, script string, env ...string) {
	t.Helper()
	cmd := exec.Command("sh", "-ec", script)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// listArchive lists the entries of one of our archives, as listTar does.
func listArchive(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	must(t, err)
	defer f.Close()
	dec, err := newDecoder(f)
	must(t, err)
	defer dec.Close()
	return listTar(t, dec)
}

// listTar lists entry names, with link targets.
func listTar(t *testing.T, r io.Reader) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		must(t, err)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			names = append(names, hdr.Name+" -> "+hdr.Linkname)
		case tar.TypeLink:
			names = append(names, hdr.Name+" -> hardlink "+hdr.Linkname)
		default:
			names = append(names, hdr.Name)
		}
	}
}
