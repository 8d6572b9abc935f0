package archive

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Limits bounds what Restore accepts. The zero value of each field means
// its default.
type Limits struct {
	// MaxEntries is the most entries an archive may hold, of any type;
	// default 1,000,000.
	MaxEntries int
	// MaxPathLength is the longest entry name or link target, in bytes;
	// default 4096, Linux's PATH_MAX.
	MaxPathLength int
	// MaxDepth is the most components an entry name may have; default 256.
	MaxDepth int
	// MinFree is the free space, in bytes, a restore leaves on the cache
	// root's file system: it stops before writing a file that would leave
	// less. 0 means the smaller of 1 GiB and 5% of the file system; a
	// negative value turns the check off.
	MinFree int64

	// statFS replaces statFS in tests.
	statFS func(path string) (avail, total uint64, err error)
}

// The default Limits.
const (
	DefaultMaxEntries    = 1_000_000
	DefaultMaxPathLength = 4096
	DefaultMaxDepth      = 256
)

// spaceCheckEvery is how much of a file Restore writes between two checks
// of the free space: other processes fill the disk too.
const spaceCheckEvery = 64 << 20

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxPathLength <= 0 {
		l.MaxPathLength = DefaultMaxPathLength
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.statFS == nil {
		l.statFS = statFS
	}
	return l
}

// minFree is the free space to leave on a file system of total bytes.
func (l Limits) minFree(total uint64) uint64 {
	if l.MinFree > 0 {
		return uint64(l.MinFree)
	}
	return min(1<<30, total/20)
}

func statFS(path string) (avail, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// What a LimitError is about.
const (
	LimitEntries    = "entries"
	LimitPathLength = "path length"
	LimitDepth      = "depth"
	LimitFreeSpace  = "free space"
	// LimitImplied is about archives restored over the whole cache root
	// (output "."): the folders they imply without an entry of their own
	// are merged into the root, and Restore keeps their names meanwhile.
	LimitImplied = "implied folders"
)

// maxImplied bounds the folders a restore of the whole root merges into;
// see LimitImplied.
const maxImplied = 10_000

// LimitError reports an archive Restore refused because it goes past one
// of the Limits, or would leave too little free space. Its message is one
// line that says which.
type LimitError struct {
	What  string // LimitEntries, LimitPathLength, LimitDepth, LimitFreeSpace or LimitImplied
	Entry string // the entry that went past the limit, for path length and depth
	Limit int64  // the limit: a count, bytes, or components
	Value int64  // the entry's length or depth
	Link  bool   // for path length: the entry's link target is too long, not its name
	Path  string // the file system that would fill up, for free space
}

func (e *LimitError) Error() string {
	switch e.What {
	case LimitEntries:
		return fmt.Sprintf("archive has more than %d entries", e.Limit)
	case LimitPathLength:
		if e.Link {
			return fmt.Sprintf("entry %q links to a %d-byte path (at most %d)", shorten(e.Entry), e.Value, e.Limit)
		}
		return fmt.Sprintf("entry %q has a %d-byte name (at most %d)", shorten(e.Entry), e.Value, e.Limit)
	case LimitDepth:
		return fmt.Sprintf("entry %q has %d path components (at most %d)", shorten(e.Entry), e.Value, e.Limit)
	case LimitFreeSpace:
		return fmt.Sprintf("restoring would leave less than %s free on %s", size(e.Limit), e.Path)
	case LimitImplied:
		return fmt.Sprintf("archive implies more than %d folders without entries of their own", e.Limit)
	}
	return fmt.Sprintf("archive goes past the limit on %s (%d)", e.What, e.Limit)
}

// shorten cuts a long name for a message.
func shorten(name string) string {
	const keep = 40
	if len(name) <= keep {
		return name
	}
	cut := keep
	for cut > 0 && name[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return name[:cut] + "…"
}

// size formats a byte count for a message: 1.0 GiB, 512.0 MiB.
func size(n int64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// umask returns the process's file mode creation mask. Reading it with
// syscall.Umask means setting it, which races with every other goroutine
// creating files; Linux shows it in /proc/self/status instead. Elsewhere,
// or on old kernels, the usual 022.
func umask() fs.FileMode {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0o022
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return fs.FileMode(m) & fs.ModePerm
			}
		}
	}
	return 0o022
}
