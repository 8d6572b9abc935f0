package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// Each kind of entry is created assuming nothing is in the way, which is
// true when restoring into a clean tree, and the name is cleared and the
// creation tried again only when that fails with "exists". Creation never
// follows a symlink at the name: O_EXCL, mkdir, symlink and link all fail
// on an existing one instead.

func (x *extractor) dir(name string, hdr *tar.Header) error {
	if err := x.parents(hdr.Name, name); err != nil {
		return err
	}
	r, base, err := x.at(name)
	if err != nil {
		return err
	}
	// Writable until finishDirs sets the archived mode.
	err = r.Mkdir(base, 0o700)
	if errors.Is(err, fs.ErrExist) {
		var fi fs.FileInfo
		if fi, err = r.Lstat(base); err == nil {
			switch {
			case !fi.IsDir():
				if err = r.Remove(base); err == nil {
					err = r.Mkdir(base, 0o700)
				}
			case fi.Mode().Perm()&0o700 != 0o700:
				err = r.Chmod(base, fi.Mode().Perm()|0o700)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	x.realDirs[name] = true
	x.dirs[name] = dirMeta{mode: fs.FileMode(hdr.Mode).Perm(), mtime: hdr.ModTime}
	x.stats.Dirs++
	return nil
}

func (x *extractor) file(name string, hdr *tar.Header, tr *tar.Reader) error {
	if err := x.parents(hdr.Name, name); err != nil {
		return err
	}
	r, base, err := x.at(name)
	if err != nil {
		return err
	}
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := r.OpenFile(base, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err = x.clear(name); err == nil {
			f, err = r.OpenFile(base, flags, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	n, err := x.copy(name, f, tr)
	x.stats.Bytes += n
	if err == nil {
		if err = f.Chmod(fs.FileMode(hdr.Mode).Perm()); err != nil {
			err = fmt.Errorf("extract %s: %w", name, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("extract %s: %w", name, cerr)
	}
	if err != nil {
		return err
	}
	if err := r.Chtimes(base, time.Time{}, hdr.ModTime); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	x.stats.Files++
	return nil
}

// copy moves one entry's contents into f, checking ctx between buffers.
func (x *extractor) copy(name string, f *os.File, tr *tar.Reader) (int64, error) {
	var n int64
	for {
		if err := x.ctx.Err(); err != nil {
			return n, err
		}
		m, err := tr.Read(x.buf)
		if m > 0 {
			if _, werr := f.Write(x.buf[:m]); werr != nil {
				return n, fmt.Errorf("extract %s: %w", name, werr)
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, x.readErr(err)
		}
	}
}

func (x *extractor) symlink(name string, hdr *tar.Header) error {
	if err := x.parents(hdr.Name, name); err != nil {
		return err
	}
	if err := checkSymlinkTarget(hdr.Name, name, hdr.Linkname); err != nil {
		return err
	}
	if err := x.resolveInside(hdr.Name, name, hdr.Linkname); err != nil {
		return err
	}
	r, base, err := x.at(name)
	if err != nil {
		return err
	}
	err = r.Symlink(hdr.Linkname, base)
	if errors.Is(err, fs.ErrExist) {
		if err = x.clear(name); err == nil {
			err = r.Symlink(hdr.Linkname, base)
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	x.stats.Files++
	return nil
}

func (x *extractor) hardlink(name string, hdr *tar.Header) error {
	target, err := entryName(hdr.Linkname)
	if err != nil || target == "" {
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("hard link to %q, outside the root", hdr.Linkname)}
	}
	if target == name {
		return &UnsafeEntryError{Name: hdr.Name, Reason: "hard link to itself"}
	}
	if err := x.parents(hdr.Name, target); err != nil {
		return err
	}
	fi, err := x.root.Lstat(target)
	if err != nil {
		return fmt.Errorf("extract %s: hard link target: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("hard link to %q, which is not a regular file", hdr.Linkname)}
	}
	if err := x.parents(hdr.Name, name); err != nil {
		return err
	}
	err = x.root.Link(target, name)
	if errors.Is(err, fs.ErrExist) {
		if err = x.clear(name); err == nil {
			err = x.root.Link(target, name)
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	x.stats.Files++
	return nil
}
