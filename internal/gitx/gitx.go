// Package gitx runs every git command taskrunner needs: hashing a task's
// input pathspecs, checking them for uncommitted changes, and reading HEAD,
// the current branch and merge bases.
//
// All calls go through one runner that starts git with a context, in a
// given directory, with LC_ALL=C (so that messages can be parsed) and
// GIT_TERMINAL_PROMPT=0 (so that a CI job never waits for a password), and
// that turns a failure into an *Error carrying git's exit code and stderr.
package gitx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotRepository is matched (with errors.Is) by the errors of commands run
// outside a git repository.
var ErrNotRepository = errors.New("not a git repository")

// ErrGitNotFound is returned when no git executable can be found in PATH.
var ErrGitNotFound = errors.New("git not found: install git or add it to PATH")

// Error is a git command that ran and failed.
type Error struct {
	// Args are the arguments given to git, without the program name.
	Args []string
	// ExitCode is git's exit status, or -1 when it was killed by a signal.
	ExitCode int
	// Stderr is everything git wrote to its standard error.
	Stderr string
}

// Error returns one line: "git <subcommand>: <first meaningful stderr line>".
func (e *Error) Error() string {
	msg := firstMeaningfulLine(e.Stderr)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", e.ExitCode)
	}
	return "git " + subcommand(e.Args) + ": " + msg
}

// Is reports whether e is an instance of target; it matches ErrNotRepository
// when git said it was not run in a repository.
func (e *Error) Is(target error) bool {
	return target == ErrNotRepository && strings.Contains(e.Stderr, "not a git repository")
}

// notRepositoryError names the directory that is not in a git repository,
// in place of git's own message, which names only ".git".
type notRepositoryError struct {
	dir string
	err error
}

func (e *notRepositoryError) Error() string { return "not a git repository: " + e.dir }
func (e *notRepositoryError) Unwrap() error { return e.err }

// inRepo returns err, replaced by an error naming dir when git said dir is
// not inside a repository.
func inRepo(dir string, err error) error {
	if err == nil || !errors.Is(err, ErrNotRepository) {
		return err
	}
	if abs, aerr := filepath.Abs(dir); aerr == nil {
		dir = abs
	}
	return &notRepositoryError{dir: dir, err: err}
}

// waitDelay bounds how long run waits for git's output pipes after git has
// exited or the context is done, in case a helper git started (a filter, a
// credential helper) keeps them open.
const waitDelay = 5 * time.Second

// run runs git with args in dir ("" means the current directory), with env
// added to the environment, and returns its standard output. A git that
// fails gives an *Error; a missing git gives ErrGitNotFound.
func run(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// Later entries win, so env can override the defaults, and ours override
	// the caller's locale.
	cmd.Env = append(cmd.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = waitDelay
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, ErrGitNotFound
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("git %s: %w", subcommand(args), ctxErr)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		// git did not start, e.g. dir does not exist.
		return nil, fmt.Errorf("git %s: %w", subcommand(args), err)
	}
	return stdout.Bytes(), &Error{Args: args, ExitCode: exitErr.ExitCode(), Stderr: stderr.String()}
}

// subcommand returns the first argument that is not a global option.
func subcommand(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-c" || a == "-C":
			i++ // skip the option's value
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return ""
}

// firstMeaningfulLine picks from git's stderr the line that says what went
// wrong: the first "fatal:" or "error:" line, else the first line that is
// neither a hint nor a warning, else the first non-empty line. The
// "fatal: "/"error: " prefix is dropped.
func firstMeaningfulLine(stderr string) string {
	var plain, first string
	for line := range strings.Lines(stderr) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		for _, p := range []string{"fatal: ", "error: "} {
			if rest, ok := strings.CutPrefix(line, p); ok {
				return rest
			}
		}
		if first == "" {
			first = line
		}
		if plain == "" && !strings.HasPrefix(line, "hint:") && !strings.HasPrefix(line, "warning:") {
			plain = line
		}
	}
	if plain != "" {
		return plain
	}
	return first
}
