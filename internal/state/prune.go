package state

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/taskrunner/taskrunner/internal/flock"
)

// Prune removes all but the newest keep builds: never current, never a
// build younger than current (another toplevel's, whatever its state), and
// never a build still running. Only builds are removed, folders whose names
// parse as build ids: whatever else is in builds/ stays. It returns the ids
// it removed, and the first error met; it goes on past errors. keep < 1
// keeps all.
func (d Dir) Prune(keep int, current string) ([]string, error) {
	if keep < 1 {
		return nil, nil
	}
	ids, err := d.Builds()
	if err != nil || len(ids) <= keep {
		return nil, err
	}
	own, ownOK := ParseBuildID(current)
	var removed []string
	var first error
	for _, id := range ids[:len(ids)-keep] {
		if id == current {
			continue
		}
		if start, _ := ParseBuildID(id); ownOK && start.After(own) {
			continue
		}
		// The exclusive lock keeps the build's own processes out while it
		// goes: a process of the build marks it running before it writes.
		unlock, held, err := flock.TryExclusive(filepath.Join(d.Build(id), "results"))
		if held {
			continue
		}
		if err == nil {
			err = os.RemoveAll(d.Build(id))
			unlock()
		} else {
			// No results folder: a broken build, not a running one.
			err = os.RemoveAll(d.Build(id))
		}
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		removed = append(removed, id)
	}
	return removed, first
}

// StaleAfter is the age past which a temporary file or folder of the state
// directory is left over from a process that died while it wrote: the
// writes that make them take far less.
const StaleAfter = time.Hour

var (
	// hashTemp is a temporary file of SaveHash, beside hash/<job>.hash.
	hashTemp = regexp.MustCompile(`^\..*\.hash\.tmp[0-9]+$`)
	// tokenTemp is a temporary file of the shared GitHub token cache.
	tokenTemp = regexp.MustCompile(`^\.github-token-cache\.json\..*\.tmp$`)
)

// RemoveStale removes the temporary files and folders that processes
// killed while they wrote left in the state directory, as of now: those
// older than StaleAfter, and for a build's temporary folder, only when no
// process holds its running mark. A concurrent writer's temporary file is
// younger, so no writer is disturbed. It returns the paths it removed.
func (d Dir) RemoveStale(now time.Time) []string {
	var removed []string
	stale := func(dir string, match func(os.DirEntry) bool, remove func(string) bool) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !match(e) {
				continue
			}
			fi, err := e.Info()
			if err != nil || now.Sub(fi.ModTime()) < StaleAfter {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if remove(path) {
				removed = append(removed, path)
			}
		}
	}
	removeFile := func(path string) bool { return os.Remove(path) == nil }
	isFile := func(re *regexp.Regexp) func(os.DirEntry) bool {
		return func(e os.DirEntry) bool { return e.Type().IsRegular() && re.MatchString(e.Name()) }
	}

	stale(filepath.Join(d.Root, "hash"), isFile(hashTemp), removeFile)
	stale(d.Root, isFile(tokenTemp), removeFile)
	stale(filepath.Join(d.Root, "builds"), func(e os.DirEntry) bool {
		return e.IsDir() && strings.HasPrefix(e.Name(), tempBuildPrefix)
	}, func(path string) bool {
		unlock, held, err := flock.TryExclusive(filepath.Join(path, "results"))
		if held {
			return false
		}
		if err == nil {
			defer unlock()
		}
		return os.RemoveAll(path) == nil
	})
	// In a build's folder, the dot files are the temporary files of its
	// results and trace.
	ids, _ := d.Builds()
	for _, id := range ids {
		stale(d.Build(id), func(e os.DirEntry) bool {
			return e.Type().IsRegular() && strings.HasPrefix(e.Name(), ".")
		}, removeFile)
	}
	return removed
}
