package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/github"
	"github.com/taskrunner/taskrunner/internal/state"
)

// githubHelper runs one of the GitHub helper modes. They take their token
// from the same shared cache as the tasks, so a long job's `git push` and
// `gh` calls get a fresh token without minting one each.
//
// Under GitHub Actions, the `::add-mask::` line of a newly minted token
// goes to stderr here: stdout is the token itself, or git's protocol, and
// the runner reads workflow commands from both.
func githubHelper(inv *invocation, s *config.Settings, stdin io.Reader, stdout, stderr io.Writer) error {
	if inv.gitCredential != "" && inv.gitCredential != "get" {
		// store and erase have nothing to do: the cache is ours. Git asks
		// helpers to ignore operations they do not know.
		_, _ = io.Copy(io.Discard, stdin)
		return nil
	}
	app, err := github.NewApp(s.GitHub)
	if err != nil {
		return err
	}
	if inv.gitCredential == "get" {
		req, err := readCredentialRequest(stdin)
		if err != nil {
			return err
		}
		if !servesHost(req["host"], app.APIURL()) {
			return nil // another helper's host: say nothing, git asks the next one
		}
	}
	if err := (state.Dir{Root: s.StateDir}).Prepare(); err != nil {
		return err
	}
	token, err := github.NewTokenSource(app, s.StateDir, stderr).Token(context.Background())
	if err != nil {
		return err
	}
	if inv.githubToken {
		_, err = fmt.Fprintln(stdout, token)
		return err
	}
	_, err = fmt.Fprintf(stdout, "username=x-access-token\npassword=%s\n", token)
	return err
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

// servesHost reports whether the token is meant for host: github.com, the
// API's own host, or a GitHub Enterprise server whose API is at api.HOST or
// HOST/api/v3. A request naming no host gets the token.
func servesHost(host, apiURL string) bool {
	if host == "" || host == "github.com" {
		return true
	}
	u, err := url.Parse(apiURL)
	if err != nil {
		return false
	}
	return host == u.Host || "api."+host == u.Host
}
