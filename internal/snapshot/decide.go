package snapshot

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/taskrunner/taskrunner/internal/gitx"
	"github.com/taskrunner/taskrunner/internal/state"
)

// Reporter receives the messages of a decision.
type Reporter interface {
	Info(msg string)
	Debug(msg string)
}

// Verdict is what snapshot decided.
type Verdict struct {
	// Run is true when the task goes on, false when it is skipped.
	Run bool
	// Description is the commit status description of the decision, or nil.
	Description *string
}

// Descriptions of the decisions, as commit statuses show them.
var (
	DescNotCached = "not cached"
	DescLocalHit  = "local cache hit (?)"
	DescCacheHit  = "cache hit"
)

// ErrCalledTwice is a second snapshot call in one job.
var ErrCalledTwice = errors.New("snapshot: called a second time in this task; declare every input and output in one call")

// Job holds the snapshot of one job: the decision and what the job must do
// after its command ends.
type Job struct {
	Name string
	// Dir is the directory input and output paths are relative to.
	Dir      string
	Force    bool
	Toplevel bool
	// Argv is the task's command line, an input with --with-command.
	Argv []string
	// PrimeCacheMode skips every task whose inputs changed, to save its
	// hash (and upload its outputs) without running it.
	PrimeCacheMode bool
	State          state.Dir
	Report         Reporter
	// Remote is the remote cache; nil when none is configured.
	Remote Remote
	// RootDir is the default cache root.
	RootDir string
	// MainBranch is tracked for the fuzzy cache when set.
	MainBranch string
	// FallbackBranches are tried for the fuzzy cache after the current one.
	FallbackBranches []string
	// DetachedBranch is the current branch when HEAD is detached; empty
	// for none.
	DetachedBranch string
	// BaseBranch is the branch a pull request merges into, when known: like
	// the main and fallback branches, a build on a detached HEAD never
	// records its latest hash.
	BaseBranch string
	// Phase, when set, marks a phase of the decision in the build trace:
	// it is called at the start and returns the function that ends it.
	Phase func(name string) func()

	mu     sync.Mutex
	called bool
	args   *Args
	// pending is the hash to save if the job succeeds.
	pending *state.SavedHash
	// changed is set when the decision was to run because inputs changed.
	changed bool
	// skipped is set when the decision was to skip the task.
	skipped bool
	// restored is set when the outputs came from the remote cache.
	restored bool
	// fuzzy is set when a fuzzy cache warmed the task up.
	fuzzy bool
	// committed is set when the inputs had no uncommitted changes; it is
	// only known when the remote cache applies to the task.
	committed bool
	// reason says why the task runs.
	reason string
	// out are the task's outputs, resolved.
	out Outputs
}

func (j *Job) phase(name string) func() {
	if j.Phase == nil {
		return func() {}
	}
	return j.Phase(name)
}

// HashOf returns the hash of a hash input: lowercase hex SHA-1.
func HashOf(hashInput string) string {
	sum := sha1.Sum([]byte(hashInput))
	return hex.EncodeToString(sum[:])
}

// HashInput returns the hash input of a snapshot call, the input listing
// followed directly by the raw inputs joined with newlines, and the listing
// alone (to say later what changed).
func HashInput(ctx context.Context, dir string, a *Args) (input, listing string, err error) {
	return hashInput(ctx, dir, a, func(string) {})
}

// hashInput is HashInput that says with debug why git was asked for the
// listing, when it was.
func hashInput(ctx context.Context, dir string, a *Args, debug func(string)) (input, listing string, err error) {
	if len(a.Inputs) > 0 {
		var why string
		listing, why, err = gitx.HashInputsReason(ctx, dir, a.Inputs)
		if why != "" {
			debug("snapshot: hashing the inputs with git: " + why)
		}
		if err != nil {
			return "", "", err
		}
	}
	input = listing + strings.Join(a.Raw, "\n")
	if a.WithCommand {
		input += commandInput(a.Command)
	}
	return input, listing, nil
}

// commandInput is the part of the hash input that --with-command adds: a
// line holding the task's argv, each word Go-quoted, so that every byte of
// every word counts and no two command lines read the same.
func commandInput(argv []string) string {
	var b strings.Builder
	b.WriteString("\ncommand:")
	for _, w := range argv {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(w))
	}
	return b.String()
}

// Decide handles one snapshot call. Once ctx is cancelled (a stop signal)
// the decision ends with an error wrapping ctx's, and the task must not go
// on.
func (j *Job) Decide(ctx context.Context, rawArgs []string) (Verdict, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.called {
		return Verdict{}, ErrCalledTwice
	}
	j.called = true
	a, err := ParseArgs(rawArgs)
	if err != nil {
		return Verdict{}, err
	}
	if a.WithCommand {
		a.Command = j.Argv
	}
	j.args = a
	if j.out, err = j.outputs(a); err != nil {
		return Verdict{}, err
	}

	// 1. Nothing to compare: run.
	if !a.HasInputs() {
		j.reason = ReasonNoInputs
		j.Report.Debug("snapshot: no inputs, running task")
		return Verdict{Run: true, Description: &DescNotCached}, nil
	}

	// 2. Hash the inputs.
	endHash := j.phase("hash inputs")
	input, listing, err := hashInput(ctx, j.Dir, a, j.Report.Debug)
	endHash()
	if err != nil {
		return Verdict{}, err
	}
	hash := HashOf(input)
	j.Report.Debug("snapshot: inputs hash " + hash)

	// 3. Unchanged since the last success: skip.
	saved, err := j.State.LoadHash(j.Name)
	if err != nil {
		j.Report.Debug("snapshot: cannot read the saved hash: " + err.Error())
	}
	if saved != nil && saved.Hash == hash && !j.Force {
		if j.Toplevel {
			j.Report.Info("skipped, inputs unchanged")
		}
		j.skipped = true
		return Verdict{Description: &DescLocalHit}, nil
	}

	// 4. Remember the hash, saved if the task succeeds.
	j.pending = &state.SavedHash{Hash: hash, HashInput: input}
	j.pending.MainBranchCommit = j.mainBranchCommit(ctx)
	if j.Remote != nil && a.RemoteCache() {
		j.committed = j.inputsCommitted(ctx, a)
	}
	remote := j.Remote != nil && a.RemoteCache() && !j.Force

	// A stop signal ends the decision here: the task is being stopped.
	if err := ctx.Err(); err != nil {
		return Verdict{}, fmt.Errorf("snapshot: %w", err)
	}

	// 5. Prime cache mode: record the inputs without running.
	if j.PrimeCacheMode {
		j.Report.Debug("snapshot: prime cache mode, skipping task")
		j.skipped = true
		return Verdict{}, nil
	}

	// 6. Built elsewhere: restore the outputs.
	if remote && j.restoreExact(ctx, a, hash) {
		j.restored, j.skipped = true, true
		return Verdict{Description: &DescCacheHit}, nil
	}

	if err := ctx.Err(); err != nil {
		return Verdict{}, fmt.Errorf("snapshot: %w", err)
	}

	// 7. Run.
	j.changed = true
	j.Report.Info("Inputs changed, running task")
	if j.Force {
		j.reason = ReasonForced
	} else {
		j.reason = explain(saved, listing, input[len(listing):])
	}

	// 8. Warm up with a recent build of the same task.
	if remote && a.FuzzyCache && j.restoreFuzzy(ctx, a, saved) {
		j.fuzzy = true
		j.reason += "; " + ReasonFuzzy
	}
	if err := ctx.Err(); err != nil {
		return Verdict{}, fmt.Errorf("snapshot: %w", err)
	}
	j.Report.Debug("snapshot: running because: " + j.reason)
	return Verdict{Run: true}, nil
}

// After is what the job must do once its command has ended.
type After struct {
	// InputsChanged is set when snapshot ran the task because its inputs
	// changed: the job then reports its result as an info line.
	InputsChanged bool
	// Pending is the hash to save on success, or nil.
	Pending *state.SavedHash
	// Skipped is set when snapshot skipped the task.
	Skipped bool
	// Restored is set when the outputs came from the remote cache.
	Restored bool
	// Fuzzy is set when a fuzzy cache warmed the task up.
	Fuzzy bool
	// Committed is set when the remote cache applies to the task and its
	// inputs had no uncommitted changes: only then may the build move a
	// branch's latest hash.
	Committed bool
	// Reason says why the task ran; empty when it did not.
	Reason string
	// Outputs are the task's outputs, resolved.
	Outputs Outputs
	// Args are the snapshot's arguments, or nil when it was not called.
	Args *Args
}

// Called reports whether the task called snapshot.
func (j *Job) Called() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.called
}

// After returns what the job must do after its command.
func (j *Job) After() After {
	j.mu.Lock()
	defer j.mu.Unlock()
	return After{InputsChanged: j.changed, Pending: j.pending, Skipped: j.skipped, Restored: j.restored, Fuzzy: j.fuzzy, Committed: j.committed, Reason: j.reason, Outputs: j.out, Args: j.args}
}
