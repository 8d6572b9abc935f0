package github

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskrunner/taskrunner/internal/github/githubtest"
)

func TestTokenMintsAndWritesCache(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	ts := e.source()
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if e.srv.Mints() != 1 || e.srv.Tokens()[0] != tok {
		t.Fatalf("got a token the server did not mint (mints: %d)", e.srv.Mints())
	}

	path := filepath.Join(e.dir, ".github-token-cache.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("cache file mode = %v, want 0600", mode)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("cache is not a JSON object of strings: %v", err)
	}
	if len(raw) != 6 || raw["mintedAt"] == "" || raw["cachedToken"] != tok || raw["apiUrl"] != e.srv.URL || raw["appId"] != "12345" || raw["installationId"] != "67890" {
		t.Errorf("cache holds keys %v, want exactly cachedToken (the token), cachedExpiresAt, apiUrl, appId, installationId and mintedAt", keys(raw))
	}
	exp, err := time.Parse(time.RFC3339, raw["cachedExpiresAt"])
	if err != nil {
		t.Errorf("cachedExpiresAt: %v", err)
	} else if left := time.Until(exp); left < 59*time.Minute || left > time.Hour {
		t.Errorf("cachedExpiresAt is %v away, want the hour GitHub reported", left)
	}

	entries, _ := os.ReadDir(e.dir)
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	if strings.Join(names, " ") != ".github-token-cache.json .github-token-cache.json.lock" {
		t.Errorf("state directory holds %v, want the cache and its lock only", names)
	}

	// The token is kept in memory: deleting the file changes nothing.
	os.Remove(path)
	if again, err := ts.Token(context.Background()); err != nil || again != tok {
		t.Errorf("second Token = %v, want the same token from memory", err)
	}
	if e.srv.Mints() != 1 {
		t.Errorf("mints = %d, want 1", e.srv.Mints())
	}
	for _, c := range e.srv.Calls() {
		if c.Auth != githubtest.AuthJWT || c.Header.Get("X-GitHub-Api-Version") != "2022-11-28" ||
			c.Header.Get("Accept") != "application/vnd.github+json" || c.Header.Get("User-Agent") != "taskrunner" {
			t.Errorf("mint request %v has headers %v", c, c.Header)
		}
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestTokenWarmCacheNoMint(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	first, err := e.source().Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.source().Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Error("a new TokenSource did not use the cached token")
	}
	if e.srv.Mints() != 1 || len(e.srv.Calls()) != 1 {
		t.Errorf("mints = %d, calls = %d; want 1 and 1", e.srv.Mints(), len(e.srv.Calls()))
	}
}

// TestTokenCacheFromOtherWriter reads a cache written by another program,
// with the format's key names and an ISO 8601 time in another zone.
func TestTokenCacheFromOtherWriter(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	exp := time.Now().Add(30 * time.Minute).In(time.FixedZone("", 2*3600)).Format(time.RFC3339)
	os.WriteFile(filepath.Join(e.dir, CacheFile), []byte(`{"installationId": "67890", "cachedToken": "ghs_other", "cachedExpiresAt": "`+exp+
		`", "appId": "12345", "apiUrl": "`+e.srv.URL+`", "more": 1}`), 0o600)
	tok, err := e.source().Token(context.Background())
	if err != nil || tok != "ghs_other" {
		t.Errorf("Token = %q, %v; want the cached ghs_other", tok, err)
	}
	if len(e.srv.Calls()) != 0 {
		t.Errorf("server got calls %v, want none", e.srv.Calls())
	}
}

func TestTokenRefreshWithinThreshold(t *testing.T) {
	e := newEnv(t, time.Second, githubtest.WithTokenLifetime(2*time.Second))
	// GitHub reports expiry in whole seconds: mint early in a second, so
	// that the reported expiry is 1.5 to 2 s away, above the threshold.
	waitEarlyInSecond()
	ts := e.source()
	first, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ts.Token(context.Background()); again != first || e.srv.Mints() != 1 {
		t.Fatalf("a token with over the threshold left was not reused (mints: %d)", e.srv.Mints())
	}
	time.Sleep(1100 * time.Millisecond)
	second, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Error("a token within the threshold of its expiry was reused")
	}
	// Another process now finds the new token in the cache.
	if third, _ := e.source().Token(context.Background()); third != second {
		t.Error("the renewed token was not cached")
	}
	if e.srv.Mints() != 2 {
		t.Errorf("mints = %d, want 2", e.srv.Mints())
	}
}

func waitEarlyInSecond() {
	if ns := time.Now().Nanosecond(); ns > 4e8 {
		time.Sleep(time.Second - time.Duration(ns) + 10*time.Millisecond)
	}
}

func TestTokenCorruptCache(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := map[string]string{
		"garbage":        "\x00not json",
		"empty":          "",
		"torn":           `{"cachedToken": "ghs_abc", "cachedExp`,
		"other keys":     `{"token": "ghs_abc", "expires_at": "` + future + `"}`,
		"empty token":    `{"cachedToken": "", "cachedExpiresAt": "` + future + `"}`,
		"token with eol": `{"cachedToken": "ghs\nabc", "cachedExpiresAt": "` + future + `"}`,
		"bad time":       `{"cachedToken": "ghs_abc", "cachedExpiresAt": "tomorrow"}`,
		"no time":        `{"cachedToken": "ghs_abc"}`,
		"expired":        `{"cachedToken": "ghs_abc", "cachedExpiresAt": "` + past + `"}`,
		"a list":         `["ghs_abc"]`,
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, 300*time.Second)
			path := filepath.Join(e.dir, CacheFile)
			os.WriteFile(path, []byte(content), 0o600)
			tok, err := e.source().Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if e.srv.Mints() != 1 || tok != e.srv.Tokens()[0] {
				t.Errorf("mints = %d, want one fresh mint", e.srv.Mints())
			}
			if cached, ok := e.source().readCache(); !ok || cached.value != tok {
				t.Error("the cache was not replaced with the new token")
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		e := newEnv(t, 300*time.Second)
		os.Mkdir(filepath.Join(e.dir, CacheFile), 0o755) // a folder: cannot be read, nor renamed over
		if _, err := e.source().Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		if e.srv.Mints() != 1 {
			t.Errorf("mints = %d, want 1", e.srv.Mints())
		}
	})
}

func TestTokenMasking(t *testing.T) {
	for _, actions := range []bool{true, false} {
		t.Run("actions="+strconv.FormatBool(actions), func(t *testing.T) {
			e := newEnv(t, 300*time.Second)
			e.cfg.Actions = actions
			e.app = e.newApp()
			var out bytes.Buffer
			ts := e.source()
			ts.stdout = &out
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ts.Token(context.Background())
			other := e.source()
			var otherOut bytes.Buffer
			other.stdout = &otherOut
			other.Token(context.Background())

			want := ""
			if actions {
				want = "::add-mask::" + tok + "\n"
			}
			// Each process masks the token once, cached or minted: the
			// runner's masks do not reach another job on the runner.
			if out.String() != want || otherOut.String() != want {
				t.Errorf("minting process printed %q, reading one %q; want %q from each", out.String(), otherOut.String(), want)
			}
		})
	}
}

// TestForceRefresh checks that a forced refresh mints, except when
// another process has already replaced the refused token.
func TestForceRefresh(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	ctx := context.Background()
	p1, p2 := e.source(), e.source()
	a, _ := p1.Token(ctx)
	if a2, _ := p2.Token(ctx); a2 != a {
		t.Fatal("processes do not share the token")
	}
	b, err := p1.ForceRefresh(ctx, a)
	if err != nil || b == a {
		t.Fatalf("ForceRefresh = same token or %v; want a new one", err)
	}
	if b2, err := p2.ForceRefresh(ctx, a); err != nil || b2 != b {
		t.Errorf("second process's ForceRefresh did not take the replacement from the cache (%v)", err)
	}
	if e.srv.Mints() != 2 {
		t.Errorf("mints = %d, want 2", e.srv.Mints())
	}
	if c, err := p2.ForceRefresh(ctx, b); err != nil || c == b {
		t.Errorf("ForceRefresh of the cached token did not mint (%v)", err)
	}
	if e.srv.Mints() != 3 {
		t.Errorf("mints = %d, want 3", e.srv.Mints())
	}
	if tok, _ := p1.Token(ctx); tok != b {
		t.Error("Token did not keep its in-memory token")
	}
}

func TestTokenConcurrentInProcess(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	e.srv.Delay(100 * time.Millisecond)
	shared := e.source()
	var wg sync.WaitGroup
	toks := make([]string, 40)
	for i := range toks {
		wg.Go(func() {
			ts := shared
			if i%2 == 1 {
				ts = e.source()
			}
			var err error
			if toks[i], err = ts.Token(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatal("goroutines got different tokens")
		}
	}
	if e.srv.Mints() != 1 {
		t.Errorf("mints = %d, want 1", e.srv.Mints())
	}
}

func TestMintErrors(t *testing.T) {
	tests := []struct {
		name  string
		opts  []githubtest.Option
		fault *githubtest.Fault
		want  string
	}{
		{"wrong app id", []githubtest.Option{githubtest.WithAppID(999)}, nil,
			"github: minting an installation token failed: 401 Integration not found; check GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY"},
		{"wrong installation", []githubtest.Option{githubtest.WithInstallations(1)}, nil,
			"github: minting an installation token failed: 404 Not Found; check GITHUB_INSTALLATION_ID"},
		{"not json", nil, &githubtest.Fault{Status: 201, Body: "<html>hello</html>"},
			"github: minting an installation token failed: GitHub answered 201 but the response is not JSON"},
		{"no token", nil, &githubtest.Fault{Status: 201, Body: `{"expires_at": "2030-01-01T00:00:00Z"}`},
			"GitHub answered 201 but the response has no token"},
		{"no expiry", nil, &githubtest.Fault{Status: 201, Body: `{"token": "ghs_x"}`},
			"GitHub answered 201 but the response has no expires_at"},
		{"bad expiry", nil, &githubtest.Fault{Status: 201, Body: `{"token": "ghs_x", "expires_at": "in an hour"}`},
			`GitHub answered 201 but its expires_at "in an hour" is not an ISO 8601 time`},
		{"error page", nil, &githubtest.Fault{Status: 400, Body: "<html>Bad</html>"},
			"github: minting an installation token failed: 400 Bad Request (the response is not JSON)"},
		{"outage", nil, &githubtest.Fault{Status: 503, Times: -1},
			"github: minting an installation token failed: 503 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 300*time.Second, tt.opts...)
			// The settings name the default App and installation.
			e.cfg.AppID = strconv.FormatInt(githubtest.DefaultAppID, 10)
			e.cfg.InstallationID = strconv.FormatInt(githubtest.DefaultInstallationID, 10)
			e.app = e.newApp()
			if tt.fault != nil {
				f := *tt.fault
				f.Match = "POST /app/"
				if f.Times == 0 {
					f.Times = 1
				}
				e.srv.Inject(f)
			}
			_, err := e.source().Token(context.Background())
			if msg := e.failed(err); !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q\nwant it to contain %q", msg, tt.want)
			}
			if _, err := os.Stat(filepath.Join(e.dir, CacheFile)); err == nil {
				t.Error("a failed mint wrote the cache")
			}
		})
	}
}

func TestMintRetriesOutage(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	e.srv.Fail("POST /app/", 502, 2)
	if _, err := e.source().Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := countCalls(e.srv, "POST", "/app/"); got != 3 || e.srv.Mints() != 1 {
		t.Errorf("%d mint requests, %d mints; want 3 and 1", got, e.srv.Mints())
	}
}

// BenchmarkTokenWarm measures a new process's first token with a warm
// file cache, less the process start: lock, read, parse, unlock.
func BenchmarkTokenWarm(b *testing.B) {
	e := newEnv(b, 300*time.Second)
	if _, err := e.source().Token(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.source().Token(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if e.srv.Mints() != 1 {
		b.Fatalf("mints = %d, want 1", e.srv.Mints())
	}
}

// TestTokenCachePerApp: an entry of another API, App or installation, or
// one that does not say whose it is, is a miss; the new entry says whose
// it is, beside the fields the tool taskrunner succeeds reads.
func TestTokenCachePerApp(t *testing.T) {
	exp := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	for name, fields := range map[string]string{
		"no owner fields":    ``,
		"other API":          `, "apiUrl": "https://ghe.example/api/v3", "appId": "12345", "installationId": "67890"`,
		"other App":          `, "apiUrl": "URL", "appId": "999", "installationId": "67890"`,
		"other installation": `, "apiUrl": "URL", "appId": "12345", "installationId": "1"`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, 300*time.Second)
			path := filepath.Join(e.dir, CacheFile)
			fields = strings.ReplaceAll(fields, "URL", e.srv.URL)
			os.WriteFile(path, []byte(`{"cachedToken": "ghs_other", "cachedExpiresAt": "`+exp+`"`+fields+`}`), 0o600)
			tok, err := e.source().Token(context.Background())
			if err != nil || tok == "ghs_other" || e.srv.Mints() != 1 {
				t.Fatalf("Token = %v (ghs_other: %v), mints = %d; want a new token", err, tok == "ghs_other", e.srv.Mints())
			}
			b, _ := os.ReadFile(path)
			var got map[string]any
			json.Unmarshal(b, &got)
			if got["cachedToken"] != tok || got["apiUrl"] != e.srv.URL || got["appId"] != "12345" || got["installationId"] != "67890" || got["cachedExpiresAt"] == nil {
				t.Errorf("cache = %v", got)
			}
		})
	}
}

// TestMintClockCorrected: with this machine's clock ahead of GitHub's, the
// first JWT is refused and the second, on GitHub's time from its Date
// header, gets the token.
func TestMintClockCorrected(t *testing.T) {
	e := newEnv(t, 300*time.Second, githubtest.WithClock(-3*time.Minute))
	if _, err := e.source().Token(context.Background()); err != nil {
		t.Fatal(e.failed(err))
	}
	if n := countCalls(e.srv, "POST", "/app/"); n != 2 || e.srv.Mints() != 1 {
		t.Errorf("mint calls = %d, mints = %d; want 2 and 1", n, e.srv.Mints())
	}
}

// TestMintClockHint: a refusal of the JWT's times that the Date header
// cannot fix names the clock, not the App id and key.
func TestMintClockHint(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	body := `{"message":"'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"}`
	e.srv.Inject(githubtest.Fault{Match: "POST /app/", Status: 401, Body: body, Times: 2})
	_, err := e.source().Token(context.Background())
	msg := e.failed(err)
	if !strings.HasSuffix(msg, "; check this machine's clock: GitHub finds the App's JWT issued or expiring at the wrong time") {
		t.Errorf("error = %q, want the clock named", msg)
	}
	if n := countCalls(e.srv, "POST", "/app/"); n != 2 {
		t.Errorf("mint calls = %d, want 2 (one retry on GitHub's time)", n)
	}
}

// TestMintFailsCachedServes: a failed mint while the cached token is still
// valid hands out that token, with one warning; without one, the failure
// is an error.
func TestMintFailsCachedServes(t *testing.T) {
	e := newEnv(t, 15*time.Minute, githubtest.WithTokenLifetime(10*time.Minute))
	first, err := e.source().Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Fail("POST /app/", 503, 100)
	var warns []string
	ts := e.source()
	ts.Warn = func(s string) { warns = append(warns, s); e.mu.Lock(); e.msgs = append(e.msgs, s); e.mu.Unlock() }
	got, err := ts.Token(context.Background())
	if err != nil || got != first {
		t.Fatalf("Token = %v (cached one: %v), want the cached token", err, got == first)
	}
	if len(warns) != 1 || !strings.HasPrefix(warns[0], "using the cached GitHub token, valid for ") || !strings.HasSuffix(warns[0], "more: github: minting an installation token failed: 503 Service Unavailable (after 4 attempts)") {
		t.Errorf("warnings = %q", warns)
	}
	// ForceRefresh replaces a token GitHub refused: the cached one is no
	// stand-in then.
	if _, err := ts.ForceRefresh(context.Background(), first); err == nil {
		t.Error("ForceRefresh handed out the refused token")
	}
	os.Remove(filepath.Join(e.dir, CacheFile))
	if _, err := e.source().Token(context.Background()); err == nil {
		t.Error("with no cached token, a failed mint was no error")
	}
}
