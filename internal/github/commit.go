package github

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/gitx"
)

// Commit returns the commit that statuses go on, and why that one
// (SPEC §8): TASKRUNNER_COMMIT_SHA when set; under GitHub Actions on a
// pull_request or pull_request_target event, the pull request's head
// commit from the event payload, since the checkout there is a merge
// commit GitHub made, whose statuses never show on the pull request; else
// HEAD of dir's repository.
func Commit(ctx context.Context, cfg config.GitHub, dir string) (sha, why string, err error) {
	if cfg.CommitSHA != "" {
		if !isCommitID(cfg.CommitSHA) {
			return "", "", fmt.Errorf("TASKRUNNER_COMMIT_SHA=%q is not a full commit id (40 or 64 hex digits)", cfg.CommitSHA)
		}
		return cfg.CommitSHA, "TASKRUNNER_COMMIT_SHA", nil
	}
	if cfg.Actions && (cfg.EventName == "pull_request" || cfg.EventName == "pull_request_target") {
		sha, err := pullRequestHead(cfg.EventPath)
		if err != nil {
			return "", "", fmt.Errorf("finding the pull request's head commit for a %s event: %w", cfg.EventName, err)
		}
		return sha, "head of the pull request in the " + cfg.EventName + " event", nil
	}
	sha, err = gitx.Head(ctx, dir)
	if err != nil {
		return "", "", err
	}
	return sha, "HEAD", nil
}

// pullRequestHead reads pull_request.head.sha from an event payload.
func pullRequestHead(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("GITHUB_EVENT_PATH is not set (set TASKRUNNER_COMMIT_SHA to name the commit)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading GITHUB_EVENT_PATH: %w", err)
	}
	var ev struct {
		PullRequest struct {
			Head struct {
				SHA string `json:"sha"`
			} `json:"head"`
		} `json:"pull_request"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return "", fmt.Errorf("GITHUB_EVENT_PATH %s is not a JSON event payload", path)
	}
	if sha := ev.PullRequest.Head.SHA; isCommitID(sha) {
		return sha, nil
	}
	return "", fmt.Errorf("GITHUB_EVENT_PATH %s has no pull_request.head.sha", path)
}

// isCommitID reports whether s is a full SHA-1 or SHA-256 commit id.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
