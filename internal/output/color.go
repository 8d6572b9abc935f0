package output

import (
	"hash/fnv"
	"os"
)

// Colour is for people at a terminal: a toplevel's stream gets it only
// when the job's settings say so (config.Settings.Colored), so that a file
// or a pipe gets the same bytes as the old tool wrote. The log file never
// gets any.

// palette holds the task colours: readable on dark and light backgrounds,
// and neither yellow nor red, which warn and error lines have.
var palette = []string{
	"\x1b[36m", // cyan
	"\x1b[32m", // green
	"\x1b[35m", // magenta
	"\x1b[94m", // bright blue
	"\x1b[96m", // bright cyan
	"\x1b[92m", // bright green
	"\x1b[95m", // bright magenta
}

const (
	reset  = "\x1b[0m"
	yellow = "\x1b[33m"
	red    = "\x1b[31m"
)

// jobColor is the colour of a job's prefix: the same for a name in every
// build and every process, so that a task is recognised by it.
func jobColor(job string) string {
	h := fnv.New32a()
	h.Write([]byte(job))
	return palette[h.Sum32()%uint32(len(palette))]
}

// streamColor is the colour of a stream's name: warn and error stand out.
func streamColor(s Stream) string {
	switch s {
	case Warn:
		return yellow
	case Error:
		return red
	}
	return ""
}

// IsTerminal reports whether f is a terminal. (f.Fd would put f in
// blocking mode.)
func IsTerminal(f *os.File) bool {
	c, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	if err := c.Control(func(fd uintptr) { tty = isTerminal(int(fd)) }); err != nil {
		return false
	}
	return tty
}
