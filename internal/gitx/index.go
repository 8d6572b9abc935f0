package gitx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// indexEntry is one stage-0 entry of the index, with the stat data git
// compares to tell whether the file changed since it was added.
type indexEntry struct {
	path  string
	sha   [20]byte
	mode  uint32
	ctime [2]uint32 // seconds, nanoseconds
	mtime [2]uint32
	dev   uint32
	ino   uint32
	uid   uint32
	gid   uint32
	size  uint32
}

// gitIndex is what readIndex understood of an index file.
type gitIndex struct {
	entries []indexEntry // sorted by path, as git keeps them
	mtime   time.Time    // the index file's own mtime
	// attributes is set when an entry is a .gitattributes file.
	attributes bool
}

// errUnsure is an index, a configuration or a tree that the in-process hash
// does not handle with certainty; its text says why, and git is asked.
type errUnsure struct{ why string }

func (e *errUnsure) Error() string { return e.why }

func unsure(format string, args ...any) error {
	return &errUnsure{why: fmt.Sprintf(format, args...)}
}

// Index entry flags (see git's Documentation/gitformat-index.txt).
const (
	flagAssumeValid  = 0x8000
	flagExtended     = 0x4000
	flagStage        = 0x3000
	flagNameMask     = 0x0fff
	flagSkipWorktree = 0x4000 // in the extended flags
	flagIntentToAdd  = 0x2000 // in the extended flags
)

// readIndex reads a version 2, 3 or 4 index of a SHA-1 repository. A missing
// file is an empty index, as for git. Anything that could make git see
// entries differently from a plain reading (a split or sparse index,
// fsmonitor data, entries with assume-unchanged, skip-worktree or
// intent-to-add, conflicts, unknown required extensions) is an *errUnsure.
func readIndex(name string) (*gitIndex, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &gitIndex{}, nil
	}
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	idx := &gitIndex{mtime: fi.ModTime()}
	const hashLen = 20
	if len(b) < 12+hashLen || string(b[:4]) != "DIRC" {
		return nil, unsure("index is not a version 2-4 index")
	}
	version := binary.BigEndian.Uint32(b[4:8])
	if version < 2 || version > 4 {
		return nil, unsure("index version %d", version)
	}
	n := int(binary.BigEndian.Uint32(b[8:12]))
	body := b[:len(b)-hashLen]
	// One string for the whole index: names below are slices of it, not
	// one allocation each (a large repository has 100,000 entries).
	text := string(body)
	off := 12
	prev := ""
	idx.entries = make([]indexEntry, 0, n)
	for range n {
		start := off
		if off+62 > len(body) {
			return nil, unsure("index truncated")
		}
		u := func(i int) uint32 { return binary.BigEndian.Uint32(body[start+4*i:]) }
		e := indexEntry{
			ctime: [2]uint32{u(0), u(1)},
			mtime: [2]uint32{u(2), u(3)},
			dev:   u(4), ino: u(5), mode: u(6), uid: u(7), gid: u(8), size: u(9),
		}
		copy(e.sha[:], body[start+40:start+60])
		flags := binary.BigEndian.Uint16(body[start+60:])
		off = start + 62
		if flags&flagExtended != 0 {
			if version < 3 || off+2 > len(body) {
				return nil, unsure("index entry with extended flags in version %d", version)
			}
			ext := binary.BigEndian.Uint16(body[off:])
			off += 2
			if ext&(flagSkipWorktree|flagIntentToAdd) != 0 {
				return nil, unsure("index has skip-worktree or intent-to-add entries")
			}
			if ext&^uint16(flagSkipWorktree|flagIntentToAdd) != 0 {
				return nil, unsure("index entry with unknown extended flags")
			}
		}
		if flags&flagAssumeValid != 0 {
			return nil, unsure("index has assume-unchanged entries")
		}
		if flags&flagStage != 0 {
			return nil, unsure("index has unresolved conflicts")
		}
		if version == 4 {
			strip, w := varint(body[off:])
			if w == 0 || int(strip) > len(prev) {
				return nil, unsure("index entry name is corrupt")
			}
			off += w
			end := indexByte(body, off)
			if end < 0 {
				return nil, unsure("index truncated")
			}
			e.path = prev[:len(prev)-int(strip)] + string(body[off:end])
			off = end + 1
		} else {
			end := indexByte(body, off)
			if end < 0 {
				return nil, unsure("index truncated")
			}
			if l := int(flags & flagNameMask); l < flagNameMask && l != end-off {
				return nil, unsure("index entry name is corrupt")
			}
			e.path = text[off:end]
			// Entries are padded with 1 to 8 NULs to a multiple of 8.
			off = start + (end-start+8)&^7
			if off > len(body) {
				return nil, unsure("index truncated")
			}
		}
		switch e.mode {
		case 0o100644, 0o100755, 0o120000, 0o160000:
		default:
			return nil, unsure("index entry of mode %o", e.mode)
		}
		if e.path <= prev && prev != "" {
			return nil, unsure("index entries out of order")
		}
		prev = e.path
		if e.path == ".gitattributes" || strings.HasSuffix(e.path, "/.gitattributes") {
			idx.attributes = true
		}
		idx.entries = append(idx.entries, e)
	}
	for off < len(body) {
		if off+8 > len(body) {
			return nil, unsure("index extension truncated")
		}
		sig := string(body[off : off+4])
		size := int(binary.BigEndian.Uint32(body[off+4:]))
		off += 8 + size
		if off > len(body) || size < 0 {
			return nil, unsure("index extension truncated")
		}
		switch sig {
		case "TREE", "REUC", "UNTR", "EOIE", "IEOT":
			// Caches and records that do not change what the entries are.
		case "link":
			return nil, unsure("split index")
		case "sdir":
			return nil, unsure("sparse index")
		case "FSMN":
			return nil, unsure("index has fsmonitor data")
		default:
			return nil, unsure("index extension %q", sig)
		}
	}
	return idx, nil
}

func indexByte(b []byte, from int) int {
	if i := bytes.IndexByte(b[from:], 0); i >= 0 {
		return from + i
	}
	return -1
}

// varint decodes git's offset varint (varint.c), returning the value and
// the bytes read, 0 on error.
func varint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	c := b[0]
	val := uint64(c & 127)
	i := 1
	for c&128 != 0 {
		if i >= len(b) || val >= 1<<56 {
			return 0, 0
		}
		val++
		c = b[i]
		i++
		val = val<<7 + uint64(c&127)
	}
	return val, i
}
