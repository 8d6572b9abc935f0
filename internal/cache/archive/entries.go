package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"
)

// Each kind of entry is created assuming nothing is in the way, which is
// true in a fresh staging folder unless the archive names a path twice;
// the name is cleared and the creation tried again only when that fails
// with "exists". Creation never follows a symlink at the name: O_EXCL,
// mkdir, symlink and link all fail on an existing one instead.

// split returns the folder of name ("" at the top) and its last part.
func split(name string) (dir, base string) {
	dir, base = path.Split(name)
	if dir != "" {
		dir = dir[:len(dir)-1]
	}
	return dir, base
}

// perm is the mode a restored file or folder gets: the archived
// permission bits less the umask; never setuid, setgid or sticky.
func (x *extractor) perm(mode int64) fs.FileMode {
	return fs.FileMode(mode) & fs.ModePerm &^ x.umask
}

func (x *extractor) dir(name string, hdr *tar.Header) error {
	dir, base := split(name)
	if err := x.enter(hdr.Name, dir); err != nil {
		return err
	}
	if err := x.push(hdr.Name, base, hdr); err != nil {
		return err
	}
	x.stats.Dirs++
	return nil
}

func (x *extractor) file(name string, hdr *tar.Header, tr *tar.Reader) error {
	dir, base := split(name)
	if err := x.enter(hdr.Name, dir); err != nil {
		return err
	}
	if hdr.Size > 0 {
		if err := x.checkSpace(hdr.Size); err != nil {
			return err
		}
	}
	r, err := x.top()
	if err != nil {
		return err
	}
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := r.OpenFile(base, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err = x.clear(r, name, base); err == nil {
			f, err = r.OpenFile(base, flags, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	n, err := x.copy(name, f, tr, hdr.Size)
	x.stats.Bytes += n
	if err == nil {
		if err = f.Chmod(x.perm(hdr.Mode)); err != nil {
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

// copy moves one entry's contents into f, checking ctx between buffers and
// the free space every spaceCheckEvery bytes.
func (x *extractor) copy(name string, f *os.File, tr *tar.Reader, size int64) (int64, error) {
	var n, checked int64
	for {
		if err := x.ctx.Err(); err != nil {
			return n, err
		}
		if n-checked >= spaceCheckEvery {
			if err := x.checkSpace(size - n); err != nil {
				return n, err
			}
			checked = n
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

// checkSpace refuses to write need more bytes when that would leave less
// free space than the limit.
func (x *extractor) checkSpace(need int64) error {
	if x.limits.MinFree < 0 {
		return nil
	}
	avail, total, err := x.limits.statFS(x.space)
	if err != nil {
		return fmt.Errorf("check free space: %w", err)
	}
	keep := x.limits.minFree(total)
	if avail < keep || avail-keep < uint64(need) {
		return &LimitError{What: LimitFreeSpace, Limit: int64(keep), Path: x.rootPath}
	}
	return nil
}

func (x *extractor) symlink(name string, hdr *tar.Header) error {
	if n := len(hdr.Linkname); n > x.limits.MaxPathLength {
		return &LimitError{What: LimitPathLength, Entry: hdr.Name, Limit: int64(x.limits.MaxPathLength), Value: int64(n), Link: true}
	}
	if reason := x.outputs.checkLink(name, hdr.Linkname); reason != "" {
		return &UnsafeEntryError{Name: hdr.Name, Reason: reason}
	}
	dir, base := split(name)
	if err := x.enter(hdr.Name, dir); err != nil {
		return err
	}
	r, err := x.top()
	if err != nil {
		return err
	}
	err = r.Symlink(hdr.Linkname, base)
	if errors.Is(err, fs.ErrExist) {
		if err = x.clear(r, name, base); err == nil {
			err = r.Symlink(hdr.Linkname, base)
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	x.stats.Files++
	return nil
}

// hardlink links name to a regular file the archive made before, inside
// the outputs. The staging folder holds nothing else, so a target found
// there is one.
func (x *extractor) hardlink(name string, hdr *tar.Header) error {
	if n := len(hdr.Linkname); n > x.limits.MaxPathLength {
		return &LimitError{What: LimitPathLength, Entry: hdr.Name, Limit: int64(x.limits.MaxPathLength), Value: int64(n), Link: true}
	}
	target, err := entryName(hdr.Linkname)
	switch {
	case err != nil || target == "":
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("hard link to %q, outside the cache root", hdr.Linkname)}
	case hasGit(target):
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("hard link to %q, inside .git", hdr.Linkname)}
	case !x.outputs.contains(target):
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("hard link to %q, outside the task's outputs", hdr.Linkname)}
	case target == name:
		return &UnsafeEntryError{Name: hdr.Name, Reason: "hard link to itself"}
	}
	fi, err := x.lookup(hdr.Name, target)
	var unsafe *UnsafeEntryError
	switch {
	case errors.As(err, &unsafe):
		return err
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || err == nil && !fi.Mode().IsRegular():
		return &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("hard link to %q, not a regular file the archive made before it", hdr.Linkname)}
	case err != nil:
		return fmt.Errorf("extract %s: hard link target: %w", name, err)
	}
	dir, base := split(name)
	if err := x.enter(hdr.Name, dir); err != nil {
		return err
	}
	err = x.root.Link(target, name)
	if errors.Is(err, fs.ErrExist) {
		var r *os.Root
		if r, err = x.top(); err == nil {
			if err = x.clear(r, name, base); err == nil {
				err = x.root.Link(target, name)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	x.stats.Files++
	return nil
}
