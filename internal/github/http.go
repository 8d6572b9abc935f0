package github

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// RequestTimeout bounds one HTTP request to GitHub, headers and body, in the
// default HTTP client, so that a silent server cannot hang a build.
const RequestTimeout = 30 * time.Second

// maxBody bounds what is read of a response: a page of 100 statuses is far
// smaller.
const maxBody = 8 << 20

var defaultHTTPClient = &http.Client{Timeout: RequestTimeout}

// retryPolicy says how often and how patiently a call is retried after a
// network error, a 5xx or a 429.
type retryPolicy struct {
	attempts int           // in all, the first one included
	backoff  time.Duration // the first wait; each next one is twice as long
	maxWait  time.Duration // the longest wait after an error, Retry-After included
	// limitWait bounds the waits for rate limits in one call, all together
	// (TASKRUNNER_GITHUB_MAX_WAIT_SECONDS); a limit that asks for more fails
	// the call at once.
	limitWait time.Duration
	// minSecondary is the wait for a secondary rate limit that gives no
	// Retry-After: GitHub asks for at least a minute.
	minSecondary time.Duration
	// info prints an info line; nil discards it.
	info func(string)
	// gate, when set, shares rate limits between processes.
	gate *gate
}

var defaultRetry = retryPolicy{attempts: 4, backoff: 500 * time.Millisecond, maxWait: 60 * time.Second,
	limitWait: DefaultMaxWait, minSecondary: time.Minute}

// DefaultMaxWait is the default bound of the waits for rate limits in one
// call.
const DefaultMaxWait = 300 * time.Second

// LimitError is a call that a rate limit stopped: GitHub asked for a longer
// wait than TASKRUNNER_GITHUB_MAX_WAIT_SECONDS allows.
type LimitError struct {
	Call string
	Kind string        // "primary" or "secondary"
	Wait time.Duration // how long GitHub asked to wait
	Max  time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("github: %s failed: GitHub's %s rate limit asks to wait %s, over TASKRUNNER_GITHUB_MAX_WAIT_SECONDS (%s)",
		e.Call, e.Kind, e.Wait.Round(time.Second), e.Max.Round(time.Second))
}

// rateLimit tells whether r is a rate limit, which kind, and how long it
// asks to wait: a primary limit (x-ratelimit-remaining: 0) until
// x-ratelimit-reset, a secondary one (403 or 429 with Retry-After, or a
// message naming it, or any other 429) for Retry-After or minSecondary.
func (p retryPolicy) rateLimit(r *response, now time.Time) (kind string, wait time.Duration, ok bool) {
	if r.status != http.StatusForbidden && r.status != http.StatusTooManyRequests {
		return "", 0, false
	}
	if r.header.Get("Retry-After") != "" {
		return "secondary", retryAfter(r.header), true
	}
	if strings.TrimSpace(r.header.Get("X-Ratelimit-Remaining")) == "0" {
		reset, err := strconv.ParseInt(strings.TrimSpace(r.header.Get("X-Ratelimit-Reset")), 10, 64)
		if err != nil {
			return "primary", p.minSecondary, true
		}
		// The reset is in whole seconds: a second more makes sure it passed.
		return "primary", max(time.Unix(reset, 0).Sub(now)+time.Second, 0), true
	}
	if r.status == http.StatusTooManyRequests || strings.Contains(strings.ToLower(string(r.body)), "secondary rate limit") {
		return "secondary", p.minSecondary, true
	}
	return "", 0, false
}

// APIError is an answer from GitHub that ends a call: a status the call does
// not accept, or one still failing after the retries. Message is GitHub's
// message (or the status text), on one line, with the credential that was
// sent removed in case a server echoes it.
type APIError struct {
	Call       string // what was attempted, e.g. "minting an installation token"
	StatusCode int
	Message    string
	Attempts   int    // how many requests were made
	Hint       string // what to check, or empty
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("github: %s failed: %d %s", e.Call, e.StatusCode, e.Message)
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// response is a whole HTTP response, its body read.
type response struct {
	status int
	header http.Header
	body   []byte
	secret string // the credential sent with the request, never to be shown
}

// setHeaders sets the headers every call to the GitHub REST API carries.
func setHeaders(req *http.Request) {
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "taskrunner")
}

// do sends the request that build makes, again after a network error, a 5xx
// or a 429 (or a 403 carrying Retry-After, GitHub's secondary rate limit),
// waiting between attempts as the server asks or else with a doubling backoff.
// It returns the first response that is not to be retried, whatever its
// status; when the attempts run out it returns an error instead.
func (p retryPolicy) do(ctx context.Context, hc *http.Client, call string, build func() (*http.Request, error)) (*response, error) {
	var limited time.Duration // waited for rate limits so far
	hold := func(kind string, wait time.Duration, why string) error {
		wait = max(wait, time.Second)
		if limited+wait > p.limitWait {
			return &LimitError{Call: call, Kind: kind, Wait: wait, Max: p.limitWait}
		}
		limited += wait
		if p.info != nil {
			p.info(fmt.Sprintf("GitHub %s rate limit%s: waiting %s before %s", kind, why, wait.Round(time.Second), call))
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("github: %s: %w (while waiting for a rate limit)", call, err)
		}
		return nil
	}
	for attempt := 1; ; attempt++ {
		if kind, until := p.gate.until(); until.After(time.Now()) {
			if err := hold(kind, time.Until(until), " hit by another call"); err != nil {
				return nil, err
			}
		}
		req, err := build()
		if err != nil {
			return nil, err
		}
		secret := credential(req)
		var wait time.Duration
		var failure error
		resp, err := hc.Do(req)
		if err == nil {
			var body []byte
			body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
			resp.Body.Close()
			if err == nil {
				r := &response{status: resp.StatusCode, header: resp.Header, body: body, secret: secret}
				if kind, wait, ok := p.rateLimit(r, time.Now()); ok {
					p.gate.set(kind, time.Now().Add(wait))
					if err := hold(kind, wait, ""); err != nil {
						return nil, err
					}
					attempt--
					continue
				}
				if !retryable(r) {
					return r, nil
				}
				e := r.apiError(call)
				e.Attempts = attempt
				failure = e
				wait = retryAfter(r.header)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("github: %s: %w", call, ctx.Err())
			}
			// net/http errors name the method and URL, never the headers.
			failure = fmt.Errorf("github: %s failed after %d attempt%s: %w", call, attempt, plural(attempt), err)
		}
		if attempt >= p.attempts {
			return nil, failure
		}
		if wait <= 0 {
			wait = p.backoff << (attempt - 1)
		}
		wait = min(wait, p.maxWait)
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("github: %s: %w (while waiting to retry after: %v)", call, err, failure)
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func retryable(r *response) bool {
	switch {
	case r.status >= 500, r.status == http.StatusTooManyRequests:
		return true
	case r.status == http.StatusForbidden:
		return r.header.Get("Retry-After") != ""
	}
	return false
}

// retryAfter reads a Retry-After header, seconds or an HTTP date; zero when
// there is none.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// credential returns the secret part of the request's Authorization header.
func credential(req *http.Request) string {
	v := req.Header.Get("Authorization")
	if _, after, ok := strings.Cut(v, " "); ok {
		return after
	}
	return v
}

// apiError describes a response the call does not accept.
func (r *response) apiError(call string) *APIError {
	return &APIError{Call: call, StatusCode: r.status, Message: r.message(), Attempts: 1}
}

// message is GitHub's message in r, with the details of a validation
// failure, or the status text when the body has none.
func (r *response) message() string {
	var body struct {
		Message string `json:"message"`
		Errors  []struct {
			Message string `json:"message"`
			Field   string `json:"field"`
			Code    string `json:"code"`
		} `json:"errors"`
	}
	msg := http.StatusText(r.status)
	if err := json.Unmarshal(r.body, &body); err != nil {
		if len(strings.TrimSpace(string(r.body))) > 0 {
			msg += " (the response is not JSON)"
		}
	} else if body.Message != "" {
		msg = body.Message
		var details []string
		for _, e := range body.Errors {
			switch {
			case e.Message != "":
				details = append(details, e.Message)
			case e.Field != "" || e.Code != "":
				details = append(details, strings.TrimSpace(e.Field+" "+e.Code))
			}
		}
		if len(details) > 0 {
			msg += ": " + strings.Join(details, ", ")
		}
	}
	if msg == "" {
		msg = "(no message)"
	}
	return oneLine(msg, r.secret)
}

// oneLine makes s fit an error message: white space collapsed, at most 300
// characters, and secret replaced wherever it occurs.
func oneLine(s, secret string) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > 300 {
		s = string([]rune(s)[:300]) + "…"
	}
	return s
}
