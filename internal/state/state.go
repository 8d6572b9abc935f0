// Package state owns taskrunner's state directory: its layout, the per-job
// locks, the saved input hashes and the results of a build. The layout is
// shared with the tool taskrunner succeeds, so names and formats here are
// fixed:
//
//	locks/<job>.lock                 exclusive lock held while <job> runs
//	hash/<job>.hash                  the inputs of the job's last success
//	builds/<build-id>/logs/<job>.log the job's log for that build
//	builds/<build-id>/results/<job>  the job's exit status in that build
//	builds/<build-id>/commands/<job> the command the job ran in that build
//	builds/<build-id>/watchdog.sock  the socket of the build's watchdog
//
// Only folders of builds/ whose names parse as build ids are builds
// (ParseBuildID); anything else there is left alone.
package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Dir is a state directory.
type Dir struct {
	Root string
}

// MaxJobNameBytes is the longest job name, in bytes. The name becomes file
// names in the state directory with a few bytes added (".lock", ".hash",
// and a temporary ".<name>.hash.tmp<digits>" while the hash is written), and
// a file name holds at most 255 bytes: a longer name would fail only after
// the task's command had run.
const MaxJobNameBytes = 200

// ValidJobName reports why name cannot name a job, or nil; its message says
// what to do, for the command line's -n. A name is at once a line prefix, a
// commit status context and a file name in the state directory, so it must
// be non-empty, valid UTF-8, free of control characters (C0, DEL and C1,
// which would reach terminals and log files raw), not "." or "..", without
// a slash, and at most MaxJobNameBytes long. Anything else the old tool
// took, spaces and non-ASCII letters included, stays valid.
func ValidJobName(name string) error {
	switch {
	case name == "":
		return errors.New("the task name is empty: give a name after -n")
	case len(name) > MaxJobNameBytes:
		return fmt.Errorf("the task name is %d bytes long: give one of at most %d bytes with -n", len(name), MaxJobNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("the task name %q is not valid UTF-8: give another with -n", name)
	}
	for _, c := range name {
		if c < 0x20 || c >= 0x7f && c <= 0x9f {
			return fmt.Errorf("the task name %q holds the control character %U: give one without control characters with -n", name, c)
		}
	}
	switch {
	case name == "." || name == "..":
		return fmt.Errorf("the task name %q cannot be a file name: give another with -n", name)
	case strings.Contains(name, "/"):
		return fmt.Errorf("the task name %q holds a slash: give one without \"/\" with -n", name)
	}
	return nil
}

// Prepare creates the folders every taskrunner process needs.
func (d Dir) Prepare() error {
	for _, sub := range []string{"locks", "hash", "builds"} {
		if err := mkdir(filepath.Join(d.Root, sub)); err != nil {
			return err
		}
	}
	return nil
}

func mkdir(path string) error {
	if err := os.MkdirAll(path, 0o755); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return &UnusableError{Path: path, Err: err}
	}
	return nil
}

// UnusableError is a state directory taskrunner cannot write to.
type UnusableError struct {
	Path string
	Err  error
}

func (e *UnusableError) Error() string {
	return fmt.Sprintf("cannot create %s: %v (set TASKRUNNER_STATE_DIRECTORY to a writable folder)", e.Path, e.Err)
}

func (e *UnusableError) Unwrap() error { return e.Err }

// Build is the folder of one build.
func (d Dir) Build(id string) string { return filepath.Join(d.Root, "builds", id) }

// LogPath is the log file of job in build id.
func (d Dir) LogPath(id, job string) string {
	return filepath.Join(d.Build(id), "logs", job+".log")
}

// WatchdogPath is the unix socket of the watchdog of build id, which ends
// the tasks of the build's taskrunners that die without ending them.
func (d Dir) WatchdogPath(id string) string { return filepath.Join(d.Build(id), "watchdog.sock") }

// LockPath is the lock file of job.
func (d Dir) LockPath(job string) string { return filepath.Join(d.Root, "locks", job+".lock") }

// HashPath is the saved hash of job.
func (d Dir) HashPath(job string) string { return filepath.Join(d.Root, "hash", job+".hash") }

func (d Dir) resultPath(id, job string) string {
	return filepath.Join(d.Build(id), "results", job)
}

// Result returns the exit status job had in build id, and whether it has one.
func (d Dir) Result(id, job string) (int, bool, error) {
	b, err := os.ReadFile(d.resultPath(id, job))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false, fmt.Errorf("result file %s holds %q, not an exit status", d.resultPath(id, job), b)
	}
	return n, true, nil
}

// SaveResult records job's exit status in build id.
func (d Dir) SaveResult(id, job string, status int) error {
	// The temporary file is in the build's folder, not in results/, where
	// any name could be a job's.
	return WriteAtomic(d.Build(id), d.resultPath(id, job), []byte(strconv.Itoa(status)), 0o644)
}

func (d Dir) commandPath(id, job string) string {
	return filepath.Join(d.Build(id), "commands", job)
}

// Command returns the command job ran in build id, as SaveCommand saved
// it, and whether it has one: a build of an older taskrunner has none.
func (d Dir) Command(id, job string) (string, bool, error) {
	b, err := os.ReadFile(d.commandPath(id, job))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSuffix(string(b), "\n"), true, nil
}

// SaveCommand records the command job ran in build id, one line of text,
// beside its result: the result file stays a bare exit status, which the
// tool taskrunner succeeds reads too.
func (d Dir) SaveCommand(id, job, command string) error {
	dir := filepath.Dir(d.commandPath(id, job))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return WriteAtomic(d.Build(id), d.commandPath(id, job), []byte(command+"\n"), 0o644)
}

// WriteAtomic replaces path with data so that no reader sees a torn file:
// it writes a temporary file .<name>.tmp<digits> in tmpDir, on the same file
// system, and renames it over path.
func WriteAtomic(tmpDir, path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
