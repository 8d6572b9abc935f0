package snapshot

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/taskrunner/taskrunner/internal/gitx"
	"github.com/taskrunner/taskrunner/internal/state"
)

// Remote is the remote cache as snapshot uses it. Its methods report their
// own failures: a failing store is a miss, never an error of the task.
type Remote interface {
	// Archive names the archive of a job's outputs for an input hash.
	Archive(job, version, hash string) string
	// Restore puts the outputs paths held by archive in place under root and reports whether
	// it did. It calls found, if not nil, once the archive is known to
	// exist.
	// Paths are relative to root, and only they may be written.
	Restore(ctx context.Context, archive, root string, paths []string, found func()) bool
	// LatestHash returns the newest hash of job built on branch.
	LatestHash(ctx context.Context, job, branch string) (string, bool)
}

// Outputs are a task's outputs as the remote cache stores them.
type Outputs struct {
	// Root is the absolute cache root.
	Root string
	// Paths are the outputs relative to Root.
	Paths []string
}

// ErrOutsideRoot is an output outside the cache root.
type ErrOutsideRoot struct{ Path, Root string }

func (e *ErrOutsideRoot) Error() string {
	return fmt.Sprintf("Path %s is outside cacheRoot (%s)", e.Path, e.Root)
}

// outputs resolves the cache root and the outputs of a: the root is
// --cache-root, or else the root directory, relative to the task's
// directory.
func (j *Job) outputs(a *Args) (Outputs, error) {
	root := j.RootDir
	if a.CacheRoot != "" {
		root = a.CacheRoot
	}
	if !filepath.IsAbs(root) {
		root = filepath.Join(j.Dir, root)
	}
	root = filepath.Clean(root)
	o := Outputs{Root: root}
	for _, p := range a.Outputs {
		abs := p
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(j.Dir, p)
		}
		abs = filepath.Clean(abs)
		rel, err := filepath.Rel(root, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return Outputs{}, &ErrOutsideRoot{Path: abs, Root: root}
		}
		o.Paths = append(o.Paths, rel)
	}
	return o, nil
}

// mainBranchCommit is the merge base of HEAD and the main branch, or nil
// when the main branch is not tracked or has no merge base.
func (j *Job) mainBranchCommit(ctx context.Context) *string {
	if j.MainBranch == "" {
		return nil
	}
	sha, err := gitx.MergeBase(ctx, j.Dir, "origin/"+j.MainBranch)
	if err != nil {
		j.Report.Debug("snapshot: main branch not tracked: " + err.Error())
		return nil
	}
	return &sha
}

// inputsCommitted reports whether the inputs of a have no uncommitted
// changes (raw inputs alone have none).
func (j *Job) inputsCommitted(ctx context.Context, a *Args) bool {
	if len(a.Inputs) == 0 {
		return true
	}
	clean, err := gitx.IsClean(ctx, j.Dir, a.Inputs)
	if err != nil {
		j.Report.Debug("snapshot: cannot tell whether the inputs are committed: " + err.Error())
	}
	return err == nil && clean
}

// LatestBranch returns the branch whose latest hash a successful build of
// the task may record, or "" and the reason it may record none. A build
// records nothing when its inputs had uncommitted changes (its outputs are
// no branch's latest build), and a build on a detached HEAD, whose branch
// comes from the environment (GITHUB_HEAD_REF, which a pull request from a
// fork chooses), never records the main branch's, a fallback branch's or
// the pull request's base branch's: a pull request must not be able to
// choose what the fuzzy cache of those branches restores.
func (j *Job) LatestBranch(ctx context.Context, committed bool) (branch, why string) {
	if !committed {
		return "", "the inputs have uncommitted changes"
	}
	cur, err := gitx.CurrentBranch(ctx, j.Dir)
	if err == nil && cur != "" {
		return cur, ""
	}
	if j.DetachedBranch == "" {
		return "", "no current branch"
	}
	if j.DetachedBranch == j.MainBranch || j.DetachedBranch == j.BaseBranch || slices.Contains(j.FallbackBranches, j.DetachedBranch) {
		return "", fmt.Sprintf("HEAD is detached, and %s is a protected branch", j.DetachedBranch)
	}
	return j.DetachedBranch, ""
}

// CurrentBranch is the branch the fuzzy cache reads and writes: the
// checked-out branch, or DetachedBranch when HEAD is detached (as in a pull
// request's run on GitHub Actions); empty when there is none.
func (j *Job) CurrentBranch(ctx context.Context) string {
	cur, err := gitx.CurrentBranch(ctx, j.Dir)
	if err != nil || cur == "" {
		return j.DetachedBranch
	}
	return cur
}

// restoreExact is step 6 of the decision: restore the archive of exactly
// these inputs, when the inputs are committed.
func (j *Job) restoreExact(ctx context.Context, a *Args, hash string) bool {
	if !j.committed {
		j.Report.Debug("snapshot: inputs have uncommitted changes, not restoring from the remote cache")
		return false
	}
	defer j.phase("restore")()
	archive := j.Remote.Archive(j.Name, a.CacheVersion, hash)
	// The old tool's line names the archive without its folder.
	found := func() { j.Report.Info(fmt.Sprintf("Found remote cache %s, restoring", path.Base(archive))) }
	if !j.Remote.Restore(ctx, archive, j.out.Root, j.out.Paths, found) {
		return false
	}
	j.Report.Info("Restored from remote cache")
	return true
}

// restoreFuzzy is step 8: warm the task up with the newest build of the
// same task on the current branch or a fallback branch, once per change of
// the main branch.
func (j *Job) restoreFuzzy(ctx context.Context, a *Args, saved *state.SavedHash) bool {
	mbc := j.pending.MainBranchCommit
	if mbc != nil && saved != nil && saved.MainBranchCommit != nil && *saved.MainBranchCommit == *mbc {
		j.Report.Debug("snapshot: main branch unchanged since the last fuzzy restore or success, no fuzzy cache")
		return false
	}
	defer j.phase("fuzzy restore")()
	var branches []string
	if cur := j.CurrentBranch(ctx); cur != "" {
		branches = append(branches, cur)
	}
	for _, b := range j.FallbackBranches {
		if !slices.Contains(branches, b) {
			branches = append(branches, b)
		}
	}
	for _, branch := range branches {
		hash, ok := j.Remote.LatestHash(ctx, j.Name, branch)
		if !ok {
			continue
		}
		if !j.Remote.Restore(ctx, j.Remote.Archive(j.Name, a.CacheVersion, hash), j.out.Root, j.out.Paths, nil) {
			continue
		}
		j.Report.Info(fmt.Sprintf("Restored fuzzy cache from branch %s, hash=%s", branch, hash))
		// Saved at once, so that a failing run does not fetch the same
		// fuzzy cache again until the main branch moves.
		keep := state.SavedHash{MainBranchCommit: mbc}
		if saved != nil {
			keep.Hash, keep.HashInput = saved.Hash, saved.HashInput
		}
		if err := j.State.SaveHash(j.Name, keep); err != nil {
			j.Report.Debug("snapshot: cannot save the hash file: " + err.Error())
		}
		return true
	}
	return false
}
