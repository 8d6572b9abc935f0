package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// maxOpenFolders bounds the folder handles the extractor keeps open.
const maxOpenFolders = 64

// dirMeta is what a folder gets once everything inside it is written.
type dirMeta struct {
	mode  fs.FileMode
	mtime time.Time
}

// at returns a handle on name's folder and name's last part. Going through
// an os.Root per folder costs one system call per operation where the
// extraction root would walk every component of the path each time; with
// many small files in deep trees that made extraction three times slower.
// The folder must have passed parents.
func (x *extractor) at(name string) (*os.Root, string, error) {
	dir, base := path.Split(name)
	if dir == "" {
		return x.root, base, nil
	}
	dir = strings.TrimSuffix(dir, "/")
	if r, ok := x.open[dir]; ok {
		return r, base, nil
	}
	if len(x.open) >= maxOpenFolders {
		x.closeFolders()
	}
	r, err := x.root.OpenRoot(dir)
	if err != nil {
		return nil, "", fmt.Errorf("extract %s: %w", name, err)
	}
	x.open[dir] = r
	return r, base, nil
}

func (x *extractor) closeFolders() {
	for dir, r := range x.open {
		r.Close()
		delete(x.open, dir)
	}
}

// parents makes sure every folder above name is a real folder, creating
// missing ones, and refuses a path that goes through a symlink.
func (x *extractor) parents(entry, name string) error {
	dir := path.Dir(name)
	if dir == "." || x.realDirs[dir] {
		return nil
	}
	sofar := ""
	for _, p := range strings.Split(dir, "/") {
		if sofar == "" {
			sofar = p
		} else {
			sofar += "/" + p
		}
		if x.realDirs[sofar] {
			continue
		}
		err := x.root.Mkdir(sofar, 0o755)
		if errors.Is(err, fs.ErrExist) {
			var fi fs.FileInfo
			fi, err = x.root.Lstat(sofar)
			switch {
			case err != nil:
			case fi.Mode()&fs.ModeSymlink != 0:
				return &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf("path goes through symlink %q", sofar)}
			case !fi.IsDir():
				err = fmt.Errorf("%s is not a folder", sofar)
			}
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
		x.realDirs[sofar] = true
	}
	return nil
}

// clear removes whatever is at name so that a new entry can take its place.
func (x *extractor) clear(name string) error {
	r, base, err := x.at(name)
	if err != nil {
		return err
	}
	fi, err := r.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		if fi.IsDir() {
			x.forget(name)
			err = r.RemoveAll(base)
		} else {
			err = r.Remove(base)
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: replace existing: %w", name, err)
	}
	return nil
}

// forget drops what is known about folder name and everything inside it.
func (x *extractor) forget(name string) {
	inside := func(d string) bool { return d == name || strings.HasPrefix(d, name+"/") }
	for d := range x.realDirs {
		if inside(d) {
			delete(x.realDirs, d)
		}
	}
	for d := range x.dirs {
		if inside(d) {
			delete(x.dirs, d)
		}
	}
	for d, r := range x.open {
		if inside(d) {
			r.Close()
			delete(x.open, d)
		}
	}
}

// finishDirs gives folders their archived mode and time, once nothing more
// will be written into them. Setting them on a folder leaves its parent's
// time alone, so the order does not matter.
func (x *extractor) finishDirs() error {
	for name, m := range x.dirs {
		r, base, err := x.at(name)
		if err != nil {
			return err
		}
		if err := r.Chmod(base, m.mode); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
		if err := r.Chtimes(base, time.Time{}, m.mtime); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
	}
	return nil
}
