package cli

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxNameBytes is the longest task name, in bytes. The name becomes file
// names in the state directory with a few bytes added (".lock", ".hash",
// and a temporary ".<name>.hash.tmp<digits>" while the hash is written), and
// a file name holds at most 255 bytes: a longer name would fail only after
// the task's command had run.
const maxNameBytes = 200

// checkName reports why name cannot be a task's name, or nil. A name is at
// once a line prefix, a commit status context and a file name in the state
// directory, so it must be non-empty, valid UTF-8, free of control
// characters (C0, DEL and C1, which would reach terminals and log files
// raw), not "." or "..", without a slash, and at most maxNameBytes long.
// Anything else the old tool took, spaces and non-ASCII letters included,
// stays valid.
func checkName(name string) error {
	switch {
	case name == "":
		return &UsageError{"the task name is empty: give a name after -n"}
	case len(name) > maxNameBytes:
		return &UsageError{fmt.Sprintf("the task name is %d bytes long: give one of at most %d bytes with -n", len(name), maxNameBytes)}
	case !utf8.ValidString(name):
		return &UsageError{fmt.Sprintf("the task name %q is not valid UTF-8: give another with -n", name)}
	}
	for _, c := range name {
		if c < 0x20 || c >= 0x7f && c <= 0x9f {
			return &UsageError{fmt.Sprintf("the task name %q holds the control character %U: give one without control characters with -n", name, c)}
		}
	}
	switch {
	case name == "." || name == "..":
		return &UsageError{fmt.Sprintf("the task name %q cannot be a file name: give another with -n", name)}
	case strings.Contains(name, "/"):
		return &UsageError{fmt.Sprintf("the task name %q holds a slash: give one without \"/\" with -n", name)}
	}
	return nil
}
