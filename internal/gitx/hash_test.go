package gitx

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHashInputsSpecExample(t *testing.T) {
	const (
		wantListing = "100644 blob 257cc5642cb1a054f08cc83f2d943e56fd3ebe99\tinput.txt"
		wantHash    = "6b36308659163b577fd1c832107dc46ca3aa659b"
	)
	for _, committed := range []bool{false, true} {
		t.Run(fmt.Sprintf("committed=%v", committed), func(t *testing.T) {
			dir := newRepo(t)
			writeFiles(t, dir, map[string]string{"input.txt": "foo\n"})
			if committed {
				commitAll(t, dir, "input")
			} // else there is no index file at all yet
			got, err := HashInputs(context.Background(), dir, []string{"input.txt"})
			if err != nil {
				t.Fatal(err)
			}
			if got != wantListing {
				t.Errorf("listing = %q, want %q", got, wantListing)
			}
			sum := sha1.Sum([]byte(got))
			if h := hex.EncodeToString(sum[:]); h != wantHash {
				t.Errorf("hash = %s, want %s", h, wantHash)
			}
		})
	}
}

// listingOf is the listing HashInputs must give for regular files
// (path from the repository root → contents), in git's order.
func listingOf(files map[string]string, paths ...string) string {
	slices.Sort(paths)
	var lines []string
	for _, p := range paths {
		lines = append(lines, "100644 blob "+blobSHA(files[p])+"\t"+p)
	}
	return strings.Join(lines, "\n")
}

func TestHashInputsListing(t *testing.T) {
	files := map[string]string{
		"README":                      "readme\n",
		".gitignore":                  "*.log\n",
		"src/a.c":                     "int a;\n",
		"src/a.h":                     "extern int a;\n",
		"src/sub/b.c":                 "int b;\n",
		"src/x/y.go":                  "package x\n",
		"src/y.go":                    "package src\n",
		"src/debug.log":               "ignored\n",
		"dir with space/file one.txt": "spaced\n",
		"docs/guide.md":               "# guide\n",
	}
	dir := newRepo(t)
	writeFiles(t, dir, map[string]string{"README": files["README"], ".gitignore": files[".gitignore"],
		"src/a.c": files["src/a.c"], "src/a.h": files["src/a.h"]})
	commitAll(t, dir, "first")
	writeFiles(t, dir, files) // the rest stays untracked

	tests := []struct {
		name      string
		sub       string
		pathspecs []string
		want      []string
	}{
		{"folder with untracked and ignored files", "", []string{"src"},
			[]string{"src/a.c", "src/a.h", "src/sub/b.c", "src/x/y.go", "src/y.go"}},
		{"folder with slash", "", []string{"src/"},
			[]string{"src/a.c", "src/a.h", "src/sub/b.c", "src/x/y.go", "src/y.go"}},
		{"glob star crosses folders", "", []string{"src/*.c"}, []string{"src/a.c", "src/sub/b.c"}},
		{"glob double star", "", []string{"src/**/*.go"}, []string{"src/x/y.go"}},
		{"untracked file", "", []string{"docs/guide.md"}, []string{"docs/guide.md"}},
		{"folder with spaces", "", []string{"dir with space"}, []string{"dir with space/file one.txt"}},
		{"file with spaces", "", []string{"dir with space/file one.txt"}, []string{"dir with space/file one.txt"}},
		{"several", "", []string{"docs", "README"}, []string{"README", "docs/guide.md"}},
		{"whole tree skips ignored", "", []string{"."}, []string{".gitignore", "README", "dir with space/file one.txt",
			"docs/guide.md", "src/a.c", "src/a.h", "src/sub/b.c", "src/x/y.go", "src/y.go"}},
		{"subdirectory relative", "src", []string{"a.c", "../README"}, []string{"README", "src/a.c"}},
		{"subdirectory dot", "src/sub", []string{"."}, []string{"src/sub/b.c"}},
		{"subdirectory glob", "src", []string{"*.go"}, []string{"src/x/y.go", "src/y.go"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HashInputs(context.Background(), filepath.Join(dir, tt.sub), tt.pathspecs)
			if err != nil {
				t.Fatal(err)
			}
			if want := listingOf(files, tt.want...); got != want {
				t.Errorf("listing:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestHashInputsFollowsWorkingTree(t *testing.T) {
	ctx := context.Background()
	dir := newRepo(t)
	writeFiles(t, dir, map[string]string{"a.txt": "one\n", "b.txt": "b\n"})
	commitAll(t, dir, "first")
	pathspecs := []string{"a.txt", "b.txt"}
	hash := func() string {
		t.Helper()
		s, err := HashInputs(ctx, dir, pathspecs)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	before := hash()
	if again := hash(); again != before {
		t.Fatalf("same tree, different listings:\n%s\n%s", before, again)
	}
	writeFiles(t, dir, map[string]string{"a.txt": "two\n"})
	modified := hash()
	if want := "100644 blob " + blobSHA("two\n") + "\ta.txt\n100644 blob " + blobSHA("b\n") + "\tb.txt"; modified != want {
		t.Errorf("after modifying a.txt:\n%s\nwant:\n%s", modified, want)
	}
	if err := os.Chmod(filepath.Join(dir, "a.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := hash(); !strings.HasPrefix(got, "100755 blob "+blobSHA("two\n")+"\ta.txt\n") {
		t.Errorf("after chmod +x a.txt:\n%s", got)
	}
	if err := os.Remove(filepath.Join(dir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if got, want := hash(), "100644 blob "+blobSHA("b\n")+"\tb.txt"; got != want {
		t.Errorf("after deleting a.txt:\n%s\nwant:\n%s", got, want)
	}
}

// gitState is what a user sees of the real index.
func gitState(t *testing.T, dir string) string {
	t.Helper()
	index, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x\n%s\n%s", sha1.Sum(index),
		gitT(t, dir, nil, "diff", "--cached", "--name-only"),
		gitT(t, dir, nil, "status", "--porcelain", "--untracked-files=all"))
}

func TestHashInputsRealIndexUntouched(t *testing.T) {
	dir := newRepo(t)
	writeFiles(t, dir, map[string]string{"a.txt": "a\n", "b.txt": "b\n", "gone.txt": "gone\n"})
	commitAll(t, dir, "first")
	writeFiles(t, dir, map[string]string{"a.txt": "staged\n"})
	gitT(t, dir, nil, "add", "a.txt")
	writeFiles(t, dir, map[string]string{"a.txt": "unstaged\n", "b.txt": "changed\n", "new.txt": "new\n"})
	if err := os.Remove(filepath.Join(dir, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	before := gitState(t, dir)
	gitFiles, _ := os.ReadDir(filepath.Join(dir, ".git"))

	if _, err := HashInputs(context.Background(), dir, []string{"."}); err != nil {
		t.Fatal(err)
	}
	if _, err := HashInputs(context.Background(), dir, []string{"a.txt", "nope"}); err == nil {
		t.Fatal("no error for a pathspec that matches nothing")
	}

	if after := gitState(t, dir); after != before {
		t.Errorf("real index changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	gitFilesAfter, _ := os.ReadDir(filepath.Join(dir, ".git"))
	if len(gitFilesAfter) != len(gitFiles) {
		t.Errorf("temporary files left in .git: %v", gitFilesAfter)
	}
}

// lsTreeReference is what the old tool hashed: the files added to a copy of
// the index, written as a tree, and listed with ls-tree.
func lsTreeReference(t *testing.T, dir string, pathspecs []string) string {
	t.Helper()
	top := gitT(t, dir, nil, "rev-parse", "--show-toplevel")
	index := filepath.Join(t.TempDir(), "index")
	if b, err := os.ReadFile(filepath.Join(top, ".git", "index")); err == nil {
		if err := os.WriteFile(index, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"GIT_INDEX_FILE=" + index}
	gitT(t, dir, env, append([]string{"add", "--all", "--"}, pathspecs...)...)
	tree := gitT(t, dir, env, "write-tree")
	return gitT(t, dir, env, append([]string{"ls-tree", "-r", "--full-name", tree, "--"}, pathspecs...)...)
}

func TestHashInputsMatchesLsTree(t *testing.T) {
	dir := newRepo(t)
	writeFiles(t, dir, map[string]string{
		"top.txt":                      "top\n",
		"a/b/c/deep.txt":               "deep\n",
		"a/b/mid.txt":                  "mid\n",
		"a/b-c.txt":                    "sorts between a/b and a/b/\n",
		"a/side.txt":                   "side\n",
		"run.sh":                       "#!/bin/sh\necho hi\n",
		"dir with space/file one.txt":  "spaced\n",
		"naïve.txt":                    "non-ascii\n",
		"deleted.txt":                  "to be deleted\n",
		"tab\tname.txt":                "tab\n",
		"nested/.keep":                 "",
		"nested/inner/file.txt":        "inner\n",
		"unchanged/dir/file.txt":       "same\n",
		"trailing space /file.txt":     "trailing\n",
		"quote\"and\\backslash.txt":    "odd\n",
		"a/b/c/deep untracked file.md": "untracked\n",
	})
	if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a/side.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	// A nested repository is added as a gitlink (mode 160000, type commit).
	gitT(t, filepath.Join(dir, "nested", "inner"), nil, "init", "-q")
	commitAll(t, filepath.Join(dir, "nested", "inner"), "inner")
	gitT(t, dir, nil, "add", "--all", "--", ":!a/b/c/deep untracked file.md")
	gitT(t, dir, nil, "commit", "-q", "-m", "first")
	if err := os.Remove(filepath.Join(dir, "deleted.txt")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"a/b/mid.txt": "modified\n", "untracked.txt": "new\n"})

	tests := []struct {
		sub       string
		pathspecs []string
	}{
		{"", []string{"."}},
		{"", []string{"a"}},
		{"", []string{"a/b"}},
		{"", []string{"a/b/"}},
		{"", []string{"run.sh", "link", "top.txt"}},
		{"", []string{"dir with space", "naïve.txt", "tab\tname.txt"}},
		{"", []string{"deleted.txt"}},
		{"", []string{"deleted.txt", "a/side.txt"}},
		{"", []string{"nested"}},
		{"", []string{"untracked.txt", "unchanged", "trailing space "}},
		{"a", []string{"b", "../run.sh"}},
		{"a/b", []string{"."}},
	}
	for _, tt := range tests {
		t.Run(tt.sub+":"+strings.Join(tt.pathspecs, ","), func(t *testing.T) {
			d := filepath.Join(dir, tt.sub)
			want := lsTreeReference(t, d, tt.pathspecs)
			got, err := HashInputs(context.Background(), d, tt.pathspecs)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("listing:\n%s\nls-tree:\n%s", got, want)
			}
		})
	}

	// The fixture must really hold every kind of entry.
	all, err := HashInputs(context.Background(), dir, []string{"."})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"100755 blob " + blobSHA("#!/bin/sh\necho hi\n") + "\trun.sh",
		"120000 blob " + blobSHA("a/side.txt") + "\tlink",
		"160000 commit ",
		"\t\"na\\303\\257ve.txt\"",
		"\t\"tab\\tname.txt\"",
		"\tdir with space/file one.txt",
		"\ta/b/c/deep untracked file.md",
		"100644 blob " + blobSHA("modified\n") + "\ta/b/mid.txt",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("listing lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "deleted.txt") {
		t.Errorf("listing has the deleted file:\n%s", all)
	}
}

func TestLsTreeFormatIsExact(t *testing.T) {
	// Untrimmed, the conversion must equal ls-tree's own output byte for
	// byte, final newline included.
	dir := newRepo(t)
	writeFiles(t, dir, map[string]string{"x/y z.txt": "1\n", "é.txt": "2\n"})
	commitAll(t, dir, "first")
	lsFiles, err := run(context.Background(), dir, nil, "ls-files", "--stage", "--full-name")
	if err != nil {
		t.Fatal(err)
	}
	got, err := lsTreeFormat(lsFiles)
	if err != nil {
		t.Fatal(err)
	}
	want, err := run(context.Background(), dir, nil, "ls-tree", "-r", "--full-name", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(got), want) {
		t.Errorf("converted:\n%q\nls-tree:\n%q", got, want)
	}
}

func TestHashInputsErrors(t *testing.T) {
	dir := newRepo(t)
	writeFiles(t, dir, map[string]string{".gitignore": "*.log\n", "README": "r\n", "x.log": "x\n",
		"sub/y.log": "y\n", "sub/z.txt": "z\n"})
	commitAll(t, dir, "first")
	tests := []struct {
		name      string
		sub       string
		pathspecs []string
		want      string // the message; the *PathspecError's Path is quoted in it
		path      string
	}{
		{"no match", "", []string{"nope.txt"}, `input "nope.txt" matches no file`, "nope.txt"},
		{"no match among others", "", []string{"README", "no such.txt"}, `input "no such.txt" matches no file`, "no such.txt"},
		{"glob without match", "", []string{"*.nothing"}, `input "*.nothing" matches no file`, "*.nothing"},
		{"glob matching only ignored files", "", []string{"sub/*.log"}, `input "sub/*.log" matches no file`, "sub/*.log"},
		{"no match in subdirectory", "sub", []string{"nope"}, `input "nope" matches no file`, "nope"},
		{"outside", "", []string{"../x"}, `input "../x" is outside the repository ` + dir, "../x"},
		{"outside from subdirectory", "sub", []string{"../../x"}, `input "../../x" is outside the repository ` + dir, "../../x"},
		{"ignored", "", []string{"x.log"}, `input "x.log" is ignored by .gitignore; to make it an input, hash it: --raw "$(sha256sum x.log)"`, "x.log"},
		{"ignored in subdirectory", "sub", []string{"z.txt", "y.log"}, `input "sub/y.log" is ignored by .gitignore; to make it an input, hash it: --raw "$(sha256sum sub/y.log)"`, "sub/y.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := HashInputs(context.Background(), filepath.Join(dir, tt.sub), tt.pathspecs)
			var perr *PathspecError
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v (%T), want *PathspecError", err, err)
			}
			if err.Error() != tt.want || perr.Path != tt.path {
				t.Errorf("err = %q (Path %q), want %q (Path %q)", err, perr.Path, tt.want, tt.path)
			}
			var gerr *Error
			if !errors.As(err, &gerr) {
				t.Errorf("err does not wrap git's *Error")
			}
		})
	}

	t.Run("no pathspecs", func(t *testing.T) {
		if _, err := HashInputs(context.Background(), dir, nil); err == nil {
			t.Error("no error")
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		_, err := HashInputs(context.Background(), filepath.Join(dir, "nope"), []string{"."})
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("err = %q, want one line", err)
		}
	})
}

func BenchmarkHashInputs(b *testing.B) {
	dir := newRepo(b)
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("src/pkg%d/file%d.go", i%10, i)] = fmt.Sprintf("package pkg%d\n\nconst N = %d\n", i%10, i)
	}
	writeFiles(b, dir, files)
	commitAll(b, dir, "files")
	writeFiles(b, dir, map[string]string{"src/pkg0/file0.go": "changed\n", "src/new.go": "new\n"})
	ctx := context.Background()
	for b.Loop() {
		if _, err := HashInputs(ctx, dir, []string{"src"}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHashInputsSplitIndexAndWorktree(t *testing.T) {
	dir := newRepo(t)
	gitT(t, dir, nil, "config", "core.splitIndex", "true")
	writeFiles(t, dir, map[string]string{"a.txt": "a\n", "b.txt": "b\n"})
	commitAll(t, dir, "first")
	writeFiles(t, dir, map[string]string{"b.txt": "b2\n"})
	gitT(t, dir, nil, "add", "b.txt") // the change lives in the split index
	shared, _ := filepath.Glob(filepath.Join(dir, ".git", "sharedindex.*"))
	if len(shared) == 0 {
		t.Fatal("no shared index: the fixture does not test a split index")
	}
	want := "100644 blob " + blobSHA("a\n") + "\ta.txt\n100644 blob " + blobSHA("b2\n") + "\tb.txt"
	got, err := HashInputs(context.Background(), dir, []string{"."})
	if err != nil || got != want {
		t.Errorf("split index: listing = %q, %v; want %q", got, err, want)
	}

	wt := filepath.Join(t.TempDir(), "wt")
	gitT(t, dir, nil, "worktree", "add", "-q", wt)
	writeFiles(t, wt, map[string]string{"a.txt": "a in worktree\n"})
	want = "100644 blob " + blobSHA("a in worktree\n") + "\ta.txt\n100644 blob " + blobSHA("b\n") + "\tb.txt"
	got, err = HashInputs(context.Background(), wt, []string{"."})
	if err != nil || got != want {
		t.Errorf("worktree: listing = %q, %v; want %q", got, err, want)
	}
}

// A file rewritten with the same size in the second it was added in has
// the stat its index entry recorded: git hashes it again only because the
// entry is not older than the index (racily clean). The copy of the index
// that HashInputs works on must keep that, or the change goes unseen. The
// test makes the case certain: the file keeps its mtime, the entry and the
// index share it, and ctime is not compared.
func TestHashInputsRacilyClean(t *testing.T) {
	dir := newRepo(t)
	gitT(t, dir, nil, "config", "core.trustctime", "false")
	file := filepath.Join(dir, "a.txt")
	then := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	writeFiles(t, dir, map[string]string{"a.txt": "one\n"})
	if err := os.Chtimes(file, then, then); err != nil {
		t.Fatal(err)
	}
	gitT(t, dir, nil, "add", "a.txt")
	if err := os.Chtimes(filepath.Join(dir, ".git", "index"), then, then); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"a.txt": "two\n"})
	if err := os.Chtimes(file, then, then); err != nil {
		t.Fatal(err)
	}

	got, err := HashInputs(context.Background(), dir, []string{"a.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "100644 blob " + blobSHA("two\n") + "\ta.txt"; got != want {
		t.Errorf("listing = %q, want %q: the change of a racily clean file went unseen", got, want)
	}
}

// A .gitattributes file can make git store something other than the bytes
// on disk (here CRLF turned into LF): the listing must be git's, or a change
// would hash as no change. A tracked one anywhere sends the hash to git.
func TestHashInputsGitattributes(t *testing.T) {
	dir := newRepo(t)
	writeFiles(t, dir, map[string]string{".gitattributes": "*.txt text\n", "a.txt": "a\r\n", "other/.gitattributes": "*.md text\n", "other/b.md": "b\n"})
	commitAll(t, dir, "first")
	for _, specs := range [][]string{{"a.txt"}, {"other"}} {
		got, why, err := HashInputsReason(context.Background(), dir, specs)
		if err != nil {
			t.Fatal(err)
		}
		if want := lsTreeReference(t, dir, specs); got != want {
			t.Errorf("%v: listing = %q; git says %q", specs, got, want)
		}
		if why == "" {
			t.Errorf("%v: hashed in-process despite .gitattributes", specs)
		}
	}
	want := "100644 blob " + blobSHA("a\n") + "\ta.txt"
	if got, _ := HashInputs(context.Background(), dir, []string{"a.txt"}); got != want {
		t.Errorf("listing = %q; want the CRLF file stored as %q", got, want)
	}
}
