// Package job runs one task: it takes the job's lock, starts the command
// with its output piped through taskrunner and its control channel open,
// waits for it, and does the work that follows (saving the input hash,
// post-unpack commands, the result of the build).
//
// A job takes everything it would otherwise take from the process as
// Options: its environment, directory, the toplevel's stdout and stderr,
// and the stop signals, so that a test can run one in-process. Its phases
// return their failures to one place, fail (errors.go), which prints them
// as the job's error lines and maps them to its exit status; what fails
// before the job has its output is Run's error, for the command line.
package job

import (
	"context"
	"fmt"
	"github.com/taskrunner/taskrunner/internal/report"
	"os"
	"slices"
	"time"

	"github.com/taskrunner/taskrunner/internal/cache"
	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/snapshot"
	"github.com/taskrunner/taskrunner/internal/state"
	"github.com/taskrunner/taskrunner/internal/trace"
	"github.com/taskrunner/taskrunner/internal/watchdog"
)

// Options describe one taskrunner invocation.
type Options struct {
	// Name is the job name.
	Name string
	// Force ignores the saved hash (and the caches) of this job.
	Force bool
	// Argv is the command and its arguments.
	Argv     []string
	Settings *config.Settings
	// Env is the environment of the task and its post-unpack commands,
	// before taskrunner's own variables: the process's, for the command.
	Env []string
	// Dir is the directory the task runs in, and the one whose inputs it
	// hashes and whose HEAD its commit statuses name. Empty: the task runs
	// in the process's current directory, and the hashing uses
	// Settings.RootDir.
	Dir string
	// Stdout and Stderr are the toplevel's stdout and stderr, which a
	// toplevel job writes its lines to and passes down to its task (as
	// package fds says); a subtask finds them in Settings.Inherited. They
	// must not be descriptors 1 and 2 themselves: Go's runtime dies of a
	// SIGPIPE on those when the reader is gone, where a copy returns an
	// error the job can ignore.
	Stdout, Stderr *os.File
	// Signals delivers the StopSignals the process receives; nil for none.
	Signals <-chan os.Signal
}

// Run runs the job and returns the exit status taskrunner exits with. An
// error is a failure of taskrunner itself, before the job could start.
func Run(opt Options) (int, error) {
	started := time.Now()
	s := opt.Settings
	if err := state.ValidJobName(opt.Name); err != nil {
		return 0, err
	}
	if s.Inherited != nil && slices.Contains(s.Inherited.Jobs, opt.Name) {
		// It would wait for its own lock for ever.
		return 0, fmt.Errorf("task %q runs inside a task of the same name, which holds its lock: give one of them another name with -n", opt.Name)
	}
	st := state.Dir{Root: s.StateDir}
	if err := st.Prepare(); err != nil {
		return 0, err
	}
	// The build is marked running for as long as this process lives, so
	// that no toplevel prunes it; a new build is marked before it is seen.
	buildID, release, err := "", func() {}, error(nil)
	if s.Toplevel() {
		if buildID, release, err = st.NewBuild(time.Now()); err != nil {
			return 0, err
		}
	} else {
		buildID = s.Inherited.BuildID
		if r, err := st.MarkRunning(buildID); err == nil {
			release = r
		}
	}
	defer release()
	streams, err := openStreams(opt)
	if err != nil {
		return 0, err
	}

	// One root context for every phase of the job, cancelled by the first
	// stop signal.
	watched := make(chan struct{})
	defer close(watched)
	stop := newStopper(opt.Signals, watched)
	defer stop.cancel()

	r := &run{opt: opt, settings: s, state: st, buildID: buildID, streams: streams, stop: stop, ctx: stop.ctx, sigs: stop.sigs, started: started}
	if s.Toplevel() {
		r.startWatchdog()
	}
	defer r.endGuard()
	if s.Toplevel() {
		_, _ = st.Prune(s.KeepBuilds, buildID)
		st.RemoveStale(time.Now())
	}
	r.openTrace()
	streams.tellParent("Starting subtask " + opt.Name)
	status, err := r.run()
	if err == nil {
		streams.tellParent(finishedText(opt.Name, status))
	}
	if s.Toplevel() {
		_ = trace.Finish(st.Build(buildID), buildID)
		r.writeStepSummary()
	}
	return status, err
}

// actions reports whether the GitHub Actions niceties are on.
func (r *run) actions() bool {
	return r.settings.GitHub.Actions && r.settings.GitHub.Niceties
}

// writeStepSummary appends the build's table to GITHUB_STEP_SUMMARY. The
// summary is a courtesy: a failure to write it is a warning at most.
func (r *run) writeStepSummary() {
	path := r.settings.GitHub.StepSummary
	if !r.actions() || path == "" {
		return
	}
	sum, err := report.Summarize(r.state, r.buildID)
	if err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	_ = sum.WriteMarkdown(f)
	_ = f.Close()
}

// jobs are the jobs the task runs under: this one and those above it.
func (r *run) jobs() []string {
	var up []string
	if r.settings.Inherited != nil {
		up = r.settings.Inherited.Jobs
	}
	return append(slices.Clip(up), r.opt.Name)
}

func finishedText(name string, status int) string {
	if status == 0 {
		return "Subtask " + name + " finished with ExitSuccess"
	}
	return fmt.Sprintf("Subtask %s finished with ExitFailure %d", name, status)
}

// run is the state of one job's run.
type run struct {
	opt      Options
	settings *config.Settings
	state    state.Dir
	buildID  string
	streams  *streams
	// stop holds the first stop signal; ctx is its root context, which
	// every phase of the job runs under.
	stop *stopper
	ctx  context.Context
	// sigs delivers the stop signals to the code that waits for the task.
	sigs chan os.Signal

	out    *output.Job
	stdout *output.Sink // the toplevel's stdout
	snap   *snapshot.Job
	// status posts commit statuses; nil when they are off.
	status *statuses
	// remote is the remote cache; nil when none is configured.
	remote *cache.Remote
	// started is when this taskrunner started.
	started time.Time
	// trace records the job in the build trace; nil records nothing.
	trace *trace.Recorder
	// signalled is the first signal taskrunner received, or nil, as the
	// code that waits for the task saw it; see stopped.
	signalled os.Signal
	// lockFile is the job's lock, which the task inherits.
	lockFile *os.File
	// guard is the connection to the build's watchdog, or nil, and
	// guardErr why there is none.
	guard    *watchdog.Conn
	guardErr error
}

func (r *run) run() (int, error) {
	name := r.opt.Name

	// 1. The job's lock, as long as it takes, or until a signal.
	endLock := r.phase("lock wait")
	unlock, err := r.lock(r.ctx)
	endLock()
	if sig := r.stopped(); sig != nil {
		// A signal while waiting: nothing ran, nothing to record.
		if err == nil {
			unlock()
		}
		r.closeWaitOutput(false)
		return exitForSignal(sig), nil
	}
	if err != nil {
		r.closeWaitOutput(false)
		return 0, err
	}
	defer unlock()
	r.recordBegin()

	// 2. Already done in this build: the same result again.
	if status, ok, err := r.state.Result(r.buildID, name); err != nil {
		r.closeWaitOutput(false)
		return 0, err
	} else if ok {
		r.warnReused()
		r.closeWaitOutput(status != 0)
		r.recordJob(status, OutcomeAlreadyDone)
		return status, nil
	}

	if err := r.openOutput(); err != nil {
		return 0, err
	}

	// 3–4. Set up, run the command, then the work after it. A stop signal
	// at any point makes the job fail with 128+N, and its commit status
	// failure.
	status := 0
	if err := r.setUp(); err != nil {
		status = r.fail(status, err)
	} else {
		status = r.work()
	}
	if sig := r.stopped(); sig != nil {
		status = exitForSignal(sig)
	}
	// Output the user cannot read fails the run, as it fails `seq 3
	// >/dev/full`; the task's own failure keeps its status.
	if r.out.Err() != nil && status == 0 {
		status = 1
	}
	// The command first: a job that has a result has its command.
	if err := r.state.SaveCommand(r.buildID, name, quoteArgv(r.opt.Argv)); err != nil {
		status = r.fail(status, fmt.Errorf("cannot record the command: %w", err))
	}
	if err := r.state.SaveResult(r.buildID, name, status); err != nil {
		status = r.fail(status, fmt.Errorf("cannot record the result: %w", err))
	}
	r.recordJob(status, outcome(r.snap.After(), status))
	if status != 0 && r.actions() && r.stdout != nil {
		// One annotation per failed task, on the toplevel's stdout, where
		// the runner reads workflow commands.
		fmt.Fprintf(r.stdout.Writer(), "::error title=%s failed::exit %d, log %s\n", name, status, r.state.LogPath(r.buildID, name))
	}
	if err := r.out.Close(status != 0); err != nil && status == 0 {
		status = 1
	}
	return status, nil
}

// setUp prepares what the command and the work after it need: the remote
// cache, the commit statuses and the snapshot decision. Bad cache or GitHub
// settings fail the job before its command runs.
func (r *run) setUp() error {
	wd := r.opt.Dir
	if wd == "" {
		wd = r.settings.RootDir
	}
	var err error
	r.remote, err = r.openRemote()
	if err == nil {
		r.status, err = r.newStatuses(r.ctx, wd)
	}
	r.snap = &snapshot.Job{
		Name:             r.opt.Name,
		Dir:              wd,
		Force:            r.opt.Force,
		Argv:             r.opt.Argv,
		Toplevel:         r.settings.Toplevel(),
		PrimeCacheMode:   r.settings.PrimeCacheMode,
		State:            r.state,
		Report:           reporter{r.out},
		RootDir:          r.settings.RootDir,
		MainBranch:       r.settings.MainBranch,
		FallbackBranches: r.settings.FallbackBranches,
		DetachedBranch:   r.settings.DetachedBranch,
		BaseBranch:       r.settings.BaseBranch,
		Phase:            r.phase,
	}
	if r.remote != nil {
		r.snap.Remote = r.remote
	}
	// A signal that cut the first token short is not worth a line.
	return r.stopCause(err)
}

// work runs the command and the work after it, each phase only while no
// stop signal came, and returns the job's exit status.
func (r *run) work() int {
	status := 0
	if r.stopped() == nil {
		endRun := r.phase("run")
		status = r.fail(r.execute())
		endRun()
	}
	if r.stopped() == nil {
		status = r.fail(r.after(status))
	}
	var logURL *string
	if r.stopped() == nil {
		logURL = r.uploadLog()
	}
	if sig := r.stopped(); sig != nil {
		status = exitForSignal(sig)
	}
	status = r.fail(r.postFinalStatus(status, logURL))
	return r.fail(r.saveSuccess(status))
}

// openOutput opens the job's output and its log, once: as soon as the job
// has to wait for its lock, to say so, or else once it holds it.
func (r *run) openOutput() error {
	if r.out != nil {
		return nil
	}
	logFile, err := os.OpenFile(r.state.LogPath(r.buildID, r.opt.Name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open the job's log: %w", err)
	}
	lock := output.NewWriteLock(r.state.Build(r.buildID))
	r.stdout = output.NewSink(r.streams.stdout, lock)
	// The toplevel's streams, which a nested job inherited: colour
	// depends on them, not on the pipe this process writes its own to.
	// Only auto without NO_COLOR needs to ask whether f is a terminal.
	colored := func(f *os.File) bool {
		s := r.settings
		return s.Colored(s.Color == config.ColorAuto && !s.NoColor && output.IsTerminal(f))
	}
	r.out = output.NewJob(output.Options{
		Job:         r.opt.Name,
		Timestamps:  r.settings.Timestamps,
		ShowDebug:   r.settings.Debug,
		ShowInfo:    r.settings.LogInfo,
		Quiet:       r.settings.Quiet,
		Stdout:      r.stdout,
		Stderr:      output.NewSink(r.streams.stderr, lock),
		ColorStdout: colored(r.streams.stdout),
		ColorStderr: colored(r.streams.stderr),
		Log:         logFile,
		SpoolDir:    r.state.Build(r.buildID),
	})
	return nil
}

// openRemote opens the remote cache, when one is configured.
func (r *run) openRemote() (*cache.Remote, error) {
	cfg := r.settings.Cache
	open, prefix, err := cache.Locate(cfg)
	if err != nil || open == nil {
		return nil, err
	}
	trust, err := cache.LoadTrust(cfg)
	if err != nil {
		return nil, err
	}
	remote := cache.NewLazyRemote(open, prefix, cfg.LogsPrefix, cfg.LogsViewURL, reporter{r.out})
	remote.SetTrust(trust)
	return remote, nil
}

// uploadLog uploads the job's log when TASKRUNNER_UPLOAD_LOGS is on, and
// returns the URL to view it, or nil.
func (r *run) uploadLog() *string {
	if r.remote == nil || !r.settings.UploadLogs {
		return nil
	}
	defer r.phase("log upload")()
	url := r.remote.UploadLog(r.ctx, r.buildID, r.opt.Name, r.state.LogPath(r.buildID, r.opt.Name))
	if url == "" {
		return nil
	}
	return &url
}
