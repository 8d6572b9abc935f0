package snapshot

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
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
	// PrimeCacheMode skips every task whose inputs changed, to save its
	// hash (and upload its outputs) without running it.
	PrimeCacheMode bool
	State          state.Dir
	Report         Reporter

	mu     sync.Mutex
	called bool
	args   *Args
	// pending is the hash to save if the job succeeds.
	pending *state.SavedHash
	// changed is set when the decision was to run because inputs changed.
	changed bool
	// skipped is set when the decision was to skip the task.
	skipped bool
}

// HashOf returns the hash of a hash input: lowercase hex SHA-1.
func HashOf(hashInput string) string {
	sum := sha1.Sum([]byte(hashInput))
	return hex.EncodeToString(sum[:])
}

// HashInput returns the hash input of a snapshot call: the input listing,
// followed directly by the raw inputs joined with newlines.
func HashInput(ctx context.Context, dir string, a *Args) (string, error) {
	var listing string
	if len(a.Inputs) > 0 {
		var err error
		listing, err = gitx.HashInputs(ctx, dir, a.Inputs)
		if err != nil {
			return "", err
		}
	}
	return listing + strings.Join(a.Raw, "\n"), nil
}

// Decide handles one snapshot call.
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
	j.args = a

	// 1. Nothing to compare: run.
	if !a.HasInputs() {
		j.Report.Debug("snapshot: no inputs, running task")
		return Verdict{Run: true, Description: &DescNotCached}, nil
	}

	// 2. Hash the inputs.
	input, err := HashInput(ctx, j.Dir, a)
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

	// 5. Prime cache mode: record the inputs without running.
	if j.PrimeCacheMode {
		j.Report.Debug("snapshot: prime cache mode, skipping task")
		j.skipped = true
		return Verdict{}, nil
	}

	// 7. Run.
	j.changed = true
	j.Report.Info("Inputs changed, running task")
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
	// Args are the snapshot's arguments, or nil when it was not called.
	Args *Args
}

// After returns what the job must do after its command.
func (j *Job) After() After {
	j.mu.Lock()
	defer j.mu.Unlock()
	return After{InputsChanged: j.changed, Pending: j.pending, Skipped: j.skipped, Args: j.args}
}
