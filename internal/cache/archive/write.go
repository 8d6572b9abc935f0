package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"
)

// WriteOptions tunes Write. The zero value gives what the older tool made
// with `zstd -3 -T0`.
type WriteOptions struct {
	// Level is the zstd command-line level to match, 1 to 19; 0 means 3.
	// Levels map onto the encoder's four speeds: 1–2, 3–5, 6–9 and 10 up.
	Level int
	// Concurrency is how many goroutines compress; 0 means GOMAXPROCS.
	Concurrency int
}

// Write writes a zstd-compressed tar archive of paths to w and returns what
// it holds.
//
// Paths are relative to root (slash- or OS-separated) and name files,
// symbolic links or folders. They are archived in sorted order, and a path
// inside a folder that is also given is archived once. A folder is archived
// whole: its own entry ("dir/"), then its contents in sorted name order,
// depth first, which is what `tar -C root --sort=name -c paths...` makes.
// Entry names are relative to root, slash-separated, without "./"; the
// folders above a given path get no entry of their own, as with GNU tar.
//
// Entries keep permission bits, modification times (to the second, as GNU
// tar stores them), owner ids, and symbolic links as links with their target
// unchanged. Files hard-linked to one already archived become hard-link
// entries. Sockets, devices and named pipes are skipped without error and
// counted in Stats.Skipped.
//
// Write refuses what Restore would refuse, rather than upload a bundle that
// can never be restored: with an *UnsafeEntryError, a .git folder or file
// anywhere in the outputs, a symlink that is absolute or does not lead
// inside the outputs (see Restore), and an output path that goes through a
// symlink (a symlink given as a path is archived as the link); with a
// *LimitError, more entries, longer names or deeper names than Restore's
// default Limits allow (the system keeps link targets short enough). An
// output path with a .git component is an error too. When paths hold ".",
// a restore's staging folder at the top of root is left out: it is
// another restore's, half made.
//
// A path that does not exist is an error naming it (wrapping
// fs.ErrNotExist); so is an absolute path or one leading out of root. On any
// error, or when ctx is cancelled, Write stops and w holds an incomplete
// archive, which the caller must not upload.
func Write(ctx context.Context, w io.Writer, root string, paths []string, opt WriteOptions) (Stats, error) {
	names, err := outputNames(paths)
	if err != nil {
		return Stats{}, err
	}
	cw := &countWriter{w: w}
	fw, err := newFrameWriter(cw, opt)
	if err != nil {
		return Stats{}, fmt.Errorf("start zstd encoder: %w", err)
	}
	a := &archiver{
		ctx:     ctx,
		tw:      tar.NewWriter(fw),
		root:    root,
		outputs: names,
		buf:     make([]byte, copyBufSize),
		links:   make(map[inode]string),
	}
	for _, name := range names {
		if err = a.addPath(name); err != nil {
			break
		}
	}
	if err == nil {
		err = a.tw.Close()
	}
	if err == nil {
		err = fw.Close()
	} else {
		fw.abort() // no tail for a broken archive
	}
	a.stats.Compressed = cw.n
	if err != nil {
		return a.stats, fmt.Errorf("write cache archive: %w", err)
	}
	return a.stats, nil
}

// inode identifies a file for hard-link detection.
type inode struct{ dev, ino uint64 }

type archiver struct {
	ctx     context.Context
	tw      *tar.Writer
	root    string
	outputs outputSet
	buf     []byte
	links   map[inode]string // first name archived for each multiply-linked file
	entries int
	stats   Stats
}

// addPath archives one output path, recursing into folders.
func (a *archiver) addPath(name string) error {
	if err := a.checkParents(name); err != nil {
		return err
	}
	fi, err := os.Lstat(a.osPath(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("output %s does not exist: %w", name, err)
		}
		return err
	}
	if name == "." {
		// The root itself has no entry, as it would have no name.
		return a.addChildren(name)
	}
	return a.add(name, fi)
}

// checkParents refuses an output reached through a symlink: Restore would
// refuse to write through it, so the bundle could never be restored.
func (a *archiver) checkParents(name string) error {
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		fi, err := os.Lstat(a.osPath(dir))
		if err != nil {
			continue // reported for name itself
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return &UnsafeEntryError{Name: name, Reason: fmt.Sprintf(
				"path goes through symlink %q, which Restore refuses: give the output by its real path", dir)}
		}
	}
	return nil
}

func (a *archiver) osPath(name string) string {
	return filepath.Join(a.root, filepath.FromSlash(name))
}

func (a *archiver) add(name string, fi fs.FileInfo) error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	if err := a.check(name, fi.IsDir()); err != nil {
		return err
	}
	switch mode := fi.Mode(); {
	case mode.IsDir():
		if err := a.tw.WriteHeader(a.header(name+"/", tar.TypeDir, fi)); err != nil {
			return err
		}
		a.stats.Dirs++
		return a.addChildren(name)
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(a.osPath(name))
		if err != nil {
			return err
		}
		if reason := a.outputs.checkLink(name, target); reason != "" {
			return &UnsafeEntryError{Name: name, Reason: reason + " (Restore refuses it, so it cannot be cached)"}
		}
		hdr := a.header(name, tar.TypeSymlink, fi)
		hdr.Linkname = target
		if err := a.tw.WriteHeader(hdr); err != nil {
			return err
		}
		a.stats.Files++
		return nil
	case mode.IsRegular():
		return a.addFile(name)
	default:
		a.stats.Skipped++
		return nil
	}
}

// check refuses an entry Restore would refuse by its name, or because the
// archive would have too many.
func (a *archiver) check(name string, dir bool) error {
	if _, base := split(name); isGit(base) {
		return &UnsafeEntryError{Name: name, Reason: ".git is never restored: leave it out of the outputs"}
	}
	if a.entries++; a.entries > DefaultMaxEntries {
		return &LimitError{What: LimitEntries, Limit: DefaultMaxEntries}
	}
	n := len(name)
	if dir {
		n++ // the entry's name ends with "/"
	}
	if n > DefaultMaxPathLength {
		return &LimitError{What: LimitPathLength, Entry: name, Limit: DefaultMaxPathLength, Value: int64(n)}
	}
	if d := depth(name); d > DefaultMaxDepth {
		return &LimitError{What: LimitDepth, Entry: name, Limit: DefaultMaxDepth, Value: int64(d)}
	}
	return nil
}

func (a *archiver) addChildren(dir string) error {
	entries, err := os.ReadDir(a.osPath(dir)) // sorted by name
	if err != nil {
		return err
	}
	for _, e := range entries {
		if dir == "." && reserved(e.Name()) {
			continue
		}
		name := path.Join(dir, e.Name())
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing: tar would warn and go on
		}
		if err != nil {
			return err
		}
		if err := a.add(name, fi); err != nil {
			return err
		}
	}
	return nil
}

// addFile archives a regular file. The header is made from the open file,
// so size and contents agree unless the file is written to meanwhile.
func (a *archiver) addFile(name string) error {
	f, err := os.OpenFile(a.osPath(name), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s changed while archiving: no longer a regular file", name)
	}
	hdr := a.header(name, tar.TypeReg, fi)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		id := inode{uint64(st.Dev), uint64(st.Ino)}
		if first, seen := a.links[id]; seen {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			if err := a.tw.WriteHeader(hdr); err != nil {
				return err
			}
			a.stats.Files++
			return nil
		}
		a.links[id] = name
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	var n int64
	for n < hdr.Size {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		m, err := f.Read(a.buf[:min(int64(len(a.buf)), hdr.Size-n)])
		if m > 0 {
			if _, werr := a.tw.Write(a.buf[:m]); werr != nil {
				return werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return fmt.Errorf("%s changed while archiving: shrank from %d to %d bytes", name, hdr.Size, n)
		}
		if err != nil {
			return err
		}
	}
	a.stats.Files++
	a.stats.Bytes += n
	return nil
}

// header builds the entry for fi as GNU tar would, minus owner names.
func (a *archiver) header(name string, typ byte, fi fs.FileInfo) *tar.Header {
	hdr := &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     unixMode(fi.Mode()),
		ModTime:  fi.ModTime().Truncate(time.Second),
	}
	if typ == tar.TypeReg {
		hdr.Size = fi.Size()
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	}
	return hdr
}

// unixMode turns Go's mode bits back into the ones tar stores.
func unixMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
