// Package watchdog ends the tasks of a taskrunner that dies without ending
// them itself, killed by SIGKILL say, so that no process of a task outlives
// its taskrunner for more than a moment.
//
// A build has one watchdog: a process that the toplevel taskrunner starts
// (taskrunner itself, in a hidden mode, in a session of its own so that
// signals to the build's process groups miss it) and does not wait for. It
// listens on a unix socket in the build's folder. Every taskrunner of the
// build, once its task has started, connects to it and sends the task's
// process group; it keeps the connection open for as long as it lives and
// says "done" before it exits of its own accord. A connection that closes
// without "done" is a taskrunner that died: the watchdog kills its task's
// process group with SIGKILL. A nested taskrunner is in the process group
// of the task above it, so the kills cascade down the tree. The watchdog
// exits once the toplevel's connection and every other one have closed.
//
// It is best effort: where there is no watchdog (not Linux, or it could not
// be started or reached), tasks run as they would without it.
package watchdog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Arg is the hidden command-line mode of the watchdog process:
//
//	taskrunner --watchdog SOCKET
//
// It is the watchdog only when it inherits its listening socket (see
// Inherited); a user typing it gets the usual unknown-option error.
const Arg = "--watchdog"

// ErrUnsupported is the error of Start and Dial where there is no watchdog.
var ErrUnsupported = fmt.Errorf("no watchdog on this system: %w", errors.ErrUnsupported)

// The protocol: lines of text from taskrunner to the watchdog.
const (
	// guardVerb starts "guard PGID START": kill process group PGID if the
	// connection closes without "done". START is the start time of the
	// group's leader (field 22 of /proc/PGID/stat), 0 if unknown: a leader
	// with the same pid and another start time is another process, whose
	// group is not the task's.
	guardVerb = "guard"
	// doneLine ends the connection of a taskrunner that exits of its own
	// accord: its task is not killed.
	doneLine = "done"
)

// guard is what a connection asks the watchdog to kill when it closes.
type guard struct {
	pgid  int
	start uint64
}

// parseGuard reads a "guard PGID START" line.
func parseGuard(line string) (guard, bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != guardVerb {
		return guard{}, false
	}
	pgid, err := strconv.Atoi(f[1])
	if err != nil || pgid <= 1 {
		return guard{}, false
	}
	start, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return guard{}, false
	}
	return guard{pgid: pgid, start: start}, true
}

// startTime reads the start time of a process from the text of its
// /proc/PID/stat: field 22, counted after the command name, which is in
// parentheses and may hold spaces and parentheses itself.
func startTime(stat string) (uint64, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (the state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[19], 10, 64)
	return n, err == nil
}
