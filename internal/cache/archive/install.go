package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// installer moves the staged outputs into place, or back out if a move
// fails.
type installer struct {
	rt      *os.Root // the cache root
	staging *staging
	outputs outputSet
	implied map[string]bool // see extractor.implied
	created []string        // folders made above outputs
	done    []swap          // the moves so far
}

// swap is one output moved into place.
type swap struct {
	name   string // the output's name in the cache root
	old    string // where what was there went, or ""
	mode   fs.FileMode
	chmod  bool // what was there is a folder made writable to move it; mode is its own
	placed bool // the staged output is in place
}

// install moves each staged output into place. On error, it undoes the
// moves made.
func (in *installer) install() error {
	targets, err := in.targets()
	if err != nil {
		return err
	}
	for i, t := range targets {
		if err := in.swap(i, t); err != nil {
			err = fmt.Errorf("restore %s: %w", t, err)
			if rerr := in.rollback(); rerr != nil {
				return errors.Join(err, fmt.Errorf("undo the restore: %w", rerr))
			}
			return err
		}
	}
	return nil
}

// targets lists what to move into place: the outputs that are in the
// staging folder, or for the whole root what merge finds.
func (in *installer) targets() ([]string, error) {
	if in.outputs.whole() {
		return in.merge("", nil)
	}
	var targets []string
	for _, o := range in.outputs {
		_, err := in.staging.new.Lstat(o)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue // not in the archive: left alone
		}
		if err != nil {
			return nil, fmt.Errorf("restore %s: %w", o, err)
		}
		targets = append(targets, o)
	}
	return targets, nil
}

// merge adds to targets the entries in staged folder dir ("" for the top)
// for a restore of the whole root: those the archive names, and the
// folders it only implies that are not in the root yet. It goes into the
// other implied folders, to merge them with the root's.
func (in *installer) merge(dir string, targets []string) ([]string, error) {
	f, err := in.staging.new.Open(orDot(dir))
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	slices.Sort(names)
	for _, n := range names {
		name := joinName(dir, n)
		if !in.implied[name] {
			targets = append(targets, name)
			continue
		}
		fi, err := in.staging.new.Lstat(name)
		if err == nil && !fi.IsDir() {
			targets = append(targets, name) // a later entry replaced it
			continue
		}
		_, err = in.rt.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			targets = append(targets, name)
			continue
		}
		if targets, err = in.merge(name, targets); err != nil {
			return nil, err
		}
	}
	return targets, nil
}

// orDot returns dir, or "." for the top.
func orDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

// swap moves the staged output name into place, the i-th move, after
// moving what is there into the staging folder.
func (in *installer) swap(i int, name string) error {
	made, err := parents(in.rt, name, true)
	in.created = append(in.created, made...)
	if err != nil {
		return err
	}
	s := swap{name: name}
	fi, err := in.rt.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if s.mode = fi.Mode().Perm(); fi.IsDir() && s.mode&0o700 != 0o700 {
			// Moving a folder to another one rewrites its "..": Linux
			// wants it writable.
			if err := in.rt.Chmod(name, s.mode|0o700); err != nil {
				return err
			}
			s.chmod = true
		}
		s.old = in.staging.path("old", strconv.Itoa(i))
		if err := in.rt.Rename(name, s.old); err != nil {
			if s.chmod {
				in.rt.Chmod(name, s.mode)
			}
			return err
		}
	}
	in.done = append(in.done, s)
	staged, err := in.staging.new.Lstat(name)
	if err != nil {
		return err
	}
	mode := staged.Mode().Perm()
	writable := !staged.IsDir() || mode&0o700 == 0o700
	if !writable {
		if err := in.staging.new.Chmod(name, mode|0o700); err != nil {
			return err
		}
	}
	if err := in.rt.Rename(in.staging.path("new", name), name); err != nil {
		return err
	}
	in.done[len(in.done)-1].placed = true
	if !writable {
		return in.rt.Chmod(name, mode)
	}
	return nil
}

// rollback undoes the moves made, last first, and removes the folders
// made above outputs.
func (in *installer) rollback() error {
	var errs []error
	for _, s := range slices.Backward(in.done) {
		if s.placed {
			errs = append(errs, in.rt.Rename(s.name, in.staging.path("new", s.name)))
		}
		if s.old != "" {
			errs = append(errs, in.rt.Rename(s.old, s.name))
			if s.chmod {
				errs = append(errs, in.rt.Chmod(s.name, s.mode))
			}
		}
	}
	for _, dir := range slices.Backward(in.created) {
		in.rt.Remove(dir) // only if empty: another task may have written there meanwhile
	}
	in.done, in.created = nil, nil
	return errors.Join(errs...)
}

// parents checks that the folders above output name in the cache root are
// folders, not symlinks, and with create makes the missing ones. It
// returns the folders it made.
func parents(rt *os.Root, name string, create bool) ([]string, error) {
	dir := path.Dir(name)
	if dir == "." {
		return nil, nil
	}
	var made []string
	sofar := ""
	for comp := range strings.SplitSeq(dir, "/") {
		sofar = joinName(sofar, comp)
		fi, err := rt.Lstat(sofar)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			return made, fmt.Errorf("output %s is below symlink %s, which restores never write through: give the output by its real path", name, sofar)
		case err == nil:
			return made, fmt.Errorf("output %s is below %s, which is not a folder", name, sofar)
		case !errors.Is(err, fs.ErrNotExist):
			return made, err
		case !create:
			return made, nil
		}
		if err := rt.Mkdir(sofar, 0o755); err != nil {
			return made, err
		}
		made = append(made, sofar)
	}
	return made, nil
}
