package state

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// Running marks build id as running for as long as the returned file is
// open: it holds a shared flock(2) on the build's results folder, which
// Prune tries to take exclusively before it removes a build. Every process
// of a build may hold it; the kernel drops it when the process exits.
func (d Dir) Running(id string) (*os.File, error) {
	f, err := os.Open(filepath.Join(d.Build(id), "results"))
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Prune removes all but the newest keep builds, never current and never a
// build still running. It returns the ids it removed. keep < 1 keeps all.
func (d Dir) Prune(keep int, current string) ([]string, error) {
	if keep < 1 {
		return nil, nil
	}
	ids, err := d.Builds()
	if err != nil || len(ids) <= keep {
		return nil, err
	}
	var removed []string
	for _, id := range ids[:len(ids)-keep] {
		if id == current || d.running(id) {
			continue
		}
		if err := os.RemoveAll(d.Build(id)); err != nil {
			return removed, err
		}
		removed = append(removed, id)
	}
	return removed, nil
}

// Builds returns the ids of the builds in the state directory, oldest
// first: build ids are UTC times of one fixed width, so their order is the
// order in which the builds started.
func (d Dir) Builds() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(d.Root, "builds"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// running reports whether a process of build id still holds it.
func (d Dir) running(id string) bool {
	f, err := os.Open(filepath.Join(d.Build(id), "results"))
	if err != nil {
		return false // no results folder: a broken build, not a running one
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	return err != nil
}
