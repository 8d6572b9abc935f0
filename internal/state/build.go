package state

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/taskrunner/taskrunner/internal/flock"
)

// buildIDLayout is the layout of the build ids taskrunner makes.
const buildIDLayout = "2006-01-02T15:04:05.000000Z"

// tempBuildPrefix starts the name of a build's folder until the build is
// marked running. A build id never starts with a dot.
const tempBuildPrefix = ".new-build-"

// NewBuildID returns the id of a build started at t: UTC, ISO 8601, with
// microseconds.
func NewBuildID(t time.Time) string {
	return t.UTC().Format(buildIDLayout)
}

// ParseBuildID returns the time a build started, from its id, and whether
// id is a build id at all: a UTC time in ISO 8601, "2026-11-29T16:40:00Z"
// with up to twelve digits of fractions of a second, as taskrunner (six
// digits) and the tool it succeeds (as many as needed) write them. It is
// the one test of what is a build in builds/.
func ParseBuildID(id string) (time.Time, bool) {
	const whole = len("2006-01-02T15:04:05")
	if len(id) < whole+1 || id[len(id)-1] != 'Z' {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02T15:04:05", id[:whole])
	if err != nil {
		return time.Time{}, false
	}
	frac := id[whole : len(id)-1]
	if frac == "" {
		return t, true
	}
	digits := frac[1:]
	if frac[0] != '.' || len(digits) == 0 || len(digits) > 12 || strings.Trim(digits, "0123456789") != "" {
		return time.Time{}, false
	}
	ns := 0
	for i := range 9 {
		ns *= 10
		if i < len(digits) {
			ns += int(digits[i] - '0')
		}
	}
	return t.Add(time.Duration(ns)), true
}

// NewBuild starts a build at time t and marks it running (see MarkRunning)
// before any other process can see it: it makes the build's folders under
// a temporary name that is no build id, takes the running mark there, and
// only then renames the folder to a build id no other build has (two
// toplevels started in the same microsecond get ids a microsecond apart).
// So a concurrent Prune never finds the new build unmarked. The returned
// function ends the mark.
func (d Dir) NewBuild(t time.Time) (id string, release func(), err error) {
	builds := filepath.Join(d.Root, "builds")
	if err := mkdir(builds); err != nil {
		return "", nil, err
	}
	tmp, err := os.MkdirTemp(builds, tempBuildPrefix+"*")
	if err != nil {
		return "", nil, unusable(builds, err)
	}
	for _, sub := range []string{"logs", "results", "commands"} {
		if err := mkdir(filepath.Join(tmp, sub)); err != nil {
			os.RemoveAll(tmp)
			return "", nil, err
		}
	}
	// The lock is on the folder's inode: it moves with the rename.
	release, err = flock.Shared(filepath.Join(tmp, "results"))
	if err != nil {
		os.RemoveAll(tmp)
		return "", nil, unusable(tmp, err)
	}
	for {
		id = NewBuildID(t)
		err := renameNoReplace(tmp, d.Build(id))
		if errors.Is(err, os.ErrExist) || errors.Is(err, errNotEmpty) {
			t = t.Add(time.Microsecond)
			continue
		}
		if err != nil {
			release()
			os.RemoveAll(tmp)
			return "", nil, unusable(d.Build(id), err)
		}
		return id, release, nil
	}
}

// unusable is err, met creating path, as an *UnusableError.
func unusable(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	return &UnusableError{Path: path, Err: err}
}

// MarkRunning marks build id as running until the returned function is
// called: it holds a shared flock(2) on the build's results folder, which
// Prune tries to take exclusively before it removes a build. Every process
// of a build holds it; the kernel drops it when the process exits, however
// it exits.
func (d Dir) MarkRunning(id string) (release func(), err error) {
	return flock.Shared(filepath.Join(d.Build(id), "results"))
}

// IsRunning reports whether a process of build id still holds its running
// mark. A build without a results folder is a broken one, not a running
// one.
func (d Dir) IsRunning(id string) bool {
	unlock, held, err := flock.TryExclusive(filepath.Join(d.Build(id), "results"))
	if err != nil || held {
		return held
	}
	unlock()
	return false
}

// Builds returns the ids of the builds in the state directory, oldest
// first. Only folders whose names parse as build ids are builds; other
// folders and files are no business of taskrunner's.
func (d Dir) Builds() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(d.Root, "builds"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type build struct {
		id    string
		start time.Time
	}
	var builds []build
	for _, e := range entries {
		if start, ok := ParseBuildID(e.Name()); ok && e.IsDir() {
			builds = append(builds, build{e.Name(), start})
		}
	}
	sort.Slice(builds, func(i, j int) bool {
		if c := builds[i].start.Compare(builds[j].start); c != 0 {
			return c < 0
		}
		return builds[i].id < builds[j].id
	})
	ids := make([]string, len(builds))
	for i, b := range builds {
		ids[i] = b.id
	}
	return ids, nil
}

// IsBuild reports whether id names a build of the state directory.
func (d Dir) IsBuild(id string) bool {
	if _, ok := ParseBuildID(id); !ok {
		return false
	}
	fi, err := os.Lstat(d.Build(id))
	return err == nil && fi.IsDir()
}
