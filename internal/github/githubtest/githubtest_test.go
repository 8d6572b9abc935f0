package githubtest

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// newServer starts a server that the test closes when it ends.
func newServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	t.Cleanup(s.Close)
	return s
}

// sign makes an RS256 JWT with the given claims and key.
func sign(t *testing.T, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// appJWT is a JWT made as the client makes it: iat backdated by 60 s, exp
// 10 minutes ahead.
func appJWT(t *testing.T, s *Server) string {
	now := time.Now()
	return sign(t, s.PrivateKey(), jwt.MapClaims{
		"iss": s.AppID, "iat": now.Add(-60 * time.Second).Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
}

// answer is an HTTP answer with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// message returns the "message" of a GitHub error body.
func (a answer) message(t *testing.T) string {
	t.Helper()
	var e struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return e.Message
}

// do sends a request with an optional Authorization header and JSON body.
func do(t *testing.T, method, url, auth, body string) answer {
	t.Helper()
	a, err := tryDo(http.DefaultClient, method, url, auth, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tryDo(c *http.Client, method, url, auth, body string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}, err
}

// tokenURL is the mint endpoint for the server's installation.
func tokenURL(s *Server) string {
	return fmt.Sprintf("%s/app/installations/%d/access_tokens", s.APIURL, s.InstallationID)
}

// mintAnswer is the body of a successful mint.
type mintAnswer struct {
	Token               string            `json:"token"`
	ExpiresAt           string            `json:"expires_at"`
	Permissions         map[string]string `json:"permissions"`
	RepositorySelection string            `json:"repository_selection"`
}

// mint obtains an installation token.
func mint(t *testing.T, s *Server) mintAnswer {
	t.Helper()
	a := do(t, "POST", tokenURL(s), "Bearer "+appJWT(t, s), "")
	if a.status != http.StatusCreated {
		t.Fatalf("mint: %d %s", a.status, a.body)
	}
	var m mintAnswer
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const (
	shaA = "0123456789abcdef0123456789abcdef01234567"
	shaB = "89abcdef0123456789abcdef0123456789abcdef"
)

func statusURL(s *Server, sha string) string {
	return s.APIURL + "/repos/octo/repo/statuses/" + sha
}

func listURL(s *Server, sha string) string {
	return s.APIURL + "/repos/octo/repo/commits/" + sha + "/statuses"
}

// postStatus posts a status with a token and returns the answer.
func postStatus(t *testing.T, s *Server, tok, sha, body string) answer {
	t.Helper()
	return do(t, "POST", statusURL(s, sha), "token "+tok, body)
}

func TestUnknownRoutes(t *testing.T) {
	s := newServer(t)
	tok := mint(t, s).Token
	for _, tc := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/app/installations/67890/access_tokens"},
		{"POST", "/app/installations/67890/access_tokens/"},
		{"POST", "/repos/octo/repo/commits/" + shaA + "/statuses"},
		{"GET", "/repos/octo/repo/statuses/" + shaA},
		{"POST", "/repos/octo/repo/statuses/"},
		{"GET", "/repos/octo/repo/commits/" + shaA + "/status"},
		{"DELETE", "/repos/octo/repo/statuses/" + shaA},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			a := do(t, tc.method, s.URL+tc.path, "token "+tok, "")
			if a.status != http.StatusNotFound || a.message(t) != "Not Found" {
				t.Errorf("got %d %s, want 404 Not Found", a.status, a.body)
			}
			var e apiError
			json.Unmarshal(a.body, &e)
			if e.DocumentationURL != docURL {
				t.Errorf("documentation_url %q, want %q", e.DocumentationURL, docURL)
			}
		})
	}
}

func TestCallsAreRecordedWithoutSecrets(t *testing.T) {
	s := newServer(t)
	jwtStr := appJWT(t, s)
	a := do(t, "POST", tokenURL(s), "Bearer "+jwtStr, "")
	var m mintAnswer
	json.Unmarshal(a.body, &m)
	postStatus(t, s, m.Token, shaA, `{"state":"success"}`)
	do(t, "GET", listURL(s, shaA)+"?per_page=5", "Bearer "+m.Token, "")
	do(t, "GET", s.URL+"/nowhere", "", "")
	do(t, "POST", statusURL(s, shaA), "token ghs_unknown", `{"state":"success"}`)

	calls := s.Calls()
	want := []struct {
		method, path string
		status       int
		auth         AuthKind
		mint         int
	}{
		{"POST", "/app/installations/67890/access_tokens", 201, AuthJWT, 0},
		{"POST", "/repos/octo/repo/statuses/" + shaA, 201, AuthToken, 1},
		{"GET", "/repos/octo/repo/commits/" + shaA + "/statuses", 200, AuthToken, 1},
		{"GET", "/nowhere", 404, AuthNone, 0},
		{"POST", "/repos/octo/repo/statuses/" + shaA, 401, AuthToken, 0},
	}
	if len(calls) != len(want) {
		t.Fatalf("got %d calls, want %d: %v", len(calls), len(want), calls)
	}
	for i, w := range want {
		c := calls[i]
		if c.Method != w.method || c.Path != w.path || c.Status != w.status || c.Auth != w.auth || c.TokenMint != w.mint || c.Fault {
			t.Errorf("call %d = %v, want %+v", i, c, w)
		}
		if c.Time.IsZero() || c.Header.Get("Accept") != "application/vnd.github+json" {
			t.Errorf("call %d: time %v, Accept %q", i, c.Time, c.Header.Get("Accept"))
		}
		for _, secret := range []string{m.Token, jwtStr} {
			if strings.Contains(fmt.Sprintf("%v %+v", c, c), secret) {
				t.Errorf("call %d shows a secret: %+v", i, c)
			}
		}
	}
	if got := calls[2].Query; got != "per_page=5" {
		t.Errorf("query %q", got)
	}
	if got := calls[0].Header.Get("Authorization"); got != "Bearer [redacted]" {
		t.Errorf("recorded Authorization %q", got)
	}
	if s.Mints() != 1 || len(s.Tokens()) != 1 || s.Tokens()[0] != m.Token {
		t.Errorf("Mints %d, Tokens %v", s.Mints(), s.Tokens())
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	const clients, posts = 16, 5
	var wg sync.WaitGroup
	tokens := make([]string, clients)
	errs := make(chan error, clients*posts*2)
	jwtStr := appJWT(t, s) // GitHub lets a JWT be used until it expires
	for i := range clients {
		wg.Go(func() {
			a, err := tryDo(http.DefaultClient, "POST", tokenURL(s), "Bearer "+jwtStr, "")
			if err != nil || a.status != 201 {
				errs <- fmt.Errorf("mint: %v %d %s", err, a.status, a.body)
				return
			}
			var m mintAnswer
			json.Unmarshal(a.body, &m)
			tokens[i] = m.Token
			for j := range posts {
				body := fmt.Sprintf(`{"state":"pending","context":"c%d-%d"}`, i, j)
				a, err := tryDo(http.DefaultClient, "POST", statusURL(s, shaA), "token "+m.Token, body)
				if err != nil || a.status != 201 {
					errs <- fmt.Errorf("post: %v %d %s", err, a.status, a.body)
				}
				a, err = tryDo(http.DefaultClient, "GET", listURL(s, shaA), "token "+m.Token, "")
				if err != nil || a.status != 200 {
					errs <- fmt.Errorf("list: %v %d %s", err, a.status, a.body)
				}
			}
		})
		// The control API is used while requests are in flight.
		wg.Go(func() {
			s.Calls()
			s.Mints()
			s.Statuses("octo", "repo", shaA)
			s.Inject(Fault{Match: "/never", Times: 1, Status: 500})
			s.FaultsLeft()
			s.Delay(0)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.Mints() != clients {
		t.Errorf("Mints = %d, want %d", s.Mints(), clients)
	}
	seen := map[string]bool{}
	for _, tok := range tokens {
		if seen[tok] {
			t.Errorf("token handed out twice")
		}
		seen[tok] = true
	}
	sts := s.Statuses("octo", "repo", shaA)
	if len(sts) != clients*posts {
		t.Fatalf("%d statuses, want %d", len(sts), clients*posts)
	}
	ids := map[int64]bool{}
	for i, st := range sts {
		if ids[st.ID] || (i > 0 && st.ID >= sts[i-1].ID) {
			t.Errorf("status ids not unique and decreasing at %d", i)
		}
		ids[st.ID] = true
	}
	if n := len(s.Calls()); n != clients*(1+2*posts) {
		t.Errorf("%d calls recorded, want %d", n, clients*(1+2*posts))
	}
}

// jsonBody encodes v for a request.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestEnterprisePaths(t *testing.T) {
	t.Parallel()
	s := newServer(t, WithEnterprisePaths())
	if s.APIURL != s.URL+"/api/v3" {
		t.Fatalf("APIURL = %q", s.APIURL)
	}
	m := mint(t, s)
	if a := do(t, "GET", listURL(s, shaA), "Bearer "+m.Token, ""); a.status != 200 {
		t.Errorf("under /api/v3: %d %s", a.status, a.body)
	}
	if a := do(t, "GET", s.URL+"/repos/octo/repo/commits/"+shaA+"/statuses", "Bearer "+m.Token, ""); a.status != 404 {
		t.Errorf("outside /api/v3: %d, want 404", a.status)
	}
	if c := s.Calls(); c[len(c)-2].Path != "/api/v3/repos/octo/repo/commits/"+shaA+"/statuses" {
		t.Errorf("call recorded as %v", c[len(c)-2])
	}
}
