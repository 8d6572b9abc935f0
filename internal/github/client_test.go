package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskrunner/taskrunner/internal/github/githubtest"
)

func TestStatusBody(t *testing.T) {
	tests := []struct {
		s    Status
		want string
	}{
		{Status{State: new("success"), Context: new("build")},
			`{"state":"success","target_url":null,"description":null,"context":"build"}`},
		{Status{State: new("failure"), TargetURL: new("https://logs/x"), Description: new("broke"), Context: new("test")},
			`{"state":"failure","target_url":"https://logs/x","description":"broke","context":"test"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.s)
		if err != nil || string(b) != tt.want {
			t.Errorf("body = %s, %v; want %s", b, err, tt.want)
		}
	}
}

func TestCreateAndListStatuses(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	c := e.client(e.source())
	ctx := context.Background()
	if err := c.CreateStatus(ctx, sha, Status{State: new("pending"), Context: new("build")}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateStatus(ctx, sha, Status{State: new("success"), TargetURL: new("https://logs.example/1"), Context: new("build")}); err != nil {
		t.Fatal(err)
	}
	stored := e.srv.Statuses("acme", "widgets", sha)
	if len(stored) != 2 || stored[0].State != "success" || stored[0].Description != nil || *stored[0].TargetURL != "https://logs.example/1" {
		t.Fatalf("server stored %+v", stored)
	}

	list, err := c.ListStatuses(ctx, sha)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || *list[0].State != "success" || *list[1].State != "pending" || *list[0].Context != "build" || list[0].Description != nil {
		t.Errorf("ListStatuses = %v", list)
	}
	for _, tc := range []struct {
		context string
		want    bool
	}{{"build", true}, {"test", false}, {"Build", false}} {
		if got, err := c.HasStatus(ctx, sha, tc.context); err != nil || got != tc.want {
			t.Errorf("HasStatus(%q) = %v, %v; want %v", tc.context, got, err, tc.want)
		}
	}
	if got, err := c.HasStatus(ctx, strings.Repeat("f", 40), "build"); err != nil || got {
		t.Errorf("HasStatus on a commit without statuses = %v, %v", got, err)
	}

	for _, call := range e.srv.Calls() {
		if call.Path == "/repos/acme/widgets/commits/"+sha+"/statuses" && !strings.Contains(call.Query, "per_page=100") {
			t.Errorf("listing without per_page=100: %v?%s", call, call.Query)
		}
		if strings.HasPrefix(call.Path, "/repos/") && (call.Auth != githubtest.AuthToken || call.Header.Get("Authorization") != "Bearer [redacted]") {
			t.Errorf("%v did not authenticate with the installation token as Bearer: %q", call, call.Header.Get("Authorization"))
		}
		if call.Header.Get("User-Agent") != "taskrunner" || call.Header.Get("X-GitHub-Api-Version") != "2022-11-28" {
			t.Errorf("%v lacks the API headers: %v", call, call.Header)
		}
	}
	if e.srv.Mints() != 1 {
		t.Errorf("mints = %d, want 1", e.srv.Mints())
	}
}

func TestListStatusesPages(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	c := e.client(e.source())
	ctx := context.Background()
	for i := range 130 {
		if err := c.CreateStatus(ctx, sha, Status{State: new("success"), Context: new(fmt.Sprintf("job%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.ListStatuses(ctx, sha)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 130 {
		t.Errorf("ListStatuses returned %d statuses, want 130", len(list))
	}
	before := countCalls(e.srv, "GET", "/repos/")
	if ok, err := c.HasStatus(ctx, sha, "job0"); err != nil || !ok { // the oldest: on page 2
		t.Errorf("HasStatus(job0) = %v, %v", ok, err)
	}
	if got := countCalls(e.srv, "GET", "/repos/") - before; got != 2 {
		t.Errorf("HasStatus made %d requests, want 2 pages", got)
	}
	before = countCalls(e.srv, "GET", "/repos/")
	c.HasStatus(ctx, sha, "job129") // the newest: on page 1
	if got := countCalls(e.srv, "GET", "/repos/") - before; got != 1 {
		t.Errorf("HasStatus made %d requests, want 1 page", got)
	}
}

// TestClientClockSkew has GitHub report each token's expiry 5 s later than
// it really is, so the client uses a token GitHub has expired: it must
// warn, force a new token and succeed.
func TestClientClockSkew(t *testing.T) {
	e := newEnv(t, time.Second, githubtest.WithTokenLifetime(2*time.Second), githubtest.WithExpirySkew(5*time.Second))
	c := e.client(e.source())
	ctx := context.Background()
	st := Status{State: new("success"), Context: new("build")}
	if err := c.CreateStatus(ctx, sha, st); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // past the real expiry, long before the reported one
	if err := c.CreateStatus(ctx, sha, st); err != nil {
		t.Fatal(err)
	}
	if w := e.warnings(); len(w) != 1 || w[0] != "GitHub API returned 401, force-refreshing token and retrying..." {
		t.Errorf("warnings = %q", w)
	}
	if e.srv.Mints() != 2 {
		t.Errorf("mints = %d, want 2", e.srv.Mints())
	}
	var got []string
	for _, call := range e.srv.Calls() {
		got = append(got, fmt.Sprintf("%s %d %d", strings.SplitN(call.Path, "/", 3)[1], call.Status, call.TokenMint))
	}
	want := "app 201 0, repos 201 1, repos 401 1, app 201 0, repos 201 2"
	if strings.Join(got, ", ") != want {
		t.Errorf("calls: %s\nwant:  %s", strings.Join(got, ", "), want)
	}
	// The forced token went to the cache for other processes.
	if tok, _ := e.source().Token(ctx); tok != e.srv.Tokens()[1] {
		t.Error("the force-refreshed token was not cached")
	}
}

func TestClientRetries(t *testing.T) {
	st := Status{State: new("success"), Context: new("build")}
	t.Run("5xx then success", func(t *testing.T) {
		e := newEnv(t, 300*time.Second)
		e.srv.Fail("POST /repos/", 502, 1)
		e.srv.Fail("POST /repos/", 503, 1)
		if err := e.client(e.source()).CreateStatus(context.Background(), sha, st); err != nil {
			t.Fatal(err)
		}
		if n := countCalls(e.srv, "POST", "/repos/"); n != 3 || e.srv.FaultsLeft() != 0 {
			t.Errorf("%d requests, %d faults left; want 3 and 0", n, e.srv.FaultsLeft())
		}
		if len(e.srv.Statuses("acme", "widgets", sha)) != 1 {
			t.Error("status not stored")
		}
	})
	t.Run("network error then success", func(t *testing.T) {
		e := newEnv(t, 300*time.Second)
		e.srv.HangUp("GET /repos/", 1)
		if _, err := e.client(e.source()).ListStatuses(context.Background(), sha); err != nil {
			t.Fatal(err)
		}
		if e.srv.FaultsLeft() != 0 {
			t.Error("the hang-up was not met")
		}
	})
	t.Run("429 with Retry-After", func(t *testing.T) {
		e := newEnv(t, 300*time.Second)
		e.srv.RateLimit("POST /repos/", 1, time.Second)
		if err := e.client(e.source()).CreateStatus(context.Background(), sha, st); err != nil {
			t.Fatal(err)
		}
		var times []time.Time
		for _, call := range e.srv.Calls() {
			if strings.HasPrefix(call.Path, "/repos/") {
				times = append(times, call.Time)
			}
		}
		if len(times) != 2 {
			t.Fatalf("%d requests, want 2", len(times))
		}
		// The backoff in tests is 10 ms: a second's wait is Retry-After's.
		if gap := times[1].Sub(times[0]); gap < 950*time.Millisecond || gap > 3*time.Second {
			t.Errorf("retried after %v, want the 1 s of Retry-After", gap)
		}
	})
	t.Run("persistent 500", func(t *testing.T) {
		e := newEnv(t, 300*time.Second)
		e.srv.Fail("POST /repos/", 500, -1)
		err := e.client(e.source()).CreateStatus(context.Background(), sha, st)
		want := "github: creating a commit status on 0123456789ab failed: 500 Server Error (after 4 attempts)"
		if msg := e.failed(err); msg != want {
			t.Errorf("error = %q\nwant    %q", msg, want)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != 500 {
			t.Errorf("error is not an *APIError with status 500: %#v", err)
		}
		if n := countCalls(e.srv, "POST", "/repos/"); n != 4 {
			t.Errorf("%d requests, want 4", n)
		}
	})
	t.Run("persistent network error", func(t *testing.T) {
		e := newEnv(t, 300*time.Second)
		c := e.client(e.source())
		if _, err := e.source().Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.srv.Close()
		_, err := c.ListStatuses(context.Background(), sha)
		if msg := e.failed(err); !strings.HasPrefix(msg, "github: listing the commit statuses of 0123456789ab failed after 4 attempts: Get ") {
			t.Errorf("error = %q", msg)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e := newEnv(t, 300*time.Second)
		c := e.client(e.source())
		if _, err := e.source().Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond}
		e.srv.Delay(time.Second)
		start := time.Now()
		_, err := c.ListStatuses(context.Background(), sha)
		if msg := e.failed(err); !strings.Contains(msg, "Client.Timeout exceeded") {
			t.Errorf("error = %q", msg)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func TestClientPersistent401(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	e.srv.Fail("POST /repos/", 401, -1)
	err := e.client(e.source()).CreateStatus(context.Background(), sha, Status{State: new("success"), Context: new("build")})
	if msg := e.failed(err); msg != "github: creating a commit status on 0123456789ab failed: 401 Bad credentials" {
		t.Errorf("error = %q", msg)
	}
	if w := e.warnings(); len(w) != 1 {
		t.Errorf("warnings = %q, want one", w)
	}
	if n := countCalls(e.srv, "POST", "/repos/"); n != 2 || e.srv.Mints() != 2 {
		t.Errorf("%d requests, %d mints; want 2 and 2 (the call retried once, with a new token)", n, e.srv.Mints())
	}
}

func TestClientValidationError(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	err := e.client(e.source()).CreateStatus(context.Background(), sha, Status{State: new("great"), Context: new("build")})
	if msg := e.failed(err); !strings.HasPrefix(msg, "github: creating a commit status on 0123456789ab failed: 422 Validation Failed") {
		t.Errorf("error = %q", msg)
	}
}

// TestNoSecretsInMessages provokes failures in which a server quotes the
// credential it was sent, and checks that no message quotes a token, a JWT
// or the key (env's check runs at the end of every test that uses env).
func TestNoSecretsInMessages(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	ts := e.source()
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// An error body that echoes the token, as a misbehaving proxy might.
	e.srv.Inject(githubtest.Fault{Match: "POST /repos/", Times: -1, Status: 400,
		Body: `{"message": "bad token ` + tok + `"}`})
	err = e.client(ts).CreateStatus(context.Background(), sha, Status{State: new("success")})
	if msg := e.failed(err); !strings.Contains(msg, "bad token [redacted]") {
		t.Errorf("error = %q", msg)
	}
	// A mint refusal that echoes the JWT, from a transport standing in for
	// a proxy, since the fake GitHub does not echo.
	ts2 := NewTokenSource(e.app, t.TempDir(), nil)
	ts2.retry = fastRetry
	ts2.HTTPClient = &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		jwt := credential(req)
		e.mu.Lock()
		e.creds = append(e.creds, jwt)
		e.mu.Unlock()
		return &http.Response{StatusCode: 401, Header: http.Header{}, Request: req,
			Body: io.NopCloser(strings.NewReader(`{"message": "cannot decode ` + jwt + `"}`))}, nil
	})}
	_, err = ts2.Token(context.Background())
	if msg := e.failed(err); !strings.Contains(msg, "401 cannot decode [redacted]") {
		t.Errorf("error = %q", msg)
	}

	if len(e.msgs) < 2 || len(e.creds) < 2 {
		t.Fatalf("the test saw %d messages and %d credentials: it checks nothing", len(e.msgs), len(e.creds))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat), 10 * time.Second},
	}
	for _, tt := range tests {
		got := retryAfter(http.Header{"Retry-After": {tt.value}})
		if got < tt.want-time.Second || got > tt.want {
			t.Errorf("Retry-After %q = %v, want %v", tt.value, got, tt.want)
		}
	}
}

// TestRetryAfterOverBound has GitHub ask for an hour's wait: over the
// bound, the call fails at once, naming the setting, rather than hang the
// build or hammer GitHub.
func TestRetryAfterOverBound(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	e.srv.RateLimit("GET /repos/", 1, time.Hour)
	c := e.client(e.source())
	c.retry.limitWait = 5 * time.Second
	start := time.Now()
	_, err := c.ListStatuses(context.Background(), sha)
	want := "github: listing the commit statuses of 0123456789ab failed: GitHub's secondary rate limit asks to wait 1h0m0s, over TASKRUNNER_GITHUB_MAX_WAIT_SECONDS (5s)"
	if msg := e.failed(err); msg != want {
		t.Errorf("error = %q\nwant    %q", msg, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want an error at once", d)
	}
}

func TestRateLimitKinds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := retryPolicy{minSecondary: time.Minute}
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		kind   string
		wait   time.Duration
	}{
		{"primary", 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1700000030"}}, "", "primary", 31 * time.Second},
		{"primary as 429", 429, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1700000010"}}, "", "primary", 11 * time.Second},
		{"secondary with Retry-After", 403, http.Header{"Retry-After": {"7"}}, "", "secondary", 7 * time.Second},
		{"secondary without Retry-After", 403, http.Header{}, `{"message":"You have exceeded a secondary rate limit."}`, "secondary", time.Minute},
		{"bare 429", 429, http.Header{}, "", "secondary", time.Minute},
		{"permission", 403, http.Header{"X-Ratelimit-Remaining": {"4999"}}, `{"message":"Resource not accessible by integration"}`, "", 0},
		{"server error", 502, http.Header{}, "", "", 0},
	} {
		kind, wait, ok := p.rateLimit(&response{status: tc.status, header: tc.header, body: []byte(tc.body)}, now)
		if kind != tc.kind || wait != tc.wait || ok != (tc.kind != "") {
			t.Errorf("%s: rateLimit = %q, %v, %v; want %q, %v", tc.name, kind, wait, ok, tc.kind, tc.wait)
		}
	}
}

// TestRateLimitShared: once one process has met a rate limit, another
// waits for its end instead of hitting it again.
func TestRateLimitShared(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	e.srv.PrimaryLimit("GET /repos/", 1, time.Second)
	var infos []string
	first := e.client(e.source())
	first.retry.gate = newGate(e.dir)
	first.Info = func(s string) { infos = append(infos, s) }
	if _, err := first.ListStatuses(context.Background(), sha); err != nil {
		t.Fatal(err)
	}
	e.srv.PrimaryLimit("GET /repos/", 1, time.Second)
	second := e.client(e.source())
	second.retry.gate = newGate(e.dir)
	second.Info = first.Info
	// The first call's limit is over: the second meets its own, then a
	// third process waits for that one without a refusal of its own.
	if _, err := second.ListStatuses(context.Background(), sha); err != nil {
		t.Fatal(err)
	}
	e.srv.PrimaryLimit("GET /repos/", 1, 2*time.Second)
	go func() { _, _ = first.ListStatuses(context.Background(), sha) }()
	time.Sleep(300 * time.Millisecond)
	third := e.client(e.source())
	third.retry.gate = newGate(e.dir)
	if _, err := third.ListStatuses(context.Background(), sha); err != nil {
		t.Fatal(err)
	}
	if n := countCalls(e.srv, "GET", "/repos/"); n < 6 {
		t.Errorf("%d calls, want at least 6", n)
	}
	refusals := 0
	for _, c := range e.srv.Calls() {
		if c.Status == 403 {
			refusals++
		}
	}
	if refusals != 3 {
		t.Errorf("%d refusals, want 3 (the third process waited for the second's limit)", refusals)
	}
	if len(infos) < 2 || !strings.HasPrefix(infos[0], "GitHub primary rate limit: waiting ") {
		t.Errorf("info lines = %q", infos)
	}
}

// TestYoungToken401: a token GitHub refuses while it is new is sent again
// as it is, after each of the young waits, before any refresh.
func TestYoungToken401(t *testing.T) {
	e := newEnv(t, 300*time.Second, githubtest.WithReplication(150*time.Millisecond))
	c := e.client(e.source())
	c.youngWaits = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	if err := c.CreateStatus(context.Background(), sha, Status{State: new("success"), Context: new("build")}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, call := range e.srv.Calls() {
		if strings.HasPrefix(call.Path, "/repos/") {
			got = append(got, call.Status)
		}
	}
	if len(got) < 2 || got[len(got)-1] != 201 || e.srv.Mints() != 1 || len(e.warnings()) != 0 {
		t.Errorf("statuses %v, mints %d, warnings %q; want 401s then 201, one mint, no warning", got, e.srv.Mints(), e.warnings())
	}
}
