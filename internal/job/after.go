package job

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"

	"github.com/taskrunner/taskrunner/internal/control"
	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/snapshot"
)

// after does the work that follows the command, up to the final commit
// status, and returns the job's exit status and the failure of a
// post-unpack command: the result lines and the post-unpack commands. What
// a success leaves for the next runs waits for saveSuccess.
func (r *run) after(status int) (int, error) {
	a := r.snap.After()
	if a.InputsChanged {
		if status == 0 {
			r.out.Printf(output.Info, "success")
		} else {
			r.out.Printf(output.Error, "Failed, exit code: %d", status)
		}
	}
	if status != 0 || a.Pending == nil {
		return status, nil
	}
	// The post-unpack commands come before the hash is saved, so that a
	// failing one leaves the task to run again next time.
	return 0, r.postUnpackAll(a.Args.Cmds)
}

// saveSuccess saves what a job that succeeded leaves for the next runs,
// its input hash and then its outputs in the remote cache, and returns the
// job's exit status and the failure to save. It comes last, once the final commit status is
// posted: a job whose status cannot be posted has failed, and must neither
// be skipped nor restored from the cache the next time (SPEC §7).
func (r *run) saveSuccess(status int) (int, error) {
	if status != 0 || r.stopped() != nil {
		return status, nil
	}
	a := r.snap.After()
	if a.Pending == nil {
		return status, nil
	}
	if err := r.state.SaveHash(r.opt.Name, *a.Pending); err != nil {
		return status, fmt.Errorf("cannot save the input hash: %w", err)
	}
	r.saveRemote(a)
	return status, nil
}

// saveRemote uploads the outputs of a task that really ran (or whose
// inputs prime cache mode recorded), and with --fuzzy-cache records the
// hash as the branch's latest. A failed upload is a warn line only.
func (r *run) saveRemote(a snapshot.After) {
	if r.remote == nil || !r.settings.SaveRemoteCache || !a.Args.RemoteCache() {
		return
	}
	if !a.InputsChanged && !r.settings.PrimeCacheMode {
		return
	}
	defer r.phase("upload")()
	ctx := r.ctx
	key := r.remote.Archive(r.opt.Name, a.Args.CacheVersion, a.Pending.Hash)
	if !r.remote.Save(ctx, key, a.Outputs.Root, a.Outputs.Paths) || !a.Args.FuzzyCache {
		return
	}
	branch, why := r.snap.LatestBranch(ctx, a.Committed)
	if branch == "" {
		r.out.Printf(output.Debug, "remote cache: latest hash not recorded: %s", why)
		return
	}
	r.remote.SetLatest(ctx, r.opt.Name, branch, a.Pending.Hash)
}

// postUnpackAll runs the post-unpack commands, in order, as one phase of
// the trace. The first that fails ends them with an ExitError of its
// status.
func (r *run) postUnpackAll(cmds []string) error {
	if len(cmds) == 0 {
		return nil
	}
	defer r.phase("post-unpack")()
	for _, c := range cmds {
		if st, err := r.postUnpack(c); st != 0 {
			// Why it could not run, if it could not, then that it failed.
			failed := fmt.Errorf("post-unpack command failed with exit code %d: %s", st, c)
			return &ExitError{Status: st, Err: errors.Join(err, failed)}
		}
	}
	return nil
}

// postUnpack runs one post-unpack command with `sh -c` and returns its exit
// status, or 127 and why it could not run; its stdout and stderr both
// become the job's stderr lines. A stop signal passes SIGTERM
// on to its process group, which gets SIGKILL after the kill grace. (The
// job's status is then the signal's, whatever this returns.)
func (r *run) postUnpack(command string) (int, error) {
	w := r.out.Writer(output.Stderr)
	defer w.Close()
	cmd := exec.CommandContext(r.ctx, "sh", "-c", command)
	cmd.Dir = r.snap.Dir
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.Env = r.opt.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	// After the grace, os/exec kills sh; what is left of its group, below.
	cmd.WaitDelay = r.settings.KillGrace
	err := cmd.Run()
	if r.ctx.Err() != nil && cmd.Process != nil {
		killGroup(cmd.Process.Pid)
	}
	if err == nil {
		return 0, nil
	}
	if cmd.ProcessState != nil {
		return exitStatus(cmd.ProcessState), nil
	}
	return 127, fmt.Errorf("cannot run post-unpack command: %w", err)
}

// handler answers the task's control requests.
type handler struct{ r *run }

func (h handler) Snapshot(args []string) string {
	if snapshot.HelpRequested(args) {
		return control.PrintReply(snapshot.Usage)
	}
	v, err := h.r.snap.Decide(h.r.ctx, args)
	if err == nil {
		err = h.r.postDecision(v)
	}
	if err != nil {
		// After a stop signal, the task is being stopped, and must not
		// go on; the error is not worth a line.
		h.r.report(h.r.stopCause(err))
		return control.ReplyError
	}
	if v.Run {
		return control.ReplyRun
	}
	return control.ReplySkip
}

func (h handler) Debug(text string) { h.r.out.Printf(output.Debug, "%s", text) }
func (h handler) Error(text string) { h.r.out.Printf(output.Error, "%s", text) }

// reporter writes a snapshot decision's messages as the job's lines.
type reporter struct{ out *output.Job }

func (p reporter) Info(msg string)  { p.out.Printf(output.Info, "%s", msg) }
func (p reporter) Debug(msg string) { p.out.Printf(output.Debug, "%s", msg) }
func (p reporter) Warn(msg string)  { p.out.Printf(output.Warn, "%s", msg) }
