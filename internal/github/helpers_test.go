package github

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/github/githubtest"
)

// env is a fake GitHub, an App set up for it and a state directory. Every
// error and warning a test reports through it is checked, when the test
// ends, for tokens, JWTs and the private key.
type env struct {
	t   testing.TB
	srv *githubtest.Server
	cfg config.GitHub
	app *App
	dir string

	mu    sync.Mutex
	creds []string // every credential sent to the server
	msgs  []string // every error and warning seen
	warns []string
}

func newEnv(t testing.TB, threshold time.Duration, opts ...githubtest.Option) *env {
	t.Helper()
	srv := githubtest.New(append([]githubtest.Option{githubtest.WithBearerOnly()}, opts...)...)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.cfg = config.GitHub{
		APIURL:           srv.URL,
		AppID:            strconv.FormatInt(srv.AppID, 10),
		InstallationID:   strconv.FormatInt(srv.InstallationID, 10),
		PrivateKey:       srv.PrivateKeyPEM(),
		Owner:            "acme",
		Repository:       "acme/widgets",
		RefreshThreshold: threshold,
	}
	e.app = e.newApp()
	t.Cleanup(e.checkNoSecrets)
	return e
}

func (e *env) newApp() *App {
	e.t.Helper()
	app, err := NewApp(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return app
}

// fastRetry keeps the retry count but not the waits, except a Retry-After.
var fastRetry = retryPolicy{attempts: 4, backoff: 10 * time.Millisecond, maxWait: 5 * time.Second,
	limitWait: 10 * time.Second, minSecondary: time.Second}

// source returns a new TokenSource, as a new process would make.
func (e *env) source() *TokenSource {
	ts := NewTokenSource(e.app, e.dir, nil)
	ts.HTTPClient = e.httpClient()
	ts.retry = fastRetry
	return ts
}

func (e *env) client(ts *TokenSource) *Client {
	c := NewClient(e.app, ts)
	c.HTTPClient = e.httpClient()
	c.retry = fastRetry
	c.youngWaits = nil // TestYoungToken401 sets its own
	c.Warn = func(s string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.warns = append(e.warns, s)
		e.msgs = append(e.msgs, s)
	}
	return c
}

func (e *env) httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: recordCreds{e}}
}

// recordCreds remembers the credential of each request it sends.
type recordCreds struct{ e *env }

func (r recordCreds) RoundTrip(req *http.Request) (*http.Response, error) {
	r.e.mu.Lock()
	r.e.creds = append(r.e.creds, credential(req))
	r.e.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// failed records err, which must not be nil, for the secrets check and
// returns its message.
func (e *env) failed(err error) string {
	e.t.Helper()
	if err == nil {
		e.t.Fatal("got no error, want one")
	}
	msg := err.Error()
	e.mu.Lock()
	e.msgs = append(e.msgs, msg)
	e.mu.Unlock()
	if strings.Contains(msg, "\n") {
		e.t.Errorf("error is more than one line: %q", msg)
	}
	return msg
}

func (e *env) warnings() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.warns...)
}

// checkNoSecrets fails the test if any recorded message holds a token the
// server minted, a credential sent to it, or a piece of the private key.
func (e *env) checkNoSecrets() {
	e.mu.Lock()
	defer e.mu.Unlock()
	secrets := append(e.srv.Tokens(), e.creds...)
	for _, msg := range e.msgs {
		for _, s := range secrets {
			if quotes(msg, s, 20) {
				e.t.Errorf("message holds a token or JWT: %q", msg)
			}
		}
		assertNoKey(e.t, msg, e.cfg.PrivateKey)
	}
}

// quotes reports whether msg holds secret or any n bytes in a row of it,
// so that a truncated copy is caught too.
func quotes(msg, secret string, n int) bool {
	if secret == "" {
		return false
	}
	if len(secret) <= n {
		return strings.Contains(msg, secret)
	}
	for i := 0; i+n <= len(secret); i++ {
		if strings.Contains(msg, secret[i:i+n]) {
			return true
		}
	}
	return false
}

// countCalls counts the server's calls with method and a path starting with
// prefix.
func countCalls(srv *githubtest.Server, method, prefix string) int {
	n := 0
	for _, c := range srv.Calls() {
		if c.Method == method && strings.HasPrefix(c.Path, prefix) {
			n++
		}
	}
	return n
}

const sha = "0123456789abcdef0123456789abcdef01234567"
