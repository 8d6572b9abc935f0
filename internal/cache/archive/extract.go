package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// extractor reads an archive into a staging folder, refusing it at the
// first entry Restore does not allow.
type extractor struct {
	ctx     context.Context
	root    *os.Root // the staging folder the outputs are extracted into
	outputs outputSet
	limits  Limits
	umask   fs.FileMode
	// space is where free space is checked, and rootPath the name it goes
	// by in messages.
	space, rootPath string
	src             *countReader
	buf             []byte
	stats           Stats
	entries         int
	// stack is the path to the current entry; see enter.
	stack []level
	// implied, for restores of the whole root, holds the folders no entry
	// names on the path down from the root; see track.
	implied map[string]bool
	// tail watches the tar stream for its end; entryEnd is where the last
	// entry's data ends in it.
	tail     *tailReader
	entryEnd int64
}

// extract reads the archive from r into x.root. On success every folder
// has its final mode and time.
func (x *extractor) extract(r io.Reader) error {
	x.src = &countReader{r: r}
	defer func() { x.stats.Compressed = x.src.n.Load() }()
	dec, err := newDecoder(x.src)
	if err != nil {
		return fmt.Errorf("start zstd decoder: %w", err)
	}
	defer dec.Close()
	x.buf = make([]byte, copyBufSize)
	x.stack = []level{{r: x.root, top: true}}
	if x.outputs.whole() {
		x.implied = make(map[string]bool)
	}
	x.tail = &tailReader{r: dec}
	if err := x.run(tar.NewReader(x.tail), dec); err != nil {
		x.closeFolders()
		return err
	}
	return nil
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
		if x.entries++; x.entries > x.limits.MaxEntries {
			return &LimitError{What: LimitEntries, Limit: int64(x.limits.MaxEntries)}
		}
		x.entryEnd = x.tail.n + dataSize(hdr)
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	if !x.tail.endOfArchive(x.entryEnd) {
		return fmt.Errorf("%w: stream ends without the end-of-archive blocks", ErrCorrupt)
	}
	// Read to the end of the zstd stream: GNU tar pads archives past the
	// end-of-archive blocks, and the end of each frame carries the checksum
	// that tells a damaged archive from a good one. Padding is a few KiB;
	// a few bytes of zstd could make it gigabytes.
	for n := 0; ; {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		m, err := dec.Read(x.buf)
		if n += m; n > maxPadding {
			return fmt.Errorf("%w: more than %d bytes after the end-of-archive blocks", ErrCorrupt, maxPadding)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.readErr(err)
		}
	}
	return x.leave(1)
}

// maxPadding is how much data may follow the end-of-archive blocks: GNU
// tar pads to its record size, 10 KiB unless told otherwise.
const maxPadding = 16 << 20

// readErr classifies an error from reading the archive.
func (x *extractor) readErr(err error) error {
	if src := x.src.sourceErr(); src != nil && errors.Is(err, src) {
		return fmt.Errorf("read cache archive: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// entry checks one entry against the limits and the outputs, and
// extracts it.
func (x *extractor) entry(hdr *tar.Header, tr *tar.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, 'V': // PAX global header, GNU volume label
		return nil
	}
	if n := len(hdr.Name); n > x.limits.MaxPathLength {
		return &LimitError{What: LimitPathLength, Entry: hdr.Name, Limit: int64(x.limits.MaxPathLength), Value: int64(n)}
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	if d := depth(name); d > x.limits.MaxDepth {
		return &LimitError{What: LimitDepth, Entry: hdr.Name, Limit: int64(x.limits.MaxDepth), Value: int64(d)}
	}
	if sparse(hdr) {
		return &UnsafeEntryError{Name: hdr.Name, Reason: "sparse file: its holes would be written out as zeros"}
	}
	switch {
	case name == "" && hdr.Typeflag == tar.TypeDir:
		return nil // "./": the root, which the caller owns
	case name == "":
		return &UnsafeEntryError{Name: hdr.Name, Reason: "names the cache root itself"}
	case hasGit(name):
		return &UnsafeEntryError{Name: hdr.Name, Reason: ".git is never restored"}
	case reserved(name):
		return &UnsafeEntryError{Name: hdr.Name, Reason: "name of a restore's staging folder"}
	case !x.outputs.contains(name):
		if hdr.Typeflag == tar.TypeDir && x.outputs.above(name) {
			return nil // a folder above an output: the cache root's own
		}
		return &UnsafeEntryError{Name: hdr.Name, Reason: "outside the task's outputs"}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, hdr)
	case tar.TypeReg, tar.TypeCont, '\x00':
		return x.file(name, hdr, tr)
	case tar.TypeSymlink:
		return x.symlink(name, hdr)
	case tar.TypeLink:
		return x.hardlink(name, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		x.stats.Skipped++
		return nil
	default:
		return fmt.Errorf("%w: entry %q has unsupported type %q", ErrCorrupt, hdr.Name, hdr.Typeflag)
	}
}

// sparse reports whether hdr is a sparse file, in GNU's old format or a
// PAX one. archive/tar would read its holes as zeros: a few bytes of
// archive could fill the disk.
func sparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// dataSize is how many bytes of data follow hdr in the tar stream, padding
// included.
func dataSize(hdr *tar.Header) int64 {
	switch hdr.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return 0
	}
	return (hdr.Size + 511) &^ 511
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

// endOfArchive reports whether the stream read so far ends with the two
// zero blocks right after the last entry, which ended at entryEnd.
func (t *tailReader) endOfArchive(entryEnd int64) bool {
	if t.n < int64(len(t.last)) || t.last != [1024]byte{} {
		return false
	}
	return t.n == entryEnd+int64(len(t.last))
}
