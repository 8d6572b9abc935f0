package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// openFolder returns the folder store rooted at dir, an absolute path, which
// is created if missing.
//
// What the folder holds, for a user who looks at it or syncs it:
//
//   - each object is a file at dir/<key>, in subfolders along the key's "/",
//     and nothing else: no side file, so no content type is kept (the
//     store has nowhere to keep one, and nothing reads it back). Folders
//     are created 0777 and files 0666, less the umask;
//   - while a writer is open, a temporary file .<16 hex digits>.tmp in the
//     object's folder, created anew (never over an existing file), renamed
//     over <key> when Close succeeds and removed when the write is
//     abandoned or fails. A process killed mid-write can leave one behind;
//     it is never read as an object and can be deleted. It is kept beside
//     the object rather than in $TMPDIR because a rename from another file
//     system, such as a tmpfs /tmp, would fail.
//
// Readers see the old object or the new one, whole: a rename replaces it at
// once. A file put at dir/<key> by hand reads back as an object.
//
// Only a regular file is an object: a symlink, folder, named pipe, socket or
// device at a key is a miss, found without opening it. No symlink below dir
// is ever followed, neither at a key nor in a folder along it, for reads and
// writes alike: a write through a symlinked folder fails, and a write at a
// key that is a symlink replaces the link, not its target. dir itself may be
// a symlink: it is the user's setting.
func openFolder(dir string) (Store, error) {
	s := &folderStore{dir: dir}
	if err := s.makeRoot(); err != nil {
		return nil, err
	}
	s.base = (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
	if !strings.HasSuffix(s.base, "/") {
		s.base += "/"
	}
	return s, nil
}

// folderStore is the Store of openFolder.
//
// It walks a key itself, opening each folder along it with openat and
// O_NOFOLLOW|O_DIRECTORY from the one before, rather than through os.Root,
// whose methods follow symlinks that stay inside the root. Each operation
// opens dir anew, so the store holds no descriptor between operations.
type folderStore struct {
	dir  string // absolute
	base string // dir as a file URL ending in "/", for messages
}

var _ Store = (*folderStore)(nil)

func (s *folderStore) Describe() string { return s.base }

func (s *folderStore) Close() error { return nil }

// where names an object in messages.
func (s *folderStore) where(key string) string { return s.base + key }

func (s *folderStore) makeRoot() error {
	if err := os.MkdirAll(s.dir, 0o777); err != nil {
		return fmt.Errorf("cannot use the cache folder %s: %w", s.dir, err)
	}
	return nil
}

// Opening a file or folder never follows a symlink, nor blocks on a named
// pipe, nor leaks into a child process.
const (
	openFolderFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	openFileFlags   = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	createFileFlags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// errNotFolder is a name along a key that is not a folder, or is a symlink.
var errNotFolder = errors.New("not a folder (symlinks are not followed)")

// folder opens the folder that holds key and returns its descriptor, which
// the caller must close, and the object's name in it. With create, missing
// folders are made, dir included. A missing folder or a name along the key
// that is not a real folder is an error matching fs.ErrNotExist; with
// create, the second is an error matching errNotFolder.
func (s *folderStore) folder(key string, create bool) (fd int, name string, err error) {
	fd, err = openat(unix.AT_FDCWD, s.dir, openFolderFlags&^unix.O_NOFOLLOW, 0)
	if err == unix.ENOENT && create {
		if err = s.makeRoot(); err != nil {
			return -1, "", err
		}
		fd, err = openat(unix.AT_FDCWD, s.dir, openFolderFlags&^unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return -1, "", &os.PathError{Op: "open", Path: s.dir, Err: err}
	}
	segs := strings.Split(key, "/")
	for i, seg := range segs[:len(segs)-1] {
		next, err := openSubfolder(fd, seg, create)
		unix.Close(fd)
		if err != nil {
			return -1, "", &os.PathError{Op: "open", Path: strings.Join(segs[:i+1], "/"), Err: err}
		}
		fd = next
	}
	return fd, segs[len(segs)-1], nil
}

// openSubfolder opens the folder name in dir, making it first if it is
// missing and create is set. A symlink, or anything else that is not a
// folder, is errNotFolder when create is set and unix.ENOENT when not: for
// a read, no object is below it.
func openSubfolder(dir int, name string, create bool) (int, error) {
	fd, err := openat(dir, name, openFolderFlags, 0)
	if err == unix.ENOENT && create {
		err = ignoringEINTR(func() error { return unix.Mkdirat(dir, name, 0o777) })
		if err != nil && err != unix.EEXIST {
			return -1, err
		}
		fd, err = openat(dir, name, openFolderFlags, 0)
	}
	switch err {
	case nil:
		return fd, nil
	// O_NOFOLLOW on a symlink: ELOOP (Linux, macOS), EMLINK (FreeBSD).
	case unix.ENOTDIR, unix.ELOOP, unix.EMLINK:
		if create {
			return -1, errNotFolder
		}
		return -1, unix.ENOENT
	}
	return -1, err
}

// regular reports whether the stat result is a regular file, and else
// names what it is, for messages.
func regular(st *unix.Stat_t) (ok bool, what string) {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return true, "a file"
	case unix.S_IFDIR:
		return false, "a folder"
	case unix.S_IFLNK:
		return false, "a symlink"
	case unix.S_IFIFO:
		return false, "a named pipe"
	case unix.S_IFSOCK:
		return false, "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return false, "a device"
	}
	return false, "something else"
}

// notFound is the error of a read of key, for which nothing is there or
// what is there is not an object (what, "" if nothing).
func (s *folderStore) notFound(op, key, what string) error {
	if what == "" {
		return fmt.Errorf("%s %s: %w", op, s.where(key), ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w: %s is there, not a file", op, s.where(key), ErrNotFound, what)
}

func (s *folderStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	dir, name, err := s.find(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	// O_NONBLOCK: a named pipe put in place since find looked must not
	// make the open wait for a writer; the second look refuses it.
	fd, err := openat(dir, name, openFileFlags, 0)
	switch err {
	case nil:
	case unix.ENOENT, unix.ELOOP, unix.EMLINK, unix.ENXIO:
		return nil, s.notFound("get", key, "")
	default:
		return nil, fmt.Errorf("get %s: %w", s.where(key), &os.PathError{Op: "open", Path: key, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("get %s: %w", s.where(key), &os.PathError{Op: "stat", Path: key, Err: err})
	}
	if ok, what := regular(&st); !ok {
		unix.Close(fd)
		return nil, s.notFound("get", key, what)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("get %s: %w", s.where(key), err)
	}
	return &folderReader{f: os.NewFile(uintptr(fd), key), s: s, key: key}, nil
}

func (s *folderStore) Exists(ctx context.Context, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	dir, _, err := s.find(ctx, "check", key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	unix.Close(dir)
	return true, nil
}

// find looks for the object at key for op, without opening it: opening a
// device can act on it. It returns the open folder that holds the object,
// which the caller must close, and the object's name in it. When nothing is
// at key, or something that is not a regular file, the error matches
// ErrNotFound.
func (s *folderStore) find(ctx context.Context, op, key string) (dir int, name string, err error) {
	if err := ctx.Err(); err != nil {
		return -1, "", fmt.Errorf("%s %s: %w", op, s.where(key), err)
	}
	dir, name, err = s.folder(key, false)
	if errors.Is(err, os.ErrNotExist) {
		return -1, "", s.notFound(op, key, "")
	}
	if err != nil {
		return -1, "", fmt.Errorf("%s %s: %w", op, s.where(key), err)
	}
	var st unix.Stat_t
	err = ignoringEINTR(func() error { return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
	switch {
	case err == unix.ENOENT:
		err = s.notFound(op, key, "")
	case err != nil:
		err = fmt.Errorf("%s %s: %w", op, s.where(key), &os.PathError{Op: "stat", Path: key, Err: err})
	default:
		ok, what := regular(&st)
		if ok {
			return dir, name, nil
		}
		err = s.notFound(op, key, what)
	}
	unix.Close(dir)
	return -1, "", err
}

// NewWriter ignores contentType: the folder keeps none (see openFolder).
func (s *folderStore) NewWriter(ctx context.Context, key, contentType string) (io.WriteCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("put %s: %w", s.where(key), err)
	}
	dir, name, err := s.folder(key, true)
	if err != nil {
		return nil, fmt.Errorf("put %s: %w", s.where(key), err)
	}
	// O_EXCL: a temporary name that is taken, by a key's file or another
	// writer's, is tried again with new random digits, never overwritten.
	for range 10 {
		var b [8]byte
		rand.Read(b[:])
		tmp := "." + hex.EncodeToString(b[:]) + ".tmp"
		fd, err := openat(dir, tmp, createFileFlags, 0o666)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			unix.Close(dir)
			return nil, fmt.Errorf("put %s: %w", s.where(key), &os.PathError{Op: "create", Path: tmp, Err: err})
		}
		f := os.NewFile(uintptr(fd), tmp)
		return &folderWriter{ctx: ctx, s: s, key: key, dir: dir, name: name, tmp: tmp, f: f}, nil
	}
	unix.Close(dir)
	return nil, fmt.Errorf("put %s: no free temporary name", s.where(key))
}

// folderReader names the object in its errors.
type folderReader struct {
	f   *os.File
	s   *folderStore
	key string
}

func (r *folderReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %s: %w", r.s.where(r.key), err)
	}
	return n, err
}

func (r *folderReader) Close() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("read %s: %w", r.s.where(r.key), err)
	}
	return nil
}

// folderWriter writes a temporary file in the object's folder and renames
// it over the object on Close.
type folderWriter struct {
	ctx  context.Context
	s    *folderStore
	key  string
	dir  int    // the object's folder, held open until Close
	name string // the object's name in dir
	tmp  string // the temporary file's name in dir
	f    *os.File
	err  error // the first failure; the write is then abandoned
	done bool
}

func (w *folderWriter) Write(p []byte) (int, error) {
	if w.err == nil {
		w.err = w.ctx.Err()
	}
	if w.err != nil {
		return 0, fmt.Errorf("put %s: %w", w.s.where(w.key), w.err)
	}
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
		return n, fmt.Errorf("put %s: %w", w.s.where(w.key), err)
	}
	return n, nil
}

// Close puts the object in place, or abandons the write after a failure
// or once ctx is done. Either way the temporary file is gone.
func (w *folderWriter) Close() error {
	if w.done {
		return fmt.Errorf("put %s: writer already closed", w.s.where(w.key))
	}
	w.done = true
	defer unix.Close(w.dir)
	err := w.f.Close()
	if w.err != nil {
		err = w.err
	}
	if err == nil {
		err = w.ctx.Err()
	}
	if err == nil {
		// renameat replaces a symlink at the key; it never follows it.
		err = ignoringEINTR(func() error { return unix.Renameat(w.dir, w.tmp, w.dir, w.name) })
		if err != nil {
			err = &os.LinkError{Op: "rename", Old: w.tmp, New: w.key, Err: err}
		}
	}
	if err != nil {
		_ = ignoringEINTR(func() error { return unix.Unlinkat(w.dir, w.tmp, 0) })
		return fmt.Errorf("put %s: %w", w.s.where(w.key), err)
	}
	return nil
}

// openat is unix.Openat, tried again on EINTR, which a slow file system
// (NFS, FUSE) can return despite SA_RESTART; package os does the same.
func openat(dir int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// ignoringEINTR calls fn until it fails with something other than EINTR, as
// openat does.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
