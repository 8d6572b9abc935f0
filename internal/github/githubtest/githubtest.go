// Package githubtest is a fake GitHub REST API for tests: an httptest server
// that mints GitHub App installation tokens and stores commit statuses the
// way api.github.com does, including its error answers, so that the real
// client is tested against GitHub's documented behaviour rather than against
// its own assumptions.
//
// It serves:
//
//	POST /app/installations/{installation_id}/access_tokens  (App JWT)
//	POST /repos/{owner}/{repo}/statuses/{sha}                (installation token)
//	GET  /repos/{owner}/{repo}/commits/{ref}/statuses        (installation token)
//
// and answers anything else with GitHub's 404. Tests can make it fail
// (Fail, RateLimit, HangUp, Inject), slow it down (Delay), expire its
// tokens (ExpireAllTokens), and inspect what it saw (Calls, Mints, Statuses).
//
// Nothing is global except the App's RSA key, which is generated once per
// process because generating it is slow; every Server is otherwise
// independent and safe for concurrent use.
package githubtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Defaults used by New.
const (
	DefaultAppID          int64 = 12345
	DefaultClientID             = "Iv23liTaskrunnerTest"
	DefaultInstallationID int64 = 67890
	DefaultTokenLifetime        = time.Hour
)

// docURL is the documentation_url GitHub puts in most error bodies.
const docURL = "https://docs.github.com/rest"

// appKey is the test App's private key, shared by every Server of the
// process: a 2048-bit key takes long enough to generate that doing it per
// test would dominate the suite's run time.
var appKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("githubtest: generating the App key: " + err.Error())
	}
	return k
})

// Server is a running fake GitHub API. Create it with New and stop it with
// Close. Its exported fields are fixed by New; read them, do not change them.
type Server struct {
	// URL is the API base URL, like "http://127.0.0.1:41234" (no final slash),
	// to use in place of https://api.github.com.
	URL string
	// APIURL is the API base URL to configure: URL, or URL+"/api/v3" with
	// WithEnterprisePaths.
	APIURL string
	// AppID is the GitHub App's id; a JWT's iss must name it (or ClientID).
	AppID int64
	// ClientID is the App's client id, which GitHub also accepts as iss.
	ClientID string
	// InstallationID is the first installation of the App that can mint tokens.
	InstallationID int64

	ts  *httptest.Server
	key *rsa.PrivateKey

	mu            sync.Mutex
	installations map[int64]bool
	lifetime      time.Duration
	skew          time.Duration
	bearerOnly    bool
	tokenLen      int           // characters after "ghs_" in a token
	replication   time.Duration // how long a new token is refused
	clock         time.Duration // how far the server's clock is ahead of the real time
	prefix        string        // the API's path, "/api/v3" on an Enterprise Server
	delay         time.Duration
	tokens        map[string]*token // by token value
	minted        []string          // token values in mint order
	issued        []string          // tokens made by Issue
	statuses      map[string][]Status
	nextStatusID  int64
	faults        []*Fault
	calls         []Call
}

// Option configures a Server in New.
type Option func(*Server)

// WithAppID sets the App id that a JWT's iss must carry (default 12345).
func WithAppID(id int64) Option {
	return func(s *Server) { s.AppID = id }
}

// WithInstallations sets the installation ids that can mint tokens (default
// 67890); any other id gets GitHub's 404. The first one becomes
// Server.InstallationID.
func WithInstallations(ids ...int64) Option {
	return func(s *Server) {
		s.installations = make(map[int64]bool, len(ids))
		for _, id := range ids {
			s.installations[id] = true
		}
		if len(ids) > 0 {
			s.InstallationID = ids[0]
		}
	}
}

// WithTokenLifetime sets how long a minted installation token really works
// (GitHub: one hour). Tests of expiry use a few seconds.
func WithTokenLifetime(d time.Duration) Option {
	return func(s *Server) { s.lifetime = d }
}

// WithExpirySkew makes the expires_at reported for a token differ from its
// real expiry by d, as a clock skew between GitHub and the client would:
// with +5s the client believes every token lives 5 s longer than it does,
// and requests in those 5 s get 401 Bad credentials.
func WithExpirySkew(d time.Duration) Option {
	return func(s *Server) { s.skew = d }
}

// WithBearerOnly makes the server refuse installation tokens sent with the
// "token" scheme, 401 Bad credentials, as the test servers written for the
// tool taskrunner succeeds do. GitHub itself takes both "token" and
// "Bearer"; its documentation uses "Bearer".
func WithBearerOnly() Option {
	return func(s *Server) { s.bearerOnly = true }
}

// WithEnterprisePaths serves the API under /api/v3, as a GitHub Enterprise
// Server does: the API's base URL is then URL+"/api/v3", and any other path
// is not found. Calls record the
// full path; faults match the path after the prefix.
func WithEnterprisePaths() Option {
	return func(s *Server) { s.prefix = "/api/v3" }
}

// WithClock sets the server's clock d ahead of the real time (behind, for
// a negative d), as a machine whose clock is off sees GitHub: the server
// checks JWT times and writes its Date header by that clock.
func WithClock(d time.Duration) Option {
	return func(s *Server) { s.clock = d }
}

// WithReplication makes the server refuse each token it mints, 401 Bad
// credentials, for d after minting, as GitHub may while a new token
// replicates.
func WithReplication(d time.Duration) Option {
	return func(s *Server) { s.replication = d }
}

// WithLongTokens makes the server mint tokens in GitHub's new, longer
// format, about 520 characters: tokens are opaque, of no fixed length.
func WithLongTokens() Option {
	return func(s *Server) { s.tokenLen = 516 }
}

// New starts a fake GitHub API on 127.0.0.1. Call Close when done, usually
// with t.Cleanup(s.Close).
func New(opts ...Option) *Server {
	s := &Server{
		AppID:          DefaultAppID,
		ClientID:       DefaultClientID,
		InstallationID: DefaultInstallationID,
		key:            appKey(),
		installations:  map[int64]bool{DefaultInstallationID: true},
		lifetime:       DefaultTokenLifetime,
		tokens:         map[string]*token{},
		statuses:       map[string][]Status{},
		nextStatusID:   30000000001,
	}
	for _, o := range opts {
		o(s)
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	s.APIURL = s.URL + s.prefix
	return s
}

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.ts.Close() }

// PrivateKey returns the App's RSA private key, for tests that sign their
// own JWTs.
func (s *Server) PrivateKey() *rsa.PrivateKey { return s.key }

// PrivateKeyPEM returns the App's private key as GitHub hands it out: a
// PKCS#1 "RSA PRIVATE KEY" PEM block.
func (s *Server) PrivateKeyPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{
		Type:  "RSA PRIVATE KEY",
		Bytes: x509.MarshalPKCS1PrivateKey(s.key),
	}))
}

// Delay makes every later answer wait d before it is sent (0 turns it off).
// A request whose client gives up while waiting is recorded with Status 0.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// AuthKind is how a request authenticated.
type AuthKind int

// Kinds of authentication, told apart by the Authorization header's shape
// (a JWT has three dot-separated parts), not by whether it was valid.
const (
	AuthNone  AuthKind = iota // no Authorization header
	AuthJWT                   // Bearer with a JWT
	AuthToken                 // "token X", or Bearer with something else
	AuthOther                 // any other scheme, e.g. Basic
)

// String returns "none", "jwt", "token" or "other".
func (k AuthKind) String() string {
	switch k {
	case AuthNone:
		return "none"
	case AuthJWT:
		return "jwt"
	case AuthToken:
		return "token"
	}
	return "other"
}

// Call is one request the server received. It holds no secret, so tests
// may print it: the Authorization header is redacted, and a token is named
// by its mint number instead of its value.
type Call struct {
	Time   time.Time // when the request arrived
	Method string
	Path   string // URL path, without the query
	Query  string // raw query
	Status int    // status answered; 0 if the connection was hung up or the client left
	Auth   AuthKind
	// TokenMint is the number (1 for the first, as counted by Mints) of the
	// installation token the request presented, or 0 if it presented none
	// this server minted. Two calls with different TokenMint used different
	// tokens.
	TokenMint int
	Fault     bool        // answered by an injected fault, not by the API
	Header    http.Header // request headers, Authorization redacted
}

// String describes the call in one line, like
// "POST /repos/o/r/statuses/abc 201 token#1".
func (c Call) String() string {
	auth := c.Auth.String()
	if c.TokenMint > 0 {
		auth += fmt.Sprintf("#%d", c.TokenMint)
	}
	s := fmt.Sprintf("%s %s %d %s", c.Method, c.Path, c.Status, auth)
	if c.Fault {
		s += " (fault)"
	}
	return s
}

// Calls returns every request received so far, in the order they were
// answered.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// serve is the server's handler: it records the call, applies the delay and
// the injected faults, and then answers like GitHub.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	c := &Call{
		Time:   time.Now(),
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.RawQuery,
		Auth:   authKind(r.Header.Get("Authorization")),
		Header: redact(r.Header),
	}
	defer func() {
		c.Status = rec.status
		s.mu.Lock()
		s.calls = append(s.calls, *c)
		s.mu.Unlock()
	}()

	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	setCommonHeaders(rec)
	rec.Header().Set("Date", time.Now().Add(s.clock).UTC().Format(http.TimeFormat))
	if s.prefix != "" {
		rest, ok := strings.CutPrefix(r.URL.Path, s.prefix)
		if !ok || !strings.HasPrefix(rest, "/") {
			writeError(rec, http.StatusNotFound, "Not Found")
			return
		}
		r.URL.Path = rest
	}
	if f := s.takeFault(r); f != nil {
		if f.Delay > 0 {
			// The server notices a client that leaves only once it has
			// read the request's body.
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f.Status == 0 && !f.HangUp {
			s.route(rec, r, c)
			return
		}
		c.Fault = true
		s.answerFault(rec, w, f)
		return
	}
	s.route(rec, r, c)
}

// route dispatches a request to the endpoint it names. Unknown paths and
// known paths with another method get GitHub's 404.
func (s *Server) route(w http.ResponseWriter, r *http.Request, c *Call) {
	p := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	for _, seg := range p {
		if seg == "" {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
	}
	switch {
	case r.Method == http.MethodPost && len(p) == 4 &&
		p[0] == "app" && p[1] == "installations" && p[3] == "access_tokens":
		s.createToken(w, r, p[2])
	case r.Method == http.MethodPost && len(p) == 5 && p[0] == "repos" && p[3] == "statuses":
		s.createStatus(w, r, c, p[1], p[2], p[4])
	case r.Method == http.MethodGet && len(p) == 6 &&
		p[0] == "repos" && p[3] == "commits" && p[5] == "statuses":
		s.listStatuses(w, r, c, p[1], p[2], p[4])
	default:
		writeError(w, http.StatusNotFound, "Not Found")
	}
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// setCommonHeaders sets the headers every api.github.com answer carries.
func setCommonHeaders(w http.ResponseWriter) {
	id := make([]byte, 8)
	rand.Read(id)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Server", "github.com")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	h.Set("X-GitHub-Request-Id", strings.ToUpper(hex.EncodeToString(id)))
}

// apiError is the JSON body of GitHub's error answers.
type apiError struct {
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url"`
	Status           string       `json:"status"`
}

// fieldError is one entry of a 422 "Validation Failed" answer.
type fieldError struct {
	Resource string `json:"resource"`
	Code     string `json:"code"`
	Field    string `json:"field"`
	Message  string `json:"message,omitempty"`
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, apiError{Message: message, DocumentationURL: docURL, Status: fmt.Sprint(status)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("githubtest: encoding an answer: " + err.Error())
	}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// authKind classifies an Authorization header value.
func authKind(h string) AuthKind {
	if h == "" {
		return AuthNone
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		if strings.Count(strings.TrimSpace(cred), ".") == 2 {
			return AuthJWT
		}
		return AuthToken
	case "token":
		return AuthToken
	}
	return AuthOther
}

// redact copies the headers with the Authorization credentials hidden.
func redact(h http.Header) http.Header {
	c := h.Clone()
	if v := c.Get("Authorization"); v != "" {
		scheme, _, _ := strings.Cut(v, " ")
		c.Set("Authorization", scheme+" [redacted]")
	}
	return c
}
