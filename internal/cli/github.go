package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/fds"
	"github.com/taskrunner/taskrunner/internal/github"
	"github.com/taskrunner/taskrunner/internal/output"
	"github.com/taskrunner/taskrunner/internal/state"
)

// githubHelper runs one of the GitHub helper modes. They take their token
// from the same shared cache as the tasks, so a long job's `git push` and
// `gh` calls get a fresh token without minting one each.
//
// Under GitHub Actions, a newly minted token is masked with an
// `::add-mask::` line: see maskOutput for where it goes.
func githubHelper(inv *invocation, s *config.Settings, stdin io.Reader, stdout, stderr io.Writer) error {
	op := inv.gitCredential
	if op != "" && op != "get" && op != "erase" {
		// store has nothing to do: the cache is ours. Git asks helpers to
		// ignore operations they do not know.
		_, _ = io.Copy(io.Discard, stdin)
		return nil
	}
	var req map[string]string
	if op != "" {
		var err error
		if req, err = readCredentialRequest(stdin); err != nil {
			return err
		}
	}
	app, err := github.NewApp(s.GitHub)
	if err != nil {
		return err
	}
	if op != "" && (req["protocol"] != "https" || !servesHost(req["host"], app.APIURL())) {
		// Not this GitHub over https: say nothing, git asks the next helper.
		return nil
	}
	if err := (state.Dir{Root: s.StateDir}).Prepare(); err != nil {
		return err
	}
	tokens := github.NewTokenSource(app, s.StateDir, maskOutput(s, stderr))
	tokens.Warn = func(msg string) { fmt.Fprintf(stderr, "taskrunner: warning: %s\n", msg) }
	tokens.Info = func(msg string) { fmt.Fprintf(stderr, "taskrunner: %s\n", msg) }
	ctx := context.Background()
	if op == "erase" {
		// Git found the token refused: the next process mints another.
		return tokens.Erase(ctx, req["password"])
	}
	token, err := tokens.Token(ctx)
	if err != nil {
		return err
	}
	if inv.githubToken {
		_, err = fmt.Fprintln(stdout, token)
		return err
	}
	answer := fmt.Sprintf("username=x-access-token\npassword=%s\n", token)
	if exp, ok := tokens.Expires(token); ok {
		// Git 2.41 and later stop using the token at its expiry.
		answer += fmt.Sprintf("password_expiry_utc=%d\n", exp.Unix())
	}
	_, err = io.WriteString(stdout, answer)
	return err
}

// maskOutput is where a helper writes the `::add-mask::` line of a token it
// mints. Called straight from a workflow step, that is stderr: stdout is the
// token itself, or git's protocol, and the runner reads workflow commands
// from both. Inside a task, stderr is the task's, whose lines reach the
// runner behind the task's prefix, where they are no command and would show
// the token in clear; the line goes to the build's toplevel stdout instead,
// as a job's own mask lines do. When that descriptor is not open here (a
// tool between the task and the helper closed it), there is no mask line:
// printing the token to be masked is the very leak masking prevents.
func maskOutput(s *config.Settings, stderr io.Writer) io.Writer {
	if !s.GitHub.Actions || s.Toplevel() {
		return stderr
	}
	fd := s.Inherited.ToplevelStdout
	var st syscall.Stat_t
	if fd < 0 || syscall.Fstat(fd, &st) != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), fds.EnvToplevelStdout)
	lock := output.NewWriteLock(state.Dir{Root: s.StateDir}.Build(s.Inherited.BuildID))
	return output.NewSink(f, lock).Writer()
}

// readCredentialRequest reads git's `key=value` lines up to a blank line or
// the end of input.
func readCredentialRequest(r io.Reader) (map[string]string, error) {
	req := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, "=")
		req[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading git's credential request: %w", err)
	}
	return req, nil
}

// servesHost reports whether the token is meant for host (which git must
// name: a request without one gets no token). The API of a
// GitHub Enterprise Server (HOST/api/v3) or of GHE.com (api.HOST) serves
// that HOST only: github.com must never get another server's token. Any
// other API (api.github.com, or a proxy or test server standing in for it)
// serves github.com and its own host.
func servesHost(host, apiURL string) bool {
	u, err := url.Parse(apiURL)
	if err != nil {
		return false
	}
	if host == "" {
		return false
	}
	if strings.TrimRight(u.Path, "/") == "/api/v3" {
		return host == u.Host
	}
	if h, ok := strings.CutPrefix(u.Host, "api."); ok && h != "github.com" {
		return host == h
	}
	return host == "github.com" || host == u.Host
}
