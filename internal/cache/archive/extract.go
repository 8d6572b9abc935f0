package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Extract reads a zstd-compressed tar archive from r and extracts it under
// root, creating root if missing, and returns what it extracted.
//
// Existing files, links and folders in the way are replaced: a restore
// replaces outputs. Folders already there are kept and merged into.
// Permission bits (not setuid, setgid or sticky) and modification times are
// restored for files and folders; symlinks keep the time of their
// extraction; owners are not restored. Folders missing above an entry are
// created with mode 0755 (less the umask). Devices and named pipes are
// skipped and counted in Stats.Skipped, as Write never makes them.
//
// Nothing is ever written outside root. Every access goes through an
// os.Root, which refuses any path leaving root's tree, even through links
// changed while Extract runs; and Extract refuses,
// with an *UnsafeEntryError, an entry that is absolute, has a ".."
// component, has a symlink among its parent folders (even one inside root:
// restores never write through links), is a symlink that is absolute or
// could resolve outside root (see checkSymlinkTarget), or is a hard link to
// anything but a regular file inside root.
//
// A stream that cannot be decoded, fails its checksum or ends early gives an
// error wrapping ErrCorrupt; a failure of r itself is returned wrapped as
// is. On any error, including a cancelled ctx, Extract stops where it is:
// entries already extracted stay under root, possibly with the last file
// cut short. The caller should then treat the bundle as a miss and let the
// task run, which rewrites its outputs.
func Extract(ctx context.Context, r io.Reader, root string) (Stats, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Stats{}, fmt.Errorf("create cache root: %w", err)
	}
	rt, err := os.OpenRoot(root)
	if err != nil {
		return Stats{}, fmt.Errorf("open cache root: %w", err)
	}
	defer rt.Close()
	cr := &countReader{r: r}
	dec, err := newDecoder(cr)
	if err != nil {
		return Stats{}, fmt.Errorf("start zstd decoder: %w", err)
	}
	defer dec.Close()
	x := &extractor{
		ctx:      ctx,
		root:     rt,
		src:      cr,
		buf:      make([]byte, copyBufSize),
		realDirs: map[string]bool{"": true},
		dirs:     make(map[string]dirMeta),
		open:     make(map[string]*os.Root),
	}
	defer x.closeFolders()
	x.tail = &tailReader{r: dec}
	err = x.run(tar.NewReader(x.tail), dec)
	x.stats.Compressed = cr.n.Load()
	return x.stats, err
}

type extractor struct {
	ctx   context.Context
	root  *os.Root
	src   *countReader
	buf   []byte
	stats Stats
	// realDirs holds folders known to be folders, not links, so that each
	// entry does not Lstat all its parents again.
	realDirs map[string]bool
	// dirs holds the mode and time of each folder entry, set at the end
	// because writing inside a folder changes its time and a read-only
	// folder could not be written into.
	dirs map[string]dirMeta
	// open holds handles on recently used folders; see at.
	open map[string]*os.Root
	// tail watches the tar stream for its end; entryEnd is where the last
	// entry's data ends in it, or -1 if unknown.
	tail     *tailReader
	entryEnd int64
}

func (x *extractor) run(tr *tar.Reader, dec io.Reader) error {
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.readErr(err)
		}
		x.entryEnd = -1
		if size, ok := dataSize(hdr); ok {
			x.entryEnd = x.tail.n + size
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	if !x.tail.endOfArchive(x.entryEnd) {
		return fmt.Errorf("%w: stream ends without the end-of-archive blocks", ErrCorrupt)
	}
	// Read to the end of the zstd stream: GNU tar pads archives past the
	// end-of-archive blocks, and the end of each frame carries the checksum
	// that tells a damaged archive from a good one.
	if _, err := io.CopyBuffer(io.Discard, onlyReader{dec}, x.buf); err != nil {
		return x.readErr(err)
	}
	return x.finishDirs()
}

// onlyReader hides other methods, so io.CopyBuffer uses the buffer given.
type onlyReader struct{ io.Reader }

// readErr classifies an error from reading the archive.
func (x *extractor) readErr(err error) error {
	if src := x.src.sourceErr(); src != nil && errors.Is(err, src) {
		return fmt.Errorf("read cache archive: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

func (x *extractor) entry(hdr *tar.Header, tr *tar.Reader) error {
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		if hdr.Typeflag == tar.TypeDir {
			return nil // "./": the root, which the caller owns
		}
		return &UnsafeEntryError{Name: hdr.Name, Reason: "names the root itself"}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, hdr)
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse:
		return x.file(name, hdr, tr)
	case tar.TypeSymlink:
		return x.symlink(name, hdr)
	case tar.TypeLink:
		return x.hardlink(name, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		x.stats.Skipped++
		return nil
	case tar.TypeXGlobalHeader, 'V': // PAX global header, GNU volume label
		return nil
	default:
		return fmt.Errorf("%w: entry %q has unsupported type %q", ErrCorrupt, hdr.Name, hdr.Typeflag)
	}
}

// dataSize is how many bytes of data follow hdr in the tar stream, padding
// included; false when unknown, for sparse files.
func dataSize(hdr *tar.Header) (int64, bool) {
	switch hdr.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return 0, true
	case tar.TypeGNUSparse:
		return 0, false
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return 0, false
		}
	}
	return (hdr.Size + 511) &^ 511, true
}

// tailReader counts the bytes of the tar stream read and keeps the last
// 1024 of them. archive/tar reports io.EOF both after the two zero blocks
// that end an archive and when the stream just stops between entries; a
// zstd stream cut between two frames is still valid, so only this tells
// such a truncated archive from a whole one.
type tailReader struct {
	r    io.Reader
	n    int64
	last [1024]byte
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	if n >= len(t.last) {
		copy(t.last[:], p[n-len(t.last):n])
	} else {
		copy(t.last[:], t.last[n:])
		copy(t.last[len(t.last)-n:], p[:n])
	}
	return n, err
}

// endOfArchive reports whether the stream read so far ends with the two zero
// blocks right after the last entry, which ended at entryEnd (negative when
// unknown: then the zero blocks alone decide).
func (t *tailReader) endOfArchive(entryEnd int64) bool {
	if t.n < int64(len(t.last)) || t.last != [1024]byte{} {
		return false
	}
	return entryEnd < 0 || t.n == entryEnd+int64(len(t.last))
}
