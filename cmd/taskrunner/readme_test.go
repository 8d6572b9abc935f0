package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeWorkflow checks that the README's GitHub Actions workflow runs
// the steps that testdata/script/github-readme-workflow.txtar runs under a
// simulated Actions environment, so that the two cannot drift apart.
func TestReadmeWorkflow(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("..", "..", "testdata", "script", "github-readme-workflow.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "### A workflow for GitHub Actions")
	if !ok {
		t.Fatal("README has no section \"A workflow for GitHub Actions\"")
	}
	yaml, _, _ := strings.Cut(strings.SplitN(after, "```yaml\n", 2)[1], "```")
	runs := regexp.MustCompile(`(?m)^\s*- run: (.*)$`).FindAllStringSubmatch(yaml, -1)
	if len(runs) != 3 {
		t.Fatalf("README workflow has %d run steps, want 3 (install, helper, toplevel): %q", len(runs), runs)
	}
	if !strings.HasPrefix(runs[0][1], "go install github.com/taskrunner/taskrunner/cmd/taskrunner@") {
		t.Errorf("first step %q does not install taskrunner", runs[0][1])
	}
	for _, run := range runs[1:] {
		if !strings.Contains(string(script), "\n# - run: "+run[1]+"\n") {
			t.Errorf("the golden workflow script does not run the README's step %q", run[1])
		}
	}
	for _, want := range []string{"statuses: write", "contents: read", "pull_request:", "persist-credentials: false",
		"GITHUB_TOKEN: ${{ github.token }}", "TASKRUNNER_STATE_DIRECTORY:", "TASKRUNNER_ENABLE_COMMIT_STATUS:", "GITHUB_APP_ID:"} {
		if !strings.Contains(yaml, want) {
			t.Errorf("README workflow lacks %q", want)
		}
	}
}
