package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// The extractor keeps the folders on the path to the current entry as a
// stack, one level per component, each with a handle on its folder. Going
// through a handle per folder costs one system call per operation, where
// the staging root would walk every component of the path each time; and
// walking down one component at a time is what lets the extractor see
// each folder is a folder, not a link: it never writes through links.
//
// Archives list a folder's contents after it (ours and GNU tar's do), so
// when the next entry is elsewhere, the extractor leaves the folders it
// no longer needs and gives each its final mode and time then: its
// contents are written, and a read-only folder could not be written into.
// An archive in another order comes back to a folder it left: it is made
// writable again, and gets its mode and time back when left again.
//
// Memory and work are linear in the depth: levels keep their own
// component, not their path, and there is no set of every folder seen:
// either would grow with the square of the depth.

// maxOpenFolders bounds the handles kept open on a deep path; past it only
// every maxOpenFolders-th level keeps its handle, to reopen the others
// from when the extractor climbs back to them.
const maxOpenFolders = 64

// level is one folder on the path to the current entry.
type level struct {
	base  string   // the folder's name in its parent; "" for the root
	r     *os.Root // a handle on it; nil when closed to save descriptors
	mode  fs.FileMode
	mtime time.Time // zero: keep the folder's time
	// top is for restores of the whole root: no folder on the path down to
	// this one, itself included, has an entry of its own.
	top bool
}

// enter makes the stack the path to folder dir ("" for the root), leaving
// the folders not on it and creating missing ones, which get mode 0755
// less the umask. It refuses a path through a symlink.
func (x *extractor) enter(entry, dir string) error {
	keep, rest := 1, dir
	for rest != "" && keep < len(x.stack) {
		comp, after, _ := strings.Cut(rest, "/")
		if x.stack[keep].base != comp {
			break
		}
		keep, rest = keep+1, after
	}
	if err := x.leave(keep); err != nil {
		return err
	}
	for rest != "" {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		if err := x.push(entry, comp, nil); err != nil {
			return err
		}
	}
	return nil
}

// push adds folder comp inside the top of the stack, creating it if
// missing. hdr is the folder's own entry, or nil for a folder the entry
// only needs: then a symlink or file in the way refuses the entry, where
// an entry of its own replaces it.
func (x *extractor) push(entry, comp string, hdr *tar.Header) error {
	parent := &x.stack[len(x.stack)-1]
	pr, err := x.handle(len(x.stack) - 1)
	if err != nil {
		return err
	}
	// A copy: comp shares the memory of the entry's whole name.
	lv := level{base: strings.Clone(comp)}
	name := func() string { return joinName(x.path(len(x.stack)-1), comp) }
	err = pr.Mkdir(comp, 0o700) // writable until left
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		var fi fs.FileInfo
		fi, err = pr.Lstat(comp)
		switch {
		case err != nil:
		case fi.IsDir():
			lv.mode, lv.mtime = fi.Mode().Perm(), fi.ModTime()
			if lv.mode&0o700 != 0o700 {
				err = pr.Chmod(comp, lv.mode|0o700)
			}
		case hdr != nil:
			if err = x.clear(pr, name(), comp); err == nil {
				err = pr.Mkdir(comp, 0o700)
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			return &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf("path goes through symlink %q", name())}
		default:
			err = fmt.Errorf("%s is not a folder", name())
		}
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", entry, err)
	}
	switch {
	case hdr != nil:
		lv.mode, lv.mtime = x.perm(hdr.Mode), hdr.ModTime
	case created:
		lv.mode = 0o755 &^ x.umask
	}
	if x.implied != nil {
		if err := x.track(&lv, name(), parent.top, hdr != nil, created); err != nil {
			return err
		}
	}
	if lv.r, err = pr.OpenRoot(comp); err != nil {
		return fmt.Errorf("extract %s: %w", entry, err)
	}
	x.stack = append(x.stack, lv)
	if n := len(x.stack) - 1 - maxOpenFolders; n > 0 && n%maxOpenFolders != 0 && x.stack[n].r != nil {
		x.stack[n].r.Close()
		x.stack[n].r = nil
	}
	return nil
}

// track keeps, for a restore of the whole root, the set of folders no
// entry names on the path down from the root: Restore merges them into
// the root's folders rather than replace those.
func (x *extractor) track(lv *level, name string, parentTop, named, created bool) error {
	switch {
	case named:
		delete(x.implied, name)
	case created && parentTop:
		if len(x.implied) >= maxImplied {
			return &LimitError{What: LimitImplied, Limit: maxImplied}
		}
		x.implied[name] = true
		lv.top = true
	case !created:
		lv.top = parentTop && x.implied[name]
	}
	return nil
}

// path returns the name of level i in the staging root.
func (x *extractor) path(i int) string {
	var b strings.Builder
	for _, lv := range x.stack[1 : i+1] {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(lv.base)
	}
	return b.String()
}

// handle returns the handle on level i, reopening it and the levels below
// it from the nearest one still open.
func (x *extractor) handle(i int) (*os.Root, error) {
	j := i
	for x.stack[j].r == nil {
		j--
	}
	for j < i {
		j++
		r, err := x.stack[j-1].r.OpenRoot(x.stack[j].base)
		if err != nil {
			return nil, fmt.Errorf("extract %s: %w", x.path(j), err)
		}
		x.stack[j].r = r
	}
	return x.stack[i].r, nil
}

// leave pops the stack down to keep levels, giving each folder left its
// mode and time.
func (x *extractor) leave(keep int) error {
	for len(x.stack) > keep {
		i := len(x.stack) - 1
		lv := x.stack[i]
		if lv.r != nil {
			lv.r.Close()
		}
		pr, err := x.handle(i - 1)
		if err == nil {
			err = pr.Chmod(lv.base, lv.mode)
		}
		if err == nil && !lv.mtime.IsZero() {
			err = pr.Chtimes(lv.base, time.Time{}, lv.mtime)
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", x.path(i), err)
		}
		x.stack[i] = level{} // let the handle go
		x.stack = x.stack[:i]
	}
	return nil
}

// closeFolders closes the handles on the stack but the root's, after an
// error: the staging folder is about to be removed.
func (x *extractor) closeFolders() {
	for i, lv := range x.stack[1:] {
		if lv.r != nil {
			lv.r.Close()
		}
		x.stack[i+1] = level{}
	}
	x.stack = x.stack[:1]
}

// top returns the handle on the folder at the top of the stack.
func (x *extractor) top() (*os.Root, error) {
	return x.handle(len(x.stack) - 1)
}

// clear removes what is at base in folder r (name in the staging root) so
// that a new entry can take its place.
func (x *extractor) clear(r *os.Root, name, base string) error {
	fi, err := r.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		if fi.IsDir() {
			err = removeAll(r, base)
		} else {
			err = r.Remove(base)
		}
	}
	if err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	return nil
}

func joinName(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + "/" + base
}

// lookup finds name in the staging root, going down one folder at a time
// and refusing a path through a symlink, as entries are written.
func (x *extractor) lookup(entry, name string) (fs.FileInfo, error) {
	r := x.root
	defer func() {
		if r != x.root {
			r.Close()
		}
	}()
	dir, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, base = name[:i], name[i+1:]
	}
	for rest := dir; rest != ""; {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		fi, err := r.Lstat(comp)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			sofar := strings.TrimSuffix(dir[:len(dir)-len(rest)], "/")
			return nil, &UnsafeEntryError{Name: entry, Reason: fmt.Sprintf("path goes through symlink %q", sofar)}
		}
		next, err := r.OpenRoot(comp)
		if err != nil {
			return nil, err
		}
		if r != x.root {
			r.Close()
		}
		r = next
	}
	return r.Lstat(base)
}
