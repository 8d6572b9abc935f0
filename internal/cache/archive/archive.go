// Package archive writes and restores the remote cache's bundles: tar
// archives of a task's outputs, compressed with zstd (.tar.zst).
//
// The format is plain tar (USTAR, with PAX records only where USTAR cannot
// hold a name or size) compressed as a sequence of zstd frames, so GNU tar
// and the zstd command read our archives and we read theirs. Both
// directions stream: nothing holds the whole archive, and memory use does
// not grow with the archive's size (about 50 MiB to write with two cores,
// 15 MiB to restore).
//
// An archive to restore may come from anyone who can write to the cache,
// so Restore trusts nothing in it: it only ever creates the task's
// declared outputs, stages the archive whole before anything moves into
// place, and bounds what the archive can cost (see Restore and Limits).
// Write refuses to make an archive Restore would refuse.
package archive

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// Stats counts what Write put in an archive or what Restore took out of one.
type Stats struct {
	// Files counts regular files, symbolic links and hard links.
	Files int
	// Dirs counts directories.
	Dirs int
	// Skipped counts entries left out: sockets, devices and named pipes.
	Skipped int
	// Bytes is the size of the regular files' contents, uncompressed.
	Bytes int64
	// Compressed is the number of bytes of the .tar.zst stream written to or
	// read from the caller's writer or reader.
	Compressed int64
}

// ErrCorrupt is wrapped by the errors Restore returns when the archive
// cannot be decoded: bad zstd data, a checksum mismatch, a truncated stream,
// a malformed tar header, or far more data after the end of the tar stream
// than tar pads it with. The caller should treat the bundle as a cache miss.
var ErrCorrupt = errors.New("corrupt cache archive")

// UnsafeEntryError reports an archive entry that Restore refused because
// it falls outside the task's outputs, or could make something land
// outside them later (see Restore for the list), or an output Write
// refused because Restore would. Restore stops at the first such entry and
// leaves the outputs as they were. Treat it as a cache miss, and name the
// entry in the warning.
type UnsafeEntryError struct {
	Name   string // the entry's name as stored in the archive
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("unsafe cache archive entry %q: %s", e.Name, e.Reason)
}

// maxWindow is the largest zstd window Restore accepts; it bounds the
// decoder's memory. 128 MiB is also the zstd command's own default limit
// when decompressing, so any archive `zstd -d` reads without --memory is
// accepted, including ones made with --long.
const maxWindow = 128 << 20

// copyBufSize is the size of the buffer file contents move through.
const copyBufSize = 1 << 20

func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r,
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
	)
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// countReader counts the bytes read through it and remembers the reader's
// own failure, so Restore can tell a broken connection from a corrupt
// archive. The decoder may read from its own goroutine, hence the atomics.
type countReader struct {
	r   io.Reader
	n   atomic.Int64
	err atomic.Pointer[error]
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if err != nil && err != io.EOF {
		c.err.Store(&err)
	}
	return n, err
}

// sourceErr returns the error the underlying reader failed with, if any.
func (c *countReader) sourceErr() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}
