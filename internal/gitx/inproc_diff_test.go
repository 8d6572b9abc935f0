package gitx

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var diffSeed = flag.Uint64("diffseed", 0, "run only the differential case of this seed")

var diffCases = flag.Int("diffcases", 150, "repositories the differential hash test builds (each hashed with several pathspec sets)")

// chooser makes the generator's choices: from a seeded random source, or
// from the bytes a fuzzer gives.
type chooser interface{ intn(n int) int }

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.IntN(n) }

type byteChooser struct {
	b []byte
	i int
}

func (c *byteChooser) intn(n int) int {
	if c.i >= len(c.b) {
		return 0
	}
	v := int(c.b[c.i])
	c.i++
	return v % n
}

func pick[T any](c chooser, xs []T) T { return xs[c.intn(len(xs))] }

var (
	genDirs = []string{"a", "b", "a/b", "a/b/c", "sub dir", "build", "é", "q\"x", "x\xff", "tmp", "a/tmp",
		"keep", "b/deep/er", "-dash", "trail "}
	genNames = []string{"f.txt", "g.txt", "x.log", "keep.log", "run.sh", "h.o", "naïve.txt", "tab\tx", "back\\slash",
		"bad\xfe.txt", "nl\nx", "#hash", " lead", "trail ", "z", "Z.TXT", "ab", "bb", "[x]", "st*r", "q?"}
	genPatterns = []string{"*.log", "!keep.log", "/build", "build/", "tmp", "**/tmp", "a/**/c", "*.o", "!*.o",
		"?b", "[ab]*", "[!a]b", "\\#hash", "trail\\ ", "trail ", "sub*/", "/a/b", "b/", "*", "!f.txt", "!*/",
		"a/*.txt", "**/f.txt", "x\xff/", "[x]", "\\[x]", "naïve.txt", "!a", "deep/", "**", "*/", "a/b/"}
	genSpecs = []string{".", "a", "a/", "b", "a/b", "build", "sub dir", "é", "*.txt", "*.log", "a/*", "a/**/f.txt",
		"**/f.txt", "?", "*b*", "a/b/c", "f.txt", "a/f.txt", "run.sh", "keep", "b/deep", "*/g.txt", "[ab]/*",
		"x\xff", "st*r", "tmp", "a/b/c/f.txt", "gone.txt", "moved.txt", "link", "a/link"}
)

// genRepo builds a random repository in dir and returns the folders (from
// the top, "" for the top) that pathspecs may be given from.
func genRepo(t testing.TB, c chooser, dir string, global string) {
	t.Helper()
	write := func(p, content string, exec bool) {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return // a file is in the way: fine, the tree is random
		}
		if fi, err := os.Lstat(full); err == nil && fi.IsDir() {
			return
		}
		os.Remove(full)
		mode := os.FileMode(0o644)
		if exec {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err == nil {
			os.Chmod(full, mode)
		}
	}
	randPath := func() string {
		if c.intn(4) == 0 {
			return pick(c, genNames)
		}
		return pick(c, genDirs) + "/" + pick(c, genNames)
	}
	contents := []string{"", "one\n", "two\n", "owt\n", "#!/bin/sh\n", "x", "a longer line of text\n"}
	for range 3 + c.intn(12) {
		write(randPath(), pick(c, contents), c.intn(4) == 0)
	}
	for range c.intn(4) {
		d := ""
		if c.intn(2) == 0 {
			d = pick(c, genDirs) + "/"
		}
		var lines []string
		for range 1 + c.intn(4) {
			lines = append(lines, pick(c, genPatterns))
		}
		write(d+".gitignore", strings.Join(lines, "\n")+"\n", false)
	}
	if c.intn(3) == 0 {
		os.WriteFile(filepath.Join(dir, ".git", "info", "exclude"), []byte(pick(c, genPatterns)+"\n"), 0o644)
	}
	if c.intn(3) == 0 {
		os.MkdirAll(filepath.Join(global, "git"), 0o755)
		os.WriteFile(filepath.Join(global, "git", "ignore"), []byte(pick(c, genPatterns)+"\n"), 0o644)
	} else {
		os.Remove(filepath.Join(global, "git", "ignore"))
	}
	if c.intn(3) == 0 {
		os.Symlink(pick(c, []string{"f.txt", "a", "nowhere", "../a/f.txt"}), filepath.Join(dir, pick(c, []string{"link", "a/link", "b/link"})))
	}
	write("gone.txt", "gone\n", false)
	write("moved.txt", "moved\n", false)
	if c.intn(2) == 0 {
		gitT(t, dir, nil, "config", "core.fileMode", "false")
	}
	if c.intn(2) == 0 {
		gitT(t, dir, nil, "config", "index.version", pick(c, []string{"2", "3", "4"}))
	}
	if c.intn(5) != 0 {
		gitT(t, dir, nil, "add", "--all", "--force")
		gitT(t, dir, nil, "commit", "-q", "--allow-empty", "-m", "gen")
	}
	// Changes after the commit, many in the same second as it.
	for range c.intn(8) {
		switch c.intn(9) {
		case 0:
			os.Remove(filepath.Join(dir, "gone.txt"))
		case 1:
			os.Rename(filepath.Join(dir, "moved.txt"), filepath.Join(dir, pick(c, genDirs), "moved.txt"))
		case 2, 3:
			write(randPath(), pick(c, contents), c.intn(3) == 0)
		case 4:
			os.Chmod(filepath.Join(dir, randPath()), pick(c, []os.FileMode{0o755, 0o644}))
		case 5:
			os.MkdirAll(filepath.Join(dir, pick(c, genDirs), "empty"), 0o755)
		case 6:
			// Same size, same mtime as the index: only racy detection sees it.
			p := filepath.Join(dir, randPath())
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				for i := range b {
					b[i] ^= 1
				}
				os.WriteFile(p, b, fi.Mode())
				if ifi, err := os.Stat(filepath.Join(dir, ".git", "index")); err == nil && c.intn(2) == 0 {
					os.Chtimes(p, ifi.ModTime(), ifi.ModTime())
				} else {
					os.Chtimes(p, fi.ModTime(), fi.ModTime())
				}
			}
		case 7:
			gitT(t, dir, nil, "add", "--all", "--force")
		case 8:
			p := filepath.Join(dir, randPath())
			os.Remove(p)
			write(strings.TrimSuffix(p[len(dir)+1:], "/")+"/inner.txt", "inner\n", false)
		}
	}
}

// diffCase builds one random repository and compares the in-process
// listing with git's for several pathspec sets. It returns how many sets
// were compared and how many fell back.
func diffCase(t testing.TB, c chooser) (compared, fellBack int, reasons map[string]int) {
	t.Helper()
	reasons = map[string]int{}
	dir := newRepo(t)
	genRepo(t, c, dir, os.Getenv("XDG_CONFIG_HOME"))
	ctx := context.Background()
	for range 4 {
		sub := ""
		if c.intn(3) == 0 {
			sub = pick(c, []string{"a", "b", "a/b"})
			if fi, err := os.Lstat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
				sub = ""
			}
		}
		var present []string
		filepath.WalkDir(filepath.Join(dir, sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == ".git" {
				return filepath.SkipDir
			}
			if rel, err := filepath.Rel(filepath.Join(dir, sub), p); err == nil && rel != "." {
				present = append(present, filepath.ToSlash(rel))
			}
			return nil
		})
		var specs []string
		n := 1
		if c.intn(3) == 0 {
			n += 1 + c.intn(2)
		}
		for range n {
			s := pick(c, genSpecs)
			if len(present) > 0 && c.intn(2) == 0 {
				s = pick(c, present)
			}
			if sub != "" && c.intn(3) == 0 {
				s = "../" + s
			}
			specs = append(specs, s)
		}
		d := filepath.Join(dir, sub)
		want, werr := hashWithGit(ctx, d, specs)
		got, gerr := hashInProcess(d, specs)
		var u *errUnsure
		if errors.As(gerr, &u) {
			fellBack++
			reasons[reasonKind(u.why)]++
			continue
		}
		compared++
		switch {
		case gerr != nil:
			t.Errorf("in %q, %q: in-process error %v (git: %q, %v)", sub, specs, gerr, want, werr)
		case werr != nil:
			t.Errorf("in %q, %q: git failed (%v) but in-process gave:\n%s", sub, specs, werr, got)
		case got != want:
			t.Errorf("in %q, %q: in-process listing:\n%s\ngit:\n%s\n%s", sub, specs, got, want,
				gitT(t, dir, nil, "status", "--porcelain", "--ignored", "--untracked-files=all"))
		}
	}
	return compared, fellBack, reasons
}

// TestHashInProcessMatchesGit is the proof that the in-process hash is
// git's: random repositories, each hashed both ways. Run more cases with
// -args -diffcases=N.
func TestHashInProcessMatchesGit(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 10))
	var compared, fellBack int
	reasons := map[string]int{}
	for i := range *diffCases {
		s := r.Uint64()
		if *diffSeed != 0 {
			if i > 0 {
				break
			}
			s = *diffSeed
		}
		c, f, rs := diffCase(t, randChooser{rand.New(rand.NewPCG(s, 10))})
		compared += c
		fellBack += f
		for k, v := range rs {
			reasons[k] += v
		}
		if t.Failed() {
			t.Fatalf("case %d (seed %d) failed", i, s)
		}
	}
	t.Logf("%d listings identical, %d left to git: %v", compared, fellBack, reasons)
	if compared*3 < fellBack {
		t.Errorf("most cases fell back to git: the generator tests little")
	}
}

func FuzzHashInProcess(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x05\x01\x02\x03\x00\x07\x01\x02\x04\x05\x06\x07\x08"))
	global := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		t.Setenv("XDG_CONFIG_HOME", global)
		diffCase(t, &byteChooser{b: b})
	})
}

// reasonKind is a fallback reason without the names in it.
func reasonKind(why string) string {
	var b strings.Builder
	quoted := false
	for _, r := range why {
		if r == '"' {
			quoted = !quoted
			if quoted {
				b.WriteString("…")
			}
			continue
		}
		if !quoted {
			b.WriteRune(r)
		}
	}
	return b.String()
}
