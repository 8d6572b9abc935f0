// Package snapshot parses the arguments of the `snapshot` command a task
// calls, and decides from its inputs whether the task runs or is skipped.
package snapshot

import (
	"errors"
	"strings"
)

// Args are the parsed arguments of one snapshot call.
type Args struct {
	// Inputs are git pathspecs relative to the task's directory.
	Inputs []string
	// Raw are raw input strings.
	Raw []string
	// Outputs are paths relative to the task's directory.
	Outputs []string
	// Cmds are the post-unpack commands, run with `sh -c`.
	Cmds []string

	// WithCommand adds Command, the task's own command line, to the inputs.
	WithCommand bool
	// Command is the task's argv, set by the job when WithCommand is.
	Command []string

	FuzzyCache   bool
	CacheSuccess bool
	CommitStatus bool
	// CacheRoot is the root of the archive; empty for the root directory.
	CacheRoot string
	// CacheVersion is part of the archive name; empty for none.
	CacheVersion string
}

// HasInputs reports whether the call declared any input.
func (a *Args) HasInputs() bool { return len(a.Inputs) > 0 || len(a.Raw) > 0 || a.WithCommand }

// RemoteCache reports whether the remote cache applies to the task.
func (a *Args) RemoteCache() bool { return len(a.Outputs) > 0 || a.CacheSuccess }

// ErrCmdBeforeOutputs is a --cmd given before --outputs.
var ErrCmdBeforeOutputs = errors.New("snapshot: --cmd is supported only after --outputs")

// OptionError is an unknown option, or an option missing its argument.
type OptionError struct{ Option string }

func (e *OptionError) Error() string {
	return "snapshot: Invalid option or missing argument: " + e.Option
}

// ParseArgs parses the arguments of snapshot:
//
//	snapshot [INPUT...] [--raw STRING]... [--with-command] [-n|--unskippable] [-l|--long-running]
//	         [--fuzzy-cache] [--cache-success] [--cache-root DIR] [--cache-version V]
//	         [--commit-status] [-o|--outputs OUTPUT... [-c|--cmd SHELL]...]
//
// Long options taking a value also accept --opt=value. After `--`, every word
// is a path.
func ParseArgs(args []string) (*Args, error) {
	a := &Args{}
	outputs := false
	onlyPaths := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if onlyPaths || arg == "-" || !strings.HasPrefix(arg, "-") {
			if outputs {
				a.Outputs = append(a.Outputs, arg)
			} else {
				a.Inputs = append(a.Inputs, arg)
			}
			continue
		}
		name, inline, hasInline := arg, "", false
		if strings.HasPrefix(arg, "--") {
			if k, v, ok := strings.Cut(arg, "="); ok {
				name, inline, hasInline = k, v, true
			}
		}
		value := func() (string, error) {
			if hasInline {
				return inline, nil
			}
			if i+1 >= len(args) {
				return "", &OptionError{arg}
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--":
			onlyPaths = true
		case "--raw":
			var v string
			v, err = value()
			a.Raw = append(a.Raw, v)
		case "-n", "--unskippable", "-l", "--long-running":
		case "--with-command":
			a.WithCommand = true
		case "--fuzzy-cache":
			a.FuzzyCache = true
		case "--cache-success":
			a.CacheSuccess = true
		case "--commit-status":
			a.CommitStatus = true
		case "--cache-root":
			a.CacheRoot, err = value()
		case "--cache-version":
			a.CacheVersion, err = value()
		case "-o", "--outputs":
			outputs = true
		case "-c", "--cmd":
			if !outputs {
				return nil, ErrCmdBeforeOutputs
			}
			var v string
			v, err = value()
			a.Cmds = append(a.Cmds, v)
		default:
			return nil, &OptionError{arg}
		}
		if err != nil {
			return nil, err
		}
		if hasInline && !takesValue(name) {
			return nil, &OptionError{arg}
		}
	}
	return a, nil
}

func takesValue(name string) bool {
	switch name {
	case "--raw", "--cache-root", "--cache-version", "--cmd":
		return true
	}
	return false
}

// Usage is what `snapshot --help` prints.
const Usage = `Usage: snapshot [INPUT...] [--raw STRING]... [--with-command] [-o|--outputs OUTPUT... [-c|--cmd SHELL]...]
                [--fuzzy-cache] [--cache-success] [--cache-root DIR] [--cache-version V]
                [--commit-status] [-n] [-l]

Declares the task's inputs: when their hash equals the one saved at the
task's last success, the script ends here with status 0; otherwise it goes
on, and the hash is saved if the task succeeds. Call it once per task.

  INPUT               git pathspec (file, folder, glob) relative to the
                      current directory; ignored files are not inputs
  --raw STRING        a string input: a tool's version, or the hash of a
                      gitignored file (--raw "$(sha256sum file)")
  --with-command      the task's command line is an input too: editing an
                      inline script (bash -c '...') runs the task again
  -o, --outputs       the words after it are outputs, for the remote cache
  -c, --cmd SHELL     after --outputs: run SHELL after a run or a restore
  --fuzzy-cache       restore the latest outputs of the branch when missing
  --cache-success     use the remote cache even without outputs
  --cache-root DIR    root of the cache archive
  --cache-version V   part of the archive's name
  --commit-status     report the task as a GitHub commit status
  -n, -l              accepted, for the old tool's scripts; do nothing
  -h, --help          show this help; the script goes on
`

// HelpRequested reports whether a snapshot call asks for its usage: -h or
// --help among its options, before any "--". Such a call declares nothing.
func HelpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help":
			return true
		}
	}
	return false
}
