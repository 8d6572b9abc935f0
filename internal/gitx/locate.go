package gitx

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// gitEnv are git's variables that move the repository, its work tree or its
// index away from where the folders say; with any of them set, git itself
// is asked.
var gitEnv = []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR",
	"GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_CONFIG_PARAMETERS"}

// movedWorkTree matches configuration that places the work tree elsewhere;
// compiled on first use, not at every start.
var movedWorkTree = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?im)^\s*(worktree\s*=|bare\s*=\s*true)`)
})

// locate finds the repository holding dir the way git does in the common
// case, without starting a git process (this is the hot path of every
// skipped task): the nearest folder at or above dir with a .git folder, or a
// .git file saying "gitdir: PATH" (linked worktrees, submodules). It returns
// the top of the work tree and the index file. Anything unusual is left to
// `git rev-parse` by returning ok false: git's variables set, a core.worktree
// or bare setting, a per-worktree configuration, no .git at all.
func locate(dir string) (top, index string, ok bool) {
	top, gitdir, _, ok := locateRepo(dir)
	if !ok {
		return "", "", false
	}
	return top, filepath.Join(gitdir, "index"), true
}

// locateRepo is locate that returns the git directory and the common
// directory (where the configuration is, for a linked worktree the main
// repository's) in place of the index.
func locateRepo(dir string) (top, gitdir, common string, ok bool) {
	for _, name := range gitEnv {
		// These are git's own variables, which the git processes started
		// here inherit: read to know whether they would look elsewhere.
		if _, set := os.LookupEnv(name); set {
			return "", "", "", false
		}
	}
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", "", "", false
	}
	// Like git, never look into a ceiling folder or above it.
	ceilings := map[string]bool{}
	if v, ok := os.LookupEnv("GIT_CEILING_DIRECTORIES"); ok {
		for _, c := range filepath.SplitList(v) {
			if c != "" {
				ceilings[filepath.Clean(c)] = true
			}
		}
	}
	for {
		dotgit := filepath.Join(d, ".git")
		if fi, err := os.Lstat(dotgit); err == nil {
			gitdir, ok := gitDir(d, dotgit, fi)
			if !ok {
				return "", "", "", false
			}
			common := commonDir(gitdir)
			if !plainRepo(gitdir, common) {
				return "", "", "", false
			}
			return d, gitdir, common, true
		}
		parent := filepath.Dir(d)
		if parent == d || ceilings[parent] {
			return "", "", "", false
		}
		d = parent
	}
}

// gitDir returns the git directory a .git entry of the folder top names.
func gitDir(top, dotgit string, fi os.FileInfo) (string, bool) {
	switch {
	case fi.IsDir():
		return dotgit, true
	case !fi.Mode().IsRegular():
		return "", false
	}
	b, err := os.ReadFile(dotgit)
	if err != nil {
		return "", false
	}
	path, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
	if !ok || path == "" {
		return "", false
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(top, path)
	}
	return filepath.Clean(path), true
}

// commonDir returns the folder holding the configuration and objects of
// the repository whose git directory is gitdir: the one its commondir file
// names (a linked worktree), else gitdir itself.
func commonDir(gitdir string) string {
	b, err := os.ReadFile(filepath.Join(gitdir, "commondir"))
	if err != nil {
		return gitdir
	}
	common := strings.TrimSpace(string(b))
	if !filepath.IsAbs(common) {
		common = filepath.Join(gitdir, common)
	}
	return common
}

// plainRepo reports whether gitdir, of common folder common, is a
// repository whose work tree is the folder holding its .git: it has a
// HEAD, and no configuration moves the work tree.
func plainRepo(gitdir, common string) bool {
	if _, err := os.Stat(filepath.Join(gitdir, "HEAD")); err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(gitdir, "config.worktree")); err == nil {
		return false
	}
	cfg, err := os.ReadFile(filepath.Join(common, "config"))
	return err == nil && !movedWorkTree().Match(cfg)
}
