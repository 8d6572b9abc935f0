package gitx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PathspecError is an input pathspec that cannot be hashed.
type PathspecError struct {
	// Path is the pathspec as the user wrote it, or as git named it.
	Path string
	// Reason completes the sentence `input "<Path>" ...`, e.g.
	// "matches no file".
	Reason string

	err error // git's own error, if any
}

// Error returns one line naming the path, e.g. `input "nope.txt" matches no file`.
func (e *PathspecError) Error() string {
	return "input " + strconv.Quote(e.Path) + " " + e.Reason
}

// Unwrap returns git's own error (an *Error), if any.
func (e *PathspecError) Unwrap() error { return e.err }

// HashInputs returns the hash input listing of pathspecs: the text that
// `git ls-tree -r --full-name <tree> -- <pathspecs>` prints for a tree
// holding the working-tree contents of the pathspecs, with surrounding white
// space trimmed. Each line is "MODE TYPE SHA\tPATH", PATH relative to the
// repository root and quoted the way git quotes unusual names.
//
// The pathspecs are git pathspecs relative to dir: files, folders and globs.
// Untracked files count; ignored files do not, and naming one explicitly is
// an error; deleted tracked files are left out. The real index is not
// changed: the files are added to a temporary copy of it.
//
// A pathspec that git finds matches nothing, lies outside the repository or
// names an ignored file gives a *PathspecError; a dir outside any repository
// gives an error matching ErrNotRepository. A folder that holds no file
// that git would add (e.g. it is empty) is not an error: it adds nothing to
// the listing, as it did in the old tool.
//
// It reads the index and the work tree itself, and asks git (two
// processes, add and ls-files, and a third, rev-parse, when the repository
// is not a plain one, see locate) whenever anything is outside what it
// handles with certainty: see HashInputsReason.
func HashInputs(ctx context.Context, dir string, pathspecs []string) (string, error) {
	listing, _, err := HashInputsReason(ctx, dir, pathspecs)
	return listing, err
}

// HashInputsReason is HashInputs that also says why git was asked, or ""
// when the listing was made in-process. Git is asked for SHA-256
// repositories, split or sparse indexes, fsmonitor, entries marked
// assume-unchanged, skip-worktree or intent-to-add, conflicts, submodules
// and nested repositories, .gitattributes anywhere (filters, end-of-line
// conversion), core.autocrlf, core.eol, core.ignoreCase, core.symlinks
// false, configuration includes, pathspec magic, character classes in
// patterns, and every error (a pathspec matching nothing, an ignored path
// named), so that the messages stay git's.
func HashInputsReason(ctx context.Context, dir string, pathspecs []string) (listing, gitReason string, err error) {
	if len(pathspecs) == 0 {
		return "", "", errors.New("no inputs to hash")
	}
	listing, err = hashInProcess(dir, pathspecs)
	var u *errUnsure
	if !errors.As(err, &u) {
		return listing, "", err
	}
	listing, err = hashWithGit(ctx, dir, pathspecs)
	return listing, u.why, err
}

// hashWithGit is HashInputs done by git: the pathspecs added to a copy of
// the index, then listed.
func hashWithGit(ctx context.Context, dir string, pathspecs []string) (string, error) {
	top, index, found := locate(dir)
	if !found {
		out, err := run(ctx, dir, nil, "rev-parse", "--show-toplevel", "--git-path", "index")
		if err != nil {
			return "", inRepo(dir, err)
		}
		var ok bool
		top, index, ok = strings.Cut(strings.TrimSuffix(string(out), "\n"), "\n")
		if !ok || top == "" || index == "" {
			return "", fmt.Errorf("git rev-parse: unexpected output %q", out)
		}
	}
	var err error
	if !filepath.IsAbs(index) {
		// --git-path is relative to dir, and git runs the next commands
		// in dir too, but GIT_INDEX_FILE must not depend on that.
		if index, err = filepath.Abs(filepath.Join(dir, index)); err != nil {
			return "", err
		}
	}

	tmp, err := copyIndex(index)
	if err != nil {
		return "", err
	}
	defer removeIndex(tmp)
	env := []string{"GIT_INDEX_FILE=" + tmp}

	args := append([]string{"add", "--all", "--"}, pathspecs...)
	if _, err := run(ctx, dir, env, args...); err != nil {
		return "", addError(inRepo(dir, err), pathspecs, top)
	}

	// core.quotePath=true is git's default; forcing it keeps a user's
	// configuration from changing the hash, which caches share between
	// machines.
	args = append([]string{"-c", "core.quotePath=true", "ls-files", "--stage", "--full-name", "--"}, pathspecs...)
	out, err := run(ctx, dir, env, args...)
	if err != nil {
		return "", inRepo(dir, err)
	}
	listing, err := lsTreeFormat(out)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(listing), nil
}

// copyIndex copies the index file to a new temporary file next to it, so
// that files the index refers to by relative name (the shared index of a
// split index) are found, and returns the copy's name. When there is no
// index yet (a fresh repository), the name returned is that of a file that
// does not exist, which git reads as an empty index.
func copyIndex(index string) (string, error) {
	src, err := os.Open(index)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("copy git index: %w", err)
	}
	if src != nil {
		defer src.Close()
	}
	dst, err := os.CreateTemp(filepath.Dir(index), filepath.Base(index)+".taskrunner-*")
	if err != nil {
		return "", fmt.Errorf("copy git index: %w", err)
	}
	name := dst.Name()
	if src == nil {
		// An empty file is a corrupt index to git; a missing one is empty.
		dst.Close()
		return name, removeIndex(name)
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The copy keeps the index's mtime. Git hashes again a file whose
		// stat matches its entry when the entry is not older than the
		// index (racily clean): a file changed in the same second as it
		// was added, with the same size. A copy dated now would hide such
		// a change, and the task would be skipped.
		var info fs.FileInfo
		if info, err = src.Stat(); err == nil {
			err = os.Chtimes(name, time.Time{}, info.ModTime())
		}
	}
	if err != nil {
		removeIndex(name)
		return "", fmt.Errorf("copy git index: %w", err)
	}
	return name, nil
}

// removeIndex removes a temporary index and the lock file a killed git may
// have left beside it.
func removeIndex(name string) error {
	os.Remove(name + ".lock")
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove temporary git index: %w", err)
	}
	return nil
}

// addError turns the error of `git add` into a *PathspecError when git's
// (LC_ALL=C) stderr says which pathspec is wrong, else returns err.
func addError(err error, pathspecs []string, top string) error {
	var gerr *Error
	if !errors.As(err, &gerr) {
		return err
	}
	pe := func(path, reason string) error {
		return &PathspecError{Path: path, Reason: reason, err: gerr}
	}
	lines := strings.Split(gerr.Stderr, "\n")
	for i, line := range lines {
		switch {
		case strings.HasSuffix(line, "' did not match any files"):
			// fatal: pathspec '<p>' did not match any files
			return pe(namedPath(line, pathspecs, "pathspec '", "' did not match any files"), "matches no file")
		case strings.Contains(line, "' is outside repository at '"):
			// fatal: <p>: '<p>' is outside repository at '<root>'
			return pe(namedPath(line, pathspecs, "'", "' is outside repository at '"), "is outside the repository "+top)
		case strings.HasPrefix(line, "The following paths are ignored by") && i+1 < len(lines):
			// git names the file relative to the repository root.
			return pe(lines[i+1], `is ignored by .gitignore; to make it an input, hash it: --raw "$(sha256sum `+lines[i+1]+`)"`)
		}
	}
	return err
}

// namedPath returns the pathspec that line names between before and after:
// the one of pathspecs that appears there verbatim, or else the text
// between the first before and the last after.
func namedPath(line string, pathspecs []string, before, after string) string {
	for _, p := range pathspecs {
		if strings.Contains(line, before+p+after) {
			return p
		}
	}
	end := strings.LastIndex(line, after)
	start := strings.Index(line, before)
	if start < 0 || start+len(before) > end {
		return line
	}
	return line[start+len(before) : end]
}

// lsTreeFormat turns the output of `git ls-files --stage` ("MODE SHA
// STAGE\tPATH" lines) into that of `git ls-tree` ("MODE TYPE SHA\tPATH").
func lsTreeFormat(lsFiles []byte) (string, error) {
	var b strings.Builder
	b.Grow(len(lsFiles) + len(lsFiles)/8)
	for line := range bytes.Lines(lsFiles) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		meta, path, ok := bytes.Cut(line, []byte("\t"))
		mode, rest, ok2 := bytes.Cut(meta, []byte(" "))
		sha, _, ok3 := bytes.Cut(rest, []byte(" "))
		if !ok || !ok2 || !ok3 {
			return "", fmt.Errorf("git ls-files: unexpected line %q", line)
		}
		typ := "blob"
		if string(mode) == "160000" { // a gitlink: a submodule's commit
			typ = "commit"
		}
		b.Write(mode)
		b.WriteByte(' ')
		b.WriteString(typ)
		b.WriteByte(' ')
		b.Write(sha)
		b.WriteByte('\t')
		b.Write(path)
		b.WriteByte('\n')
	}
	return b.String(), nil
}
