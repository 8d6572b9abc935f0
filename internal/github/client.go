package github

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Tokens is where a Client gets its installation tokens.
type Tokens interface {
	// Token returns a token that is not about to expire.
	Token(ctx context.Context) (string, error)
	// ForceRefresh returns a token other than stale, which GitHub has just
	// refused.
	ForceRefresh(ctx context.Context, stale string) (string, error)
}

var _ Tokens = (*TokenSource)(nil)

// RefreshWarning is the warning a Client gives when GitHub refuses its token.
const RefreshWarning = "GitHub API returned 401, force-refreshing token and retrying..."

// maxPages bounds how many pages of statuses are read: GitHub keeps at most
// 1000 statuses per commit and context.
const maxPages = 20

// Status is a commit status. Unset fields are sent as null.
type Status struct {
	State       *string `json:"state"` // error, failure, pending or success
	TargetURL   *string `json:"target_url"`
	Description *string `json:"description"`
	Context     *string `json:"context"`
}

// Client calls the GitHub REST API for one repository as an App
// installation. A 401 makes it warn, force a new token and retry the call
// once; network errors, 5xx and 429 are retried with backoff.
type Client struct {
	// BaseURL is the API's base URL, without a trailing slash.
	BaseURL string
	// HTTPClient sends the requests; nil means a client with RequestTimeout.
	HTTPClient *http.Client
	// Warn prints a warning line, Info an info line; nil discards it.
	Warn, Info func(string)

	owner, repo string
	fixedVar    string // the variable of a fixed token, which no refresh replaces
	tokens      Tokens
	retry       retryPolicy
	// youngWaits are the waits before sending a token GitHub refused again,
	// while it is younger than youngAge: a new token can be refused for a
	// second or two while it replicates.
	youngWaits []time.Duration
}

// youngAge is the age under which a refused token is tried again as it is.
const youngAge = 5 * time.Second

// aged is a Tokens that knows how old the tokens it hands out are.
type aged interface {
	Age(tok string) (time.Duration, bool)
}

// NewClient returns a client for app's repository that takes its tokens
// from tokens.
func NewClient(app *App, tokens Tokens) *Client {
	retry := app.retryPolicy()
	if ts, ok := tokens.(*TokenSource); ok {
		retry.gate = ts.retry.gate
	}
	return &Client{BaseURL: app.apiURL, owner: app.owner, repo: app.repo, fixedVar: app.fixedVar, tokens: tokens, retry: retry,
		youngWaits: []time.Duration{time.Second, 2 * time.Second}}
}

// CreateStatus posts status s on the commit sha.
func (c *Client) CreateStatus(ctx context.Context, sha string, s Status) error {
	call := fmt.Sprintf("creating a commit status on %s", short(sha))
	if err := checkSHA(call, sha); err != nil {
		return err
	}
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("github: %s: %w", call, err)
	}
	u := c.repoURL("statuses", url.PathEscape(sha))
	r, err := c.call(ctx, call, http.MethodPost, u, body)
	if err != nil {
		return err
	}
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		return c.apiError(r, call)
	}
	return nil
}

// ListStatuses returns the statuses of the commit sha, newest first.
func (c *Client) ListStatuses(ctx context.Context, sha string) ([]Status, error) {
	var all []Status
	err := c.eachStatus(ctx, sha, func(s Status) bool {
		all = append(all, s)
		return true
	})
	return all, err
}

// HasStatus reports whether the commit sha has a status with the context
// name, whatever its state.
func (c *Client) HasStatus(ctx context.Context, sha, context string) (bool, error) {
	found := false
	err := c.eachStatus(ctx, sha, func(s Status) bool {
		found = s.Context != nil && *s.Context == context
		return !found
	})
	return found, err
}

// eachStatus calls f with each status of sha, page after page, until f
// returns false.
func (c *Client) eachStatus(ctx context.Context, sha string, f func(Status) bool) error {
	call := fmt.Sprintf("listing the commit statuses of %s", short(sha))
	if err := checkSHA(call, sha); err != nil {
		return err
	}
	u := c.repoURL("commits", url.PathEscape(sha), "statuses") + "?per_page=100"
	for page := 0; u != "" && page < maxPages; page++ {
		r, err := c.call(ctx, call, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return c.apiError(r, call)
		}
		var statuses []Status
		if err := json.Unmarshal(r.body, &statuses); err != nil {
			return fmt.Errorf("github: %s failed: GitHub answered %d but the response is not a JSON list of statuses", call, r.status)
		}
		for _, s := range statuses {
			if !f(s) {
				return nil
			}
		}
		u = c.nextPage(r.header)
	}
	return nil
}

// call sends one API request with an installation token. On a 401 it sends
// the request again with the same token after each of youngWaits while the
// token is younger than youngAge, then warns, forces a new token and sends
// the request once more (again after youngWaits while that one is young).
func (c *Client) call(ctx context.Context, call, method, u string, body []byte) (*response, error) {
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, err
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	retry := c.retry
	retry.info = c.Info
	young := 0
	for refreshed := false; ; {
		r, err := retry.do(ctx, hc, call, func() (*http.Request, error) {
			var rd *bytes.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			req, err := newRequest(ctx, method, u, rd)
			if err != nil {
				return nil, fmt.Errorf("github: %s: %w", call, err)
			}
			setHeaders(req)
			req.Header.Set("Authorization", "Bearer "+tok)
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, nil
		})
		if err != nil || r.status != http.StatusUnauthorized || c.fixedVar != "" {
			return r, err
		}
		if a, ok := c.tokens.(aged); ok && young < len(c.youngWaits) {
			if age, ok := a.Age(tok); ok && age < youngAge {
				if err := sleep(ctx, c.youngWaits[young]); err != nil {
					return nil, fmt.Errorf("github: %s: %w", call, err)
				}
				young++
				continue
			}
		}
		if refreshed {
			return r, nil
		}
		if c.Warn != nil {
			c.Warn(RefreshWarning)
		}
		if tok, err = c.tokens.ForceRefresh(ctx, tok); err != nil {
			return nil, err
		}
		refreshed, young = true, 0
	}
}

// apiError describes a response the call does not accept. A fixed token
// refused, or short of a permission, is the workflow's to fix.
func (c *Client) apiError(r *response, call string) *APIError {
	e := r.apiError(call)
	if c.fixedVar != "" && (r.status == http.StatusUnauthorized || r.status == http.StatusForbidden || r.status == http.StatusNotFound) {
		e.Hint = "check that " + c.fixedVar + " is valid for " + c.owner + "/" + c.repo + " and has the permission statuses: write"
	}
	return e
}

// newRequest is http.NewRequestWithContext without the typed-nil trap: a
// nil *bytes.Reader must become a nil io.Reader.
func newRequest(ctx context.Context, method, u string, body *bytes.Reader) (*http.Request, error) {
	if body == nil {
		return http.NewRequestWithContext(ctx, method, u, nil)
	}
	return http.NewRequestWithContext(ctx, method, u, body)
}

func (c *Client) repoURL(parts ...string) string {
	return strings.TrimRight(c.BaseURL, "/") + "/repos/" + url.PathEscape(c.owner) + "/" + url.PathEscape(c.repo) + "/" + strings.Join(parts, "/")
}

// nextPage returns the rel="next" URL of a Link header, or "" when there is
// none or it points away from BaseURL, where the token must not be sent.
func (c *Client) nextPage(h http.Header) string {
	for _, link := range h.Values("Link") {
		for part := range strings.SplitSeq(link, ",") {
			target, params, ok := strings.Cut(part, ";")
			if !ok || !strings.Contains(params, `rel="next"`) {
				continue
			}
			next := strings.Trim(strings.TrimSpace(target), "<>")
			if sameOrigin(next, c.BaseURL) {
				return next
			}
		}
	}
	return ""
}

func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && ua.Host == ub.Host
}

func checkSHA(call, sha string) error {
	if sha == "" || strings.ContainsAny(sha, "/?# \t\n") {
		return fmt.Errorf("github: %s: %q is not a commit id", call, sha)
	}
	return nil
}

// short abbreviates a commit id for messages.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
