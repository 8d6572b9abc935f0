package gitx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNoMergeBase is matched (with errors.Is) by the error of MergeBase when
// HEAD and the ref have no common ancestor.
var ErrNoMergeBase = errors.New("no common ancestor")

// IsClean reports whether the files matched by pathspecs (relative to dir)
// have no uncommitted changes, staged or not, that is whether
// `git status --porcelain --untracked-files=no -- <pathspecs>` prints
// nothing. Untracked files are not changes. No pathspecs means the whole
// repository.
func IsClean(ctx context.Context, dir string, pathspecs []string) (bool, error) {
	args := append([]string{"status", "--porcelain", "--untracked-files=no", "--"}, pathspecs...)
	// GIT_OPTIONAL_LOCKS=0: status must not write the real index, which
	// parallel tasks and the user's own git may be using.
	out, err := run(ctx, dir, []string{"GIT_OPTIONAL_LOCKS=0"}, args...)
	if err != nil {
		return false, inRepo(dir, err)
	}
	return len(bytes.TrimSpace(out)) == 0, nil
}

// Head returns the full hex name of the commit HEAD points to in dir's
// repository (`git rev-parse HEAD`). A repository with no commit yet gives
// an *Error.
func Head(ctx context.Context, dir string) (string, error) {
	return line(ctx, dir, "rev-parse", "HEAD")
}

// CurrentBranch returns the short name of the branch HEAD points to, e.g.
// "main" (`git symbolic-ref --quiet --short HEAD`), also when that branch
// has no commit yet. A detached HEAD gives "" and no error.
func CurrentBranch(ctx context.Context, dir string) (string, error) {
	branch, err := line(ctx, dir, "symbolic-ref", "--quiet", "--short", "HEAD")
	var gerr *Error
	if errors.As(err, &gerr) && gerr.ExitCode == 1 && strings.TrimSpace(gerr.Stderr) == "" {
		// --quiet: HEAD is not a symbolic ref, so it is detached.
		return "", nil
	}
	return branch, err
}

// MergeBase returns the best common ancestor of HEAD and ref
// (`git merge-base HEAD <ref>`). When they have none, the error matches
// ErrNoMergeBase; an unknown ref gives an *Error.
func MergeBase(ctx context.Context, dir, ref string) (string, error) {
	base, err := line(ctx, dir, "merge-base", "HEAD", ref)
	var gerr *Error
	if errors.As(err, &gerr) && gerr.ExitCode == 1 && strings.TrimSpace(gerr.Stderr) == "" {
		return "", fmt.Errorf("%w between HEAD and %s", ErrNoMergeBase, ref)
	}
	return base, err
}

// line runs git and returns its output without the final newline.
func line(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := run(ctx, dir, nil, args...)
	if err != nil {
		return "", inRepo(dir, err)
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}
