package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// RestoreOptions tunes Restore.
type RestoreOptions struct {
	// Verify, when set, is called once the whole archive has been read,
	// checked and staged, before anything moves into place; an error from
	// it refuses the archive, and Restore returns it wrapped.
	Verify func() error
	// Limits bounds the archive; the zero value means the defaults.
	Limits Limits
}

// Restore reads a zstd-compressed tar archive from r and puts the task
// outputs it holds in place under root, the cache root, creating root if
// missing. It returns what it extracted.
//
// outputs are the task's declared outputs, relative to root (slash- or
// OS-separated); "." is the whole root. The archive may only hold entries
// inside them: an output itself or anything below one. It may also hold
// folder entries for the folders above an output and for the root ("./"),
// which are ignored. Any other entry refuses the whole archive with an
// *UnsafeEntryError, as does: ".git" as a component of a name, an
// absolute name or one with "..", a sparse file, a symlink whose target
// is absolute, has ".." after a name, or does not lead inside the outputs
// (resolved lexically from the link's folder) or leads into .git, a hard
// link to anything but a regular file the archive made before inside the
// outputs, and a path through a symlink. Devices, named pipes and sockets
// inside the outputs are skipped and counted in Stats.Skipped, as Write
// never makes them. An archive past one of opt.Limits, or that would
// leave too little free space, is refused with a *LimitError.
//
// The archive is first extracted into a fresh staging folder in root,
// named ".taskrunner-restore-<pid>-<random>" and holding a .gitignore
// that ignores it all, so that git never sees what is staged. Only once
// the whole archive is read and checked, and opt.Verify passed, is each
// output found in it moved into place: what was there moves into the
// staging folder, then the staged output takes its place. Whole outputs
// are replaced, never merged into. An output the archive lacks is left
// alone. The folders above an output are created as needed with mode
// 0755 less the umask, never through a symlink: an output below a
// symlink in root fails the restore. If a move fails, the ones before it
// are undone. The staging folder, with the old outputs, is removed before
// Restore returns, whatever happened; and the first restore into root in
// a process removes the staging folders that processes no longer running
// (killed mid-restore) left there.
// For the output ".", each entry at the top of the archive replaces
// what is at its name, and a folder the archive only implies (it holds
// entries but has none of its own) is merged into the existing one, as
// the folders above an output would be.
//
// So a refused, corrupt, truncated or cancelled archive, or one Verify
// rejects, leaves the outputs as they were; only a failure to undo a
// failed move could leave them otherwise, and the error says so. Nothing
// is ever written outside root, nor in it but to the outputs, the folders
// above them and the staging folder: every access goes through an
// os.Root, and no write goes through a link.
//
// Files and folders get the archived permission bits less the umask,
// never setuid, setgid or sticky; folders get theirs once their contents
// are written. Modification times are restored for files and folders;
// symlinks keep the time of their extraction; owners are not restored.
//
// A stream that cannot be decoded, fails its checksum or ends early gives
// an error wrapping ErrCorrupt; a failure of r itself is returned wrapped
// as is, and so is ctx's error when it is cancelled.
func Restore(ctx context.Context, r io.Reader, root string, outputs []string, opt RestoreOptions) (stats Stats, err error) {
	outs, err := outputNames(outputs)
	if err != nil {
		return Stats{}, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Stats{}, fmt.Errorf("create cache root: %w", err)
	}
	rt, err := os.OpenRoot(root)
	if err != nil {
		return Stats{}, fmt.Errorf("open cache root: %w", err)
	}
	defer rt.Close()
	for _, o := range outs {
		if _, err := parents(rt, o, false); err != nil {
			return Stats{}, err
		}
	}
	if _, swept := sweptRoots.LoadOrStore(root, true); !swept {
		removeStale(rt)
	}
	st, err := newStaging(rt)
	if err != nil {
		return Stats{}, err
	}
	defer func() {
		if rerr := st.remove(); rerr != nil && err == nil {
			err = fmt.Errorf("remove staging folder: %w", rerr)
		}
	}()
	x := &extractor{
		ctx:      ctx,
		root:     st.new,
		outputs:  outs,
		limits:   opt.Limits.withDefaults(),
		umask:    umask(),
		space:    filepath.Join(root, st.name),
		rootPath: root,
	}
	err = x.extract(r)
	if err != nil {
		return x.stats, err
	}
	if opt.Verify != nil {
		if err := opt.Verify(); err != nil {
			return x.stats, fmt.Errorf("verify cache archive: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return x.stats, err
	}
	in := &installer{rt: rt, staging: st, outputs: outs, implied: x.implied}
	return x.stats, in.install()
}

// staging is a restore's staging folder: the archive's outputs go into
// its "new" folder, the outputs they replace into "old".
type staging struct {
	rt   *os.Root // the cache root
	name string   // the staging folder's name in it
	new  *os.Root // its "new" folder
}

func newStaging(rt *os.Root) (*staging, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	st := &staging{rt: rt, name: stagingPrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:])}
	if err := rt.Mkdir(st.name, 0o700); err != nil {
		return nil, fmt.Errorf("create staging folder: %w", err)
	}
	// First, so that a git command never sees the rest.
	err := rt.WriteFile(st.name+"/.gitignore", []byte("*\n"), 0o644)
	if err == nil {
		err = rt.Mkdir(st.name+"/new", 0o700)
	}
	if err == nil {
		err = rt.Mkdir(st.name+"/old", 0o700)
	}
	if err == nil {
		st.new, err = rt.OpenRoot(st.name + "/new")
	}
	if err != nil {
		st.remove()
		return nil, fmt.Errorf("create staging folder: %w", err)
	}
	return st, nil
}

// path returns the name in the cache root of name in folder "new" or
// "old".
func (st *staging) path(folder, name string) string {
	return st.name + "/" + folder + "/" + name
}

func (st *staging) remove() error {
	if st.new != nil {
		st.new.Close()
	}
	return removeAll(st.rt, st.name)
}

// sweptRoots holds the cache roots removeStale has swept in this process:
// a staging folder left by a killed process is there before this one
// starts, so one sweep per root is enough, and a build that restores many
// tasks does not list the root once per task.
var sweptRoots sync.Map

// removeStale removes the staging folders in the cache root whose process
// is gone, left by a restore that was killed. It is best effort: a folder
// that cannot be removed now will be next time.
func removeStale(rt *os.Root) {
	f, err := rt.Open(".")
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, stagingPrefix)
		pid, _, _ := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if ok && err == nil && n > 0 && !running(n) {
			removeAll(rt, name)
		}
	}
}

// running reports whether process pid exists.
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// removeAll removes name in r and all it holds, making read-only folders
// writable first: a restored output can have some.
func removeAll(r *os.Root, name string) error {
	if err := r.RemoveAll(name); err == nil {
		return nil
	}
	fs.WalkDir(r.FS(), name, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			r.Chmod(p, 0o700) // before the walk reads it
		}
		return nil
	})
	return r.RemoveAll(name)
}
