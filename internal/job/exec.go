package job

// The command itself: starting it with its output pipes and control
// channel, waiting for it while passing signals on, and draining its output.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/control"
	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/pipe"
)

// execute runs the command and returns its exit status.
func (r *run) execute() int {
	ch, err := control.New()
	if err != nil {
		r.out.Printf(output.Error, "%v", err)
		return 1
	}
	go ch.Serve(handler{r})
	defer ch.Stop()

	outR, outW, err := os.Pipe()
	if err != nil {
		ch.CloseChildEnds()
		r.out.Printf(output.Error, "cannot make a pipe: %v", err)
		return 1
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		ch.CloseChildEnds()
		outR.Close()
		outW.Close()
		r.out.Printf(output.Error, "cannot make a pipe: %v", err)
		return 1
	}

	cmd, status, err := r.start(outW, errW, ch)
	outW.Close()
	errW.Close()
	ch.CloseChildEnds()
	if err != nil {
		outR.Close()
		errR.Close()
		r.out.Printf(output.Error, "%v", err)
		return status
	}

	drains := []*drain{
		startDrain("stdout", outR, r.out.Writer(output.Stdout)),
		startDrain("stderr", errR, r.out.Writer(output.Stderr)),
	}
	status = r.wait(cmd)
	r.finishDrains(drains)
	if r.signalled != nil {
		// A signal while the output drained: what holds the pipes is
		// ended too. (After one during wait, the group is gone already.)
		r.endLeftovers(cmd.Process.Pid, time.Now().Add(r.settings.KillGrace))
	}
	return status
}

// start starts the command with its output going to outW and errW.
func (r *run) start(outW, errW *os.File, ch *control.Channel) (*exec.Cmd, int, error) {
	argv := r.opt.Argv
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, 127, fmt.Errorf("command not found: %s", argv[0])
		}
		return nil, 126, fmt.Errorf("cannot run %s: %v", argv[0], unwrapPath(err))
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, 1, err
	}
	defer devnull.Close()

	cmd := &exec.Cmd{
		Path:   path,
		Args:   argv,
		Stdin:  devnull,
		Stdout: outW,
		Stderr: errW,
		// Descriptors 3 to 6 in the task.
		ExtraFiles:  []*os.File{r.streams.stdout, r.streams.stderr, ch.ChildRequests, ch.ChildResponses},
		Env:         taskEnv(os.Environ(), r.settings.StateDir, r.buildID, r.jobs()),
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 127, fmt.Errorf("command not found: %s", argv[0])
		}
		return nil, 126, fmt.Errorf("cannot run %s: %v", argv[0], unwrapPath(err))
	}
	return cmd, 0, nil
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

// taskEnv is the environment of a task: taskrunner's own variables replace
// any the environment already had.
func taskEnv(env []string, stateDir, buildID string, jobs []string) []string {
	ours := map[string]string{
		config.EnvStateDir:       stateDir,
		config.EnvJobs:           strings.Join(jobs, "\n"),
		config.EnvBuildID:        buildID,
		config.EnvToplevelStdout: "3",
		config.EnvToplevelStderr: "4",
		config.EnvRequestPipe:    "5",
		config.EnvResponsePipe:   "6",
		control.FunctionEnvName:  control.FunctionBody,
	}
	out := make([]string, 0, len(env)+len(ours))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := ours[k]; !ok {
			out = append(out, kv)
		}
	}
	for _, k := range []string{config.EnvStateDir, config.EnvBuildID, config.EnvToplevelStdout, config.EnvToplevelStderr,
		config.EnvRequestPipe, config.EnvResponsePipe, config.EnvJobs, control.FunctionEnvName} {
		out = append(out, k+"="+ours[k])
	}
	return out
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

// drain copies one of the command's output pipes into the job's output.
type drain struct {
	name string
	r    *pipe.Reader
	w    *output.LineWriter
	done chan struct{}
	// gone is set when the toplevel's reader went away and the pipe was
	// closed early on purpose.
	gone bool
}

func startDrain(name string, f *os.File, w *output.LineWriter) *drain {
	d := &drain{name: name, r: pipe.NewReader(f), w: w, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		buf := make([]byte, 64<<10)
		if _, err := io.CopyBuffer(w, d.r, buf); errors.Is(err, output.ErrReaderGone) {
			// Like the same pipeline without taskrunner: the task's next
			// write gets SIGPIPE.
			d.gone = true
			d.r.Close()
		}
	}()
	return d
}

// finishDrains waits, once the command has exited, for its output pipes to
// close. A descendant may still hold one open: after the drain timeout, the
// job passes on what the pipe already holds, warns, and goes on without it.
func (r *run) finishDrains(drains []*drain) {
	deadline := time.NewTimer(r.settings.DrainTimeout)
	defer deadline.Stop()
	waiting := true
	for _, d := range drains {
		if waiting {
			select {
			case <-d.done:
			case <-deadline.C:
				waiting = false
			case sig := <-r.sigs:
				if r.signalled == nil {
					r.signalled = sig
				}
				waiting = false
			}
		}
		d.r.Stop()
		<-d.done
		if !d.r.Closed() && !d.gone {
			secs := strconv.FormatFloat(r.settings.DrainTimeout.Seconds(), 'f', -1, 64)
			r.out.Printf(output.Warn, "taskrunner: Task did not close %s %s seconds after exiting.", d.name, secs)
			r.out.Printf(output.Warn, "Perhaps the file descriptor was leaked to a background process?")
			r.out.Printf(output.Warn, "Build will continue despite this error, but some output may be lost.")
		}
		d.r.Close()
		d.w.Close()
	}
}
