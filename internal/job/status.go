package job

import (
	"context"
	"fmt"
	"sync"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/github"
	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/snapshot"
)

// statuses posts the job's commit statuses (SPEC §8). The context of every
// status is the job name; github.Commit says which commit they go on.
type statuses struct {
	client *github.Client
	tokens *github.TokenSource
	cfg    config.GitHub
	name   string
	dir    string
	debug  func(string)

	once   sync.Once
	sha    string
	shaErr error
}

// newStatuses returns the commit status poster of a job, or nil when commit
// statuses are off. The toplevel gets a token at once, so that the tasks
// below it find one in the shared cache.
func (r *run) newStatuses(ctx context.Context, dir string) (*statuses, error) {
	if !r.settings.CommitStatus {
		return nil, nil
	}
	app, err := github.NewApp(r.settings.GitHub)
	if err != nil {
		return nil, err
	}
	tokens := github.NewTokenSource(app, r.settings.StateDir, r.stdout.Writer())
	client := github.NewClient(app, tokens)
	client.Warn = func(msg string) { r.out.Printf(output.Warn, "%s", msg) }
	tokens.Warn = client.Warn
	client.Info = func(msg string) { r.out.Printf(output.Info, "%s", msg) }
	tokens.Info = client.Info
	if r.settings.Toplevel() {
		if _, err := tokens.Token(ctx); err != nil {
			return nil, err
		}
	}
	debug := func(msg string) { r.out.Printf(output.Debug, "%s", msg) }
	return &statuses{client: client, tokens: tokens, cfg: r.settings.GitHub, name: r.opt.Name, dir: dir, debug: debug}, nil
}

func (s *statuses) commit(ctx context.Context) (string, error) {
	s.once.Do(func() {
		var why string
		s.sha, why, s.shaErr = github.Commit(ctx, s.cfg, s.dir)
		if s.shaErr == nil {
			s.debug(fmt.Sprintf("commit statuses go on %s (%s)", s.sha, why))
		}
	})
	return s.sha, s.shaErr
}

// post posts a status of the job; description and targetURL may be nil.
func (s *statuses) post(ctx context.Context, state string, description, targetURL *string) error {
	sha, err := s.commit(ctx)
	if err != nil {
		return fmt.Errorf("cannot post commit status %s: %w", state, err)
	}
	name := s.name
	err = s.client.CreateStatus(ctx, sha, github.Status{State: &state, Description: description, TargetURL: targetURL, Context: &name})
	if err != nil {
		return fmt.Errorf("cannot post commit status %s: %w", state, err)
	}
	return nil
}

// postFinal posts the final status of a job that ended with status, where
// one is due: the task asked for statuses and was not skipped, or it
// failed, or a status of its context already exists on the commit (so that
// a re-run turns an old failure green). A task that asked and was skipped
// has already posted its success, with the reason in its description, at
// the decision: posting again would hide that reason.
func (s *statuses) postFinal(ctx context.Context, status int, asked, skipped bool, targetURL *string) error {
	due := (asked && !skipped) || status != 0
	if !due && !asked {
		sha, err := s.commit(ctx)
		if err != nil {
			return fmt.Errorf("cannot check commit statuses: %w", err)
		}
		if due, err = s.client.HasStatus(ctx, sha, s.name); err != nil {
			return fmt.Errorf("cannot check commit statuses: %w", err)
		}
	}
	if !due {
		return nil
	}
	state := "success"
	if status != 0 {
		state = "failure"
	}
	return s.post(ctx, state, nil, targetURL)
}

// postFinalStatus posts the job's final commit status, where one is due,
// and returns the job's exit status and the failure to post: a status that
// cannot be posted fails the job. A job stopped by a signal posts failure, with a context of its
// own, since the signal cancelled the root context: a cancelled build must
// not leave its statuses pending. A signal while a success is being posted
// turns it into that failure.
func (r *run) postFinalStatus(status int, targetURL *string) (int, error) {
	if r.status == nil {
		return status, nil
	}
	defer r.phase("final status")()
	a := r.snap.After()
	asked := a.Args != nil && a.Args.CommitStatus
	post := func(ctx context.Context) error {
		return r.status.postFinal(ctx, status, asked, a.Skipped, targetURL)
	}
	var err error
	posted := false
	if r.stopped() == nil {
		err = post(r.ctx)
		posted = err == nil && status != 0
	}
	if sig := r.stopped(); sig != nil && !posted {
		status = exitForSignal(sig)
		ctx, cancel := r.stop.afterSignal()
		err = post(ctx)
		cancel()
	}
	return status, err
}

// postDecision posts the status of a snapshot decision for a task that
// asked for commit statuses: pending when it runs, success when skipped.
func (r *run) postDecision(v snapshot.Verdict) error {
	if r.status == nil {
		return nil
	}
	if a := r.snap.After(); a.Args == nil || !a.Args.CommitStatus {
		return nil
	}
	state := "success"
	if v.Run {
		state = "pending"
	}
	defer r.phase("status " + state)()
	return r.status.post(r.ctx, state, v.Description, nil)
}
