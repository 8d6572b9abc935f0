package job

// The command itself: starting it with its output pipes and control
// channel, waiting for it while passing signals on, and draining its output.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/control"
	"github.com/taskrunner/taskrunner/internal/fds"
	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/pipe"
)

// execute runs the command and returns its exit status, or the failure
// that kept it from running.
func (r *run) execute() (int, error) {
	ch, err := control.New()
	if err != nil {
		return 0, err
	}
	go ch.Serve(handler{r})
	defer ch.Stop()

	outR, outW, err := os.Pipe()
	if err != nil {
		ch.CloseChildEnds()
		return 0, fmt.Errorf("cannot make a pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		ch.CloseChildEnds()
		outR.Close()
		outW.Close()
		return 0, fmt.Errorf("cannot make a pipe: %w", err)
	}

	cmd, err := r.start(outW, errW, ch)
	outW.Close()
	errW.Close()
	ch.CloseChildEnds()
	if err != nil {
		outR.Close()
		errR.Close()
		return 0, err
	}

	drains := r.startDrains(outR, errR)
	status := r.wait(cmd)
	r.finishDrains(drains)
	if r.signalled != nil {
		// A signal while the output drained: what holds the pipes is
		// ended too. (After one during wait, the group is gone already.)
		r.endLeftovers(cmd.Process.Pid, time.Now().Add(r.settings.KillGrace))
	}
	return status, nil
}

// start starts the command with its output going to outW and errW. A
// command that cannot be found or run is an ExitError of 127 or 126.
func (r *run) start(outW, errW *os.File, ch *control.Channel) (*exec.Cmd, error) {
	argv := r.opt.Argv
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, notFound(argv[0])
		}
		return nil, cannotRun(argv[0], err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()

	cmd := &exec.Cmd{
		Path:   path,
		Args:   argv,
		Dir:    r.opt.Dir,
		Stdin:  devnull,
		Stdout: outW,
		Stderr: errW,
		// The job's lock is held by the task's processes too (see guard.go).
		ExtraFiles: fds.Files{
			ToplevelStdout: r.streams.stdout,
			ToplevelStderr: r.streams.stderr,
			Requests:       ch.ChildRequests,
			Responses:      ch.ChildResponses,
			Lock:           r.lockFile,
		}.ExtraFiles(),
		Env:         taskEnv(r.opt.Env, r.settings.StateDir, r.buildID, r.jobs()),
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, notFound(argv[0])
		}
		return nil, cannotRun(argv[0], err)
	}
	r.guardTask(cmd.Process.Pid)
	return cmd, nil
}

func notFound(name string) error {
	return &ExitError{Status: 127, Err: fmt.Errorf("command not found: %s", name)}
}

func cannotRun(name string, err error) error {
	return &ExitError{Status: 126, Err: fmt.Errorf("cannot run %s: %w", name, unwrapPath(err))}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// taskEnv is the environment of a task: taskrunner's own variables, those
// of package fds among them, replace any the environment already had.
func taskEnv(env []string, stateDir, buildID string, jobs []string) []string {
	ours := []string{config.EnvStateDir + "=" + stateDir, config.EnvBuildID + "=" + buildID}
	ours = append(ours, fds.Env()...)
	ours = append(ours, config.EnvJobs+"="+strings.Join(jobs, "\n"), control.FunctionEnvName+"="+control.FunctionBody)
	names := make(map[string]bool, len(ours))
	for _, kv := range ours {
		k, _, _ := strings.Cut(kv, "=")
		names[k] = true
	}
	out := make([]string, 0, len(env)+len(ours))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !names[k] {
			out = append(out, kv)
		}
	}
	return append(out, ours...)
}

// wait waits for the command, passing the first stop signal on to its
// process group. The group gets SIGKILL after the kill grace, or at once on
// a second signal, and taskrunner stops waiting. Processes the signal left
// in the group once the command has exited are ended as well (endLeftovers);
// without a signal, background processes are left alone, as the old tool
// left them.
func (r *run) wait(cmd *exec.Cmd) int {
	done := make(chan *os.ProcessState, 1)
	go func() {
		ps, _ := cmd.Process.Wait()
		done <- ps
	}()
	pgid := cmd.Process.Pid
	var (
		grace    <-chan time.Time
		deadline time.Time
	)
	for {
		select {
		case ps := <-done:
			if r.signalled != nil {
				r.endLeftovers(pgid, deadline)
			}
			return exitStatus(ps)
		case sig := <-r.sigs:
			if r.signalled == nil {
				r.signalled = sig
				_ = syscall.Kill(-pgid, sig.(syscall.Signal))
				deadline = time.Now().Add(r.settings.KillGrace)
				t := time.NewTimer(r.settings.KillGrace)
				defer t.Stop()
				grace = t.C
				continue
			}
			killGroup(pgid)
			return exitForSignal(r.signalled)
		case <-grace:
			killGroup(pgid)
			return exitForSignal(r.signalled)
		}
	}
}

func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func exitForSignal(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// drain is the copy of one of the command's output pipes into the job's
// output.
type drain struct {
	name string
	s    *pipe.Stream
	w    *output.LineWriter
}

// startDrains starts copying the command's stdout and stderr into the job's
// output. One goroutine reads both pipes, stdout first when both hold data,
// so that lines the task writes to stdout and then to stderr reach the
// toplevel and the log in that order, as with the old tool. When the
// toplevel's reader of a stream goes away (output.ErrReaderGone), the copy
// closes that pipe: like the same pipeline without taskrunner, the task's
// next write to it gets SIGPIPE.
func (r *run) startDrains(outR, errR *os.File) []*drain {
	outW, errW := r.out.Writer(output.Stdout), r.out.Writer(output.Stderr)
	mux := new(pipe.Mux)
	drains := []*drain{
		{name: "stdout", s: mux.Add(outR, outW), w: outW},
		{name: "stderr", s: mux.Add(errR, errW), w: errW},
	}
	mux.Start()
	return drains
}

// finishDrains waits, once the command has exited, for its output pipes to
// close, as the old tool did: up to the drain timeout for stdout, then up
// to the timeout again for stderr. A descendant may still hold a pipe open:
// when its wait is over, the job passes on what the pipe already holds,
// warns, and goes on without it. A stop signal ends the waiting.
func (r *run) finishDrains(drains []*drain) {
	waiting := true
	for _, d := range drains {
		if waiting {
			waiting = r.awaitClose(d)
		}
		d.s.Stop()
		if !d.s.Closed() && d.s.Err() == nil {
			secs := strconv.FormatFloat(r.settings.DrainTimeout.Seconds(), 'f', -1, 64)
			r.out.Printf(output.Warn, "taskrunner: Task did not close %s %s seconds after exiting.", d.name, secs)
			r.out.Printf(output.Warn, "Perhaps the file descriptor was leaked to a background process?")
			r.out.Printf(output.Warn, "Build will continue despite this error, but some output may be lost.")
		}
		d.w.Close()
	}
}

// awaitClose waits up to the drain timeout for d's copy to end. It reports
// false when a stop signal came: then nothing more is waited for.
func (r *run) awaitClose(d *drain) bool {
	timer := time.NewTimer(r.settings.DrainTimeout)
	defer timer.Stop()
	select {
	case <-d.s.Done():
	case <-timer.C:
	case sig := <-r.sigs:
		if r.signalled == nil {
			r.signalled = sig
		}
		return false
	}
	return true
}
