// Package cli is taskrunner's command line: it parses the options, picks the
// mode, and is the one place where errors become messages and exit codes.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/job"
	"github.com/taskrunner/taskrunner/internal/report"
	"github.com/taskrunner/taskrunner/internal/state"
	"github.com/taskrunner/taskrunner/internal/watchdog"
)

const usage = `Usage: taskrunner [-n NAME | --name NAME] [-f | --force] CMD [ARGS...]

Runs CMD as the task NAME (default: CMD's base name): under a lock shared by
every taskrunner on the machine, with each output line prefixed by the name
and copied to the task's log, and skipped when the inputs it declares with
'snapshot' are unchanged since its last success.

Options (only before CMD; everything from CMD on is passed to it):
  -n, --name NAME   name of the task (lock, log, saved hash, commit status)
  -f, --force       run even if the inputs are unchanged
  -h, --help        show this help
  -V, --version     show the version
      --env         show every setting, its value and where it came from

Builds:
      --summary [BUILD-ID] [--json]
                    summarise a build (default: the newest): each job's
                    outcome, time, exit status, cache bytes and why it ran

GitHub helpers (they share the token cache of the tasks):
      --github-token        print a GitHub App installation token
      --git-credential OP   git credential helper: configure it with
                            git config credential.helper '!taskrunner --git-credential'
`

// helpText is the usage, then each setting with a few words on it.
func helpText() string {
	var b strings.Builder
	b.WriteString(usage)
	b.WriteString("\nSettings (environment variables; on/off ones take 1/true/yes/on or\n0/false/no/off; taskrunner --env shows their values; the README says more):\n")
	for _, v := range config.Vars {
		if len(v.Name) > 33 {
			fmt.Fprintf(&b, "  %s\n  %-33s %s\n", v.Name, "", v.Help)
			continue
		}
		fmt.Fprintf(&b, "  %-33s %s\n", v.Name, v.Help)
	}
	return b.String()
}

// Exit codes of taskrunner's own failures. A task's exit status passes
// through unchanged.
const (
	exitFailure = 1
	exitUsage   = 2
)

// UsageError is a command line taskrunner cannot read.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg + " (see taskrunner --help)" }

// invocation is a parsed command line.
type invocation struct {
	help, version bool
	// env is the --env mode: print the settings.
	env bool
	// githubToken and gitCredential are the GitHub helper modes;
	// gitCredential holds the operation (get, store, erase).
	githubToken   bool
	gitCredential string
	// summary is the --summary mode: summaryBuild is the build, empty for
	// the newest, and summaryJSON asks for JSON.
	summary      bool
	summaryBuild string
	summaryJSON  bool
	name         string
	force        bool
	argv         []string
}

func parse(args []string) (*invocation, error) {
	inv := &invocation{}
	named := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			inv.argv = args[i+1:]
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			inv.argv = args[i:]
			break
		}
		switch {
		case arg == "-h" || arg == "--help":
			inv.help = true
			return inv, nil
		case arg == "--version" || arg == "-V":
			inv.version = true
			return inv, nil
		case arg == "--env":
			if len(args) > i+1 {
				return nil, &UsageError{"--env takes no arguments"}
			}
			inv.env = true
			return inv, nil
		case arg == "--github-token":
			if len(args) > i+1 {
				return nil, &UsageError{"--github-token takes no arguments"}
			}
			inv.githubToken = true
			return inv, nil
		case arg == "--summary":
			inv.summary = true
			for _, a := range args[i+1:] {
				switch {
				case a == "--json" && !inv.summaryJSON:
					inv.summaryJSON = true
				case a != "" && !strings.HasPrefix(a, "-") && inv.summaryBuild == "":
					inv.summaryBuild = a
				default:
					return nil, &UsageError{"--summary takes a build id and --json, not " + a}
				}
			}
			return inv, nil
		case arg == "--git-credential":
			if len(args) != i+2 {
				return nil, &UsageError{"--git-credential needs one operation: get, store or erase"}
			}
			inv.gitCredential = args[i+1]
			return inv, nil
		case arg == "-f" || arg == "--force":
			inv.force = true
		case arg == "-n" || arg == "--name":
			if i+1 >= len(args) {
				return nil, &UsageError{arg + " needs a task name"}
			}
			i++
			inv.name, named = args[i], true
		case strings.HasPrefix(arg, "--name="):
			inv.name, named = strings.TrimPrefix(arg, "--name="), true
		case strings.HasPrefix(arg, "-n="):
			// getopt would name the task "=NAME": surely not what was meant.
			name := strings.TrimPrefix(arg, "-n=")
			if name == "" {
				name = "NAME"
			}
			return nil, &UsageError{fmt.Sprintf("write -n %s or --name=%s, not %s", name, name, arg)}
		case strings.HasPrefix(arg, "-n") && !strings.HasPrefix(arg, "--"):
			inv.name, named = strings.TrimPrefix(arg, "-n"), true // -nNAME, as getopt reads it
		default:
			return nil, unknownOption(arg)
		}
	}
	if len(inv.argv) == 0 {
		return nil, &UsageError{"no command given: usage: taskrunner [-n NAME] [-f] CMD [ARGS...]"}
	}
	if !named {
		inv.name = filepath.Base(inv.argv[0])
	}
	if err := checkName(inv.name); err != nil {
		return nil, err
	}
	return inv, nil
}

// Main runs taskrunner with args (without the program name) and returns its
// exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, os.Stdin, stdout, stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == watchdog.Arg && watchdog.Inherited() {
		return watchdog.Serve(args[1])
	}
	inv, err := parse(args)
	if err != nil {
		return failure(stderr, err)
	}
	switch {
	case inv.help:
		fmt.Fprint(stdout, helpText())
		return 0
	case inv.version:
		fmt.Fprint(stdout, versionLine())
		return 0
	}
	settings, err := config.FromEnv()
	if err != nil {
		return failure(stderr, err)
	}
	if inv.env {
		for _, set := range settings.List() {
			fmt.Fprintln(stdout, set)
		}
		return 0
	}
	if inv.summary {
		if err := summary(settings, inv, stdout); err != nil {
			return failure(stderr, err)
		}
		return 0
	}
	if inv.githubToken || inv.gitCredential != "" {
		if err := githubHelper(inv, settings, stdin, stdout, stderr); err != nil {
			return failure(stderr, err)
		}
		return 0
	}
	return runJob(inv, settings, stderr)
}

// runJob runs the task with what it takes from the process: its
// environment, current directory, stdout and stderr, and stop signals.
func runJob(inv *invocation, settings *config.Settings, stderr io.Writer) int {
	opt := job.Options{Name: inv.name, Force: inv.force, Argv: inv.argv, Settings: settings, Env: os.Environ()}
	// An unreadable current directory leaves the task in it, and its
	// hashing in the root directory.
	opt.Dir, _ = os.Getwd()
	if settings.Toplevel() {
		var err error
		if opt.Stdout, opt.Stderr, err = toplevelStreams(); err != nil {
			return failure(stderr, err)
		}
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, job.StopSignals...)
	defer signal.Stop(sigs)
	opt.Signals = sigs
	status, err := job.Run(opt)
	if err != nil {
		return failure(stderr, err)
	}
	return status
}

// failure prints err as one line and returns the exit status for it: a
// command line or a setting taskrunner cannot use is a usage error.
func failure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "taskrunner: %v\n", err)
	var (
		usage   *UsageError
		setting *config.SettingError
	)
	if errors.As(err, &usage) || errors.As(err, &setting) {
		return exitUsage
	}
	return exitFailure
}

// Run is the whole program: it runs taskrunner with the process's arguments
// and returns the exit status.
func Run() int { return Main(os.Args[1:], os.Stdout, os.Stderr) }

// summary prints the summary of a build.
func summary(s *config.Settings, inv *invocation, stdout io.Writer) error {
	st := state.Dir{Root: s.StateDir}
	id := inv.summaryBuild
	if id == "" {
		var err error
		if id, err = report.Latest(st); err != nil {
			return err
		}
	}
	sum, err := report.Summarize(st, id)
	if err != nil {
		return err
	}
	if inv.summaryJSON {
		return sum.WriteJSON(stdout)
	}
	return sum.WriteText(stdout)
}
