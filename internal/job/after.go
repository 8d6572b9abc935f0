package job

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"

	"github.com/taskrunner/taskrunner/internal/control"
	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/snapshot"
)

// after does the work that follows the command, up to the final commit
// status, and returns the job's exit status: the result lines and the
// post-unpack commands. What a success leaves for the next runs waits for
// saveSuccess.
func (r *run) after(status int) int {
	a := r.snap.After()
	if a.InputsChanged {
		if status == 0 {
			r.out.Printf(output.Info, "success")
		} else {
			r.out.Printf(output.Error, "Failed, exit code: %d", status)
		}
	}
	if status != 0 || a.Pending == nil {
		return status
	}
	// The post-unpack commands come before the hash is saved, so that a
	// failing one leaves the task to run again next time.
	return r.postUnpackAll(a.Args.Cmds)
}

// saveSuccess saves what a job that succeeded leaves for the next runs,
// its input hash and then its outputs in the remote cache, and returns the
// job's exit status. It comes last, once the final commit status is
// posted: a job whose status cannot be posted has failed, and must neither
// be skipped nor restored from the cache the next time (SPEC §7).
func (r *run) saveSuccess(status int) int {
	if status != 0 || r.stopped() != nil {
		return status
	}
	a := r.snap.After()
	if a.Pending == nil {
		return status
	}
	if err := r.state.SaveHash(r.opt.Name, *a.Pending); err != nil {
		r.out.Printf(output.Error, "cannot save the input hash: %v", err)
		return 1
	}
	r.saveRemote(a)
	return status
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
// the trace, and returns the status of the first that fails, or 0.
func (r *run) postUnpackAll(cmds []string) int {
	if len(cmds) == 0 {
		return 0
	}
	defer r.phase("post-unpack")()
	for _, c := range cmds {
		if st := r.postUnpack(c); st != 0 {
			r.out.Printf(output.Error, "post-unpack command failed with exit code %d: %s", st, c)
			return st
		}
	}
	return 0
}

// postUnpack runs one post-unpack command with `sh -c`; its stdout and
// stderr both become the job's stderr lines. A stop signal passes SIGTERM
// on to its process group, which gets SIGKILL after the kill grace. (The
// job's status is then the signal's, whatever this returns.)
func (r *run) postUnpack(command string) int {
	w := r.out.Writer(output.Stderr)
	defer w.Close()
	cmd := exec.CommandContext(r.ctx, "sh", "-c", command)
	cmd.Dir = r.snap.Dir
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	// After the grace, os/exec kills sh; what is left of its group, below.
	cmd.WaitDelay = r.settings.KillGrace
	err := cmd.Run()
	if r.ctx.Err() != nil && cmd.Process != nil {
		killGroup(cmd.Process.Pid)
	}
	if err == nil {
		return 0
	}
	if cmd.ProcessState != nil {
		return exitStatus(cmd.ProcessState)
	}
	r.out.Printf(output.Error, "cannot run post-unpack command: %v", err)
	return 127
}

// handler answers the task's control requests.
type handler struct{ r *run }

func (h handler) Snapshot(args []string) string {
	ctx := h.r.ctx
	v, err := h.r.snap.Decide(ctx, args)
	if err == nil {
		err = h.r.postDecision(v)
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// A stop signal: the task is being stopped, and must not go on.
		return control.ReplyError
	}
	if err != nil {
		h.r.out.Printf(output.Error, "%v", err)
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
