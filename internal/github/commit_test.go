package github

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taskrunner/taskrunner/internal/config"
)

func TestCommit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	head := strings.Repeat("a", 40)
	pr := write("pr.json", `{"pull_request":{"head":{"sha":"`+head+`"}}}`)
	push := write("push.json", `{"after":"`+strings.Repeat("b", 40)+`"}`)
	junk := write("junk.json", `not json`)
	for _, tc := range []struct {
		name    string
		cfg     config.GitHub
		sha     string
		why     string
		wantErr string
	}{
		{"override", config.GitHub{CommitSHA: strings.Repeat("c", 40), Actions: true, EventName: "pull_request", EventPath: pr}, strings.Repeat("c", 40), "TASKRUNNER_COMMIT_SHA", ""},
		{"sha-256 override", config.GitHub{CommitSHA: strings.Repeat("d", 64)}, strings.Repeat("d", 64), "TASKRUNNER_COMMIT_SHA", ""},
		{"bad override", config.GitHub{CommitSHA: "HEAD"}, "", "", `TASKRUNNER_COMMIT_SHA="HEAD" is not a full commit id`},
		{"pull request", config.GitHub{Actions: true, EventName: "pull_request", EventPath: pr}, head, "head of the pull request in the pull_request event", ""},
		{"pull request target", config.GitHub{Actions: true, EventName: "pull_request_target", EventPath: pr}, head, "head of the pull request in the pull_request_target event", ""},
		{"payload without head", config.GitHub{Actions: true, EventName: "pull_request", EventPath: push}, "", "", "has no pull_request.head.sha"},
		{"payload not JSON", config.GitHub{Actions: true, EventName: "pull_request", EventPath: junk}, "", "", "is not a JSON event payload"},
		{"no payload", config.GitHub{Actions: true, EventName: "pull_request"}, "", "", "GITHUB_EVENT_PATH is not set"},
		{"pull request outside Actions", config.GitHub{EventName: "pull_request", EventPath: pr}, "", "", "not a git repository"},
	} {
		sha, why, err := Commit(context.Background(), tc.cfg, dir)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || sha != tc.sha || why != tc.why {
			t.Errorf("%s: Commit = %q, %q, %v; want %q, %q", tc.name, sha, why, err, tc.sha, tc.why)
		}
	}
}
