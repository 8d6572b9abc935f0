package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/taskrunner/taskrunner/internal/flock"
)

// Names of the token cache and its lock in the state directory. The lock is
// a separate file because each write of the cache renames a new file over
// it, which would drop a lock held on the old one.
const (
	CacheFile     = ".github-token-cache.json"
	CacheLockFile = ".github-token-cache.json.lock"
)

// lockWait bounds the wait for the token cache lock. Its holder gives up
// minting after mintTimeout, so a longer wait means it is stuck (stopped,
// say), and failing beats hanging the build.
const lockWait = mintTimeout + time.Minute

// cacheEntry is the token cache file's content. The names of the token and
// its expiry are shared with the tool taskrunner succeeds, which ignores the
// other fields. Those say whose token it is: processes of other Apps or
// installations share the file on a self-hosted runner, and GitHub answers
// a token of the wrong one with 403 or 404, from which nothing recovers.
type cacheEntry struct {
	Token          string    `json:"cachedToken"`
	ExpiresAt      time.Time `json:"cachedExpiresAt"`
	APIURL         string    `json:"apiUrl,omitempty"`
	AppID          string    `json:"appId,omitempty"`
	InstallationID string    `json:"installationId,omitempty"`
	// MintedAt is when the token was minted: GitHub may refuse a token for
	// its first seconds, while it replicates.
	MintedAt time.Time `json:"mintedAt,omitzero"`
}

// TokenSource hands out installation tokens of one App, shared by every
// process on the machine that uses the same state directory.
//
// A token with at least the App's refresh threshold left is kept in memory
// and used without touching the disk. Otherwise the source takes the lock
// on the cache file and, under it, uses the cached token if that has the
// threshold left, or else mints a new one and writes it to the cache, so
// that any number of processes asking at once cause a single mint.
//
// A TokenSource is safe for concurrent use.
type TokenSource struct {
	// HTTPClient sends the minting requests; nil means a client with
	// RequestTimeout. Set it before the first call.
	HTTPClient *http.Client
	// Warn prints a warning line, Info an info line; nil discards it.
	Warn, Info func(string)

	app    *App
	dir    string
	stdout io.Writer
	now    func() time.Time
	retry  retryPolicy

	// sem, a mutex that a waiter can give up on, guards tok and serializes
	// the callers of this source, so that one process asks the cache and
	// GitHub once at a time.
	sem chan struct{}
	tok token // the last token this source got

	maskMu sync.Mutex
	masked map[string]bool // tokens this process has masked
}

// NewTokenSource returns a source of installation tokens for app that
// shares them through the cache file in stateDir. When the App runs under
// GitHub Actions, each token it hands out, minted, cached or fixed, is
// masked with "::add-mask::" on stdout once per source, before it is
// returned: the runner's masks do not reach a second job on the same
// runner that takes the token from the cache.
func NewTokenSource(app *App, stateDir string, stdout io.Writer) *TokenSource {
	retry := app.retryPolicy()
	retry.gate = newGate(stateDir)
	return &TokenSource{app: app, dir: stateDir, stdout: stdout, now: time.Now, retry: retry, sem: make(chan struct{}, 1)}
}

// CachePath is the path of the token cache file.
func (s *TokenSource) CachePath() string { return filepath.Join(s.dir, CacheFile) }

func (s *TokenSource) lockPath() string { return filepath.Join(s.dir, CacheLockFile) }

func (s *TokenSource) httpClient() *http.Client {
	if s.HTTPClient != nil {
		return s.HTTPClient
	}
	return defaultHTTPClient
}

// Token returns an installation token with at least the refresh threshold
// left, from memory, from the cache file or newly minted, in that order.
// A token GitHub has just minted is returned even if its whole life is
// shorter than the threshold. A fixed token (GITHUB_TOKEN, with no App set
// up) is returned as it is.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	return s.masking(s.token(ctx))
}

func (s *TokenSource) token(ctx context.Context) (string, error) {
	if s.app.fixed != "" {
		return s.app.fixed, nil
	}
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	if s.tok.freshFor(s.now(), s.app.threshold) {
		return s.tok.value, nil
	}
	return s.underLock(ctx, true, func(cached token) bool {
		return cached.freshFor(s.now(), s.app.threshold)
	})
}

// masking masks tok under GitHub Actions, unless this source already has.
// Masking must precede any use that could print the token.
func (s *TokenSource) masking(tok string, err error) (string, error) {
	if err != nil || !s.app.actions || s.stdout == nil {
		return tok, err
	}
	s.maskMu.Lock()
	defer s.maskMu.Unlock()
	if !s.masked[tok] {
		if s.masked == nil {
			s.masked = map[string]bool{}
		}
		fmt.Fprintf(s.stdout, "::add-mask::%s\n", tok)
		s.masked[tok] = true
	}
	return tok, nil
}

// Expires returns when tok expires, if it is the token this source last
// handed out and that is known.
func (s *TokenSource) Expires(tok string) (time.Time, bool) {
	t, ok := s.last(tok)
	if !ok {
		return time.Time{}, false
	}
	return t.expires, true
}

// last returns the token this source last handed out, if it is tok and
// minted through the App.
func (s *TokenSource) last(tok string) (token, bool) {
	if s.app.fixed != "" {
		return token{}, false
	}
	s.sem <- struct{}{}
	t := s.tok
	<-s.sem
	return t, t.value == tok
}

// Erase drops the cached token if it is tok, which a user of it (git)
// found refused, so that the next process mints another. Other tokens
// stay: tok may be an old one.
func (s *TokenSource) Erase(ctx context.Context, tok string) error {
	if s.app.fixed != "" || tok == "" {
		return nil
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	if s.tok.value == tok {
		s.tok = token{}
	}
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	unlock, err := flock.Lock(lctx, s.lockPath(), 0o600)
	cancel()
	if err != nil {
		return fmt.Errorf("github: token cache: %w", err)
	}
	defer unlock()
	if cached, ok := s.readCache(); ok && cached.value == tok {
		if err := os.Remove(s.CachePath()); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("github: dropping the cached token: %w", err)
		}
	}
	return nil
}

// ForceRefresh returns a new installation token to replace stale, a token
// GitHub has just refused: it mints one, whatever the caches say about
// stale's expiry. If another caller has already replaced stale, in this
// process or in the cache file, while this one waited for the lock, that
// replacement is returned instead of minting yet another.
func (s *TokenSource) ForceRefresh(ctx context.Context, stale string) (string, error) {
	if s.app.fixed != "" {
		return "", fmt.Errorf("github: GitHub refused the token in %s, which cannot be refreshed", s.app.fixedVar)
	}
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	replaced := func(t token) bool {
		return t.value != stale && t.freshFor(s.now(), s.app.threshold) &&
			(s.tok.value != stale || !t.expires.Before(s.tok.expires))
	}
	if replaced(s.tok) {
		return s.masking(s.tok.value, nil)
	}
	return s.masking(s.underLock(ctx, false, replaced))
}

// Age returns how long ago tok was minted, when this source knows.
func (s *TokenSource) Age(tok string) (time.Duration, bool) {
	t, ok := s.last(tok)
	if !ok || t.minted.IsZero() {
		return 0, false
	}
	return s.now().Sub(t.minted), true
}

func (s *TokenSource) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("github: waiting for a token: %w", ctx.Err())
	}
}

func (s *TokenSource) release() { <-s.sem }

// minFallback is the least life a cached token needs to stand in for one
// that could not be minted.
const minFallback = time.Minute

// underLock takes the cache lock, returns the cached token if usable says
// so, and otherwise mints a token and writes it to the cache. When the mint
// fails and fallback is set, a cached token that is still valid (from the
// file or memory) is used instead, with a warning: it still serves for
// most of an hour. Caller holds s.sem.
func (s *TokenSource) underLock(ctx context.Context, fallback bool, usable func(token) bool) (string, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return "", fmt.Errorf("github: cannot create the state directory for the token cache: %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	unlock, err := flock.Lock(lctx, s.lockPath(), 0o600)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("github: another process has held the token cache lock %s for over %v: is a taskrunner stopped?", s.lockPath(), lockWait)
		}
		return "", fmt.Errorf("github: token cache: %w", err)
	}
	defer unlock()

	cached, ok := s.readCache()
	if ok && usable(cached) {
		s.tok = cached
		return cached.value, nil
	}
	retry := s.retry
	retry.info = s.Info
	t, err := s.app.mint(ctx, s.httpClient(), retry, s.now)
	if err != nil {
		if !ok || s.tok.expires.After(cached.expires) {
			cached = s.tok
		}
		if !fallback || ctx.Err() != nil || !cached.freshFor(s.now(), minFallback) {
			return "", err
		}
		if s.Warn != nil {
			s.Warn(fmt.Sprintf("using the cached GitHub token, valid for %s more: %v", cached.expires.Sub(s.now()).Round(time.Second), err))
		}
		s.tok = cached
		return cached.value, nil
	}
	s.tok = t
	// A cache that cannot be written costs other processes a mint of their
	// own, not this one its good token.
	_ = s.writeCache(t)
	return t.value, nil
}

// readCache reads the cache file. A missing, unreadable or malformed file
// is no token, and so is an entry for another API, App or installation, or
// one that does not say whose it is.
func (s *TokenSource) readCache() (token, bool) {
	b, err := os.ReadFile(s.CachePath())
	if err != nil {
		return token{}, false
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil || !headerSafe(e.Token) || e.ExpiresAt.IsZero() {
		return token{}, false
	}
	if e.APIURL != s.app.apiURL || e.AppID != s.app.appID || e.InstallationID != s.app.installationID {
		return token{}, false
	}
	return token{value: e.Token, expires: e.ExpiresAt, minted: e.MintedAt}, true
}

// writeCache replaces the cache file with t at once: it writes a file of
// mode 0600 beside it and renames it over the old one, so that no reader
// ever sees half of it. Caller holds the cache lock.
func (s *TokenSource) writeCache(t token) (err error) {
	b, err := json.Marshal(cacheEntry{
		Token: t.value, ExpiresAt: t.expires.UTC(),
		APIURL: s.app.apiURL, AppID: s.app.appID, InstallationID: s.app.installationID,
		MintedAt: t.minted.UTC(),
	})
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, CacheFile+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.CachePath())
}
