package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// mintTimeout bounds a whole mint, retries included, so that processes
// queued on the token cache lock behind it are not kept waiting for ever.
const mintTimeout = 2 * time.Minute

const mintCall = "minting an installation token"

// token is an installation token and the time GitHub says it expires.
type token struct {
	value   string
	expires time.Time
	minted  time.Time // when it was minted, by this machine's clock; zero if unknown
}

// freshFor reports whether t is set and has at least d left at now.
func (t token) freshFor(now time.Time, d time.Duration) bool {
	return t.value != "" && t.expires.Sub(now) >= d
}

// mint asks GitHub for a new installation token, signing a new JWT for each
// attempt. When GitHub refuses the JWT's times, its clock and this
// machine's differ: mint signs the JWT again on GitHub's time, from the
// Date header of the refusal, and tries once more.
func (a *App) mint(ctx context.Context, hc *http.Client, p retryPolicy, now func() time.Time) (token, error) {
	ctx, cancel := context.WithTimeout(ctx, mintTimeout)
	defer cancel()
	start := now()
	t, r, err := a.mintOnce(ctx, hc, p, now)
	if r == nil || !r.clockRefused() {
		t.minted = start
		return t, err
	}
	date, derr := http.ParseTime(r.header.Get("Date"))
	if derr != nil {
		return t, err
	}
	offset := date.Sub(now())
	start = now()
	t, _, err = a.mintOnce(ctx, hc, p, func() time.Time { return now().Add(offset) })
	t.minted = start
	return t, err
}

// clockRefused reports whether r refuses a JWT for its times, GitHub's
// 401 "'Issued at' claim ('iat') must be …" or "'Expiration time' claim …".
func (r *response) clockRefused() bool {
	if r.status != http.StatusUnauthorized {
		return false
	}
	m := r.message()
	return strings.Contains(m, "'Issued at' claim") || strings.Contains(m, "'Expiration time' claim")
}

// mintOnce makes one mint, retries of network errors and 5xx included. On
// an answer GitHub gave, it returns that answer too.
func (a *App) mintOnce(ctx context.Context, hc *http.Client, p retryPolicy, now func() time.Time) (token, *response, error) {
	url := a.apiURL + "/app/installations/" + a.installationID + "/access_tokens"
	r, err := p.do(ctx, hc, mintCall, func() (*http.Request, error) {
		jwt, err := a.signJWT(now())
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
		if err != nil {
			return nil, fmt.Errorf("github: %s: %w", mintCall, err)
		}
		setHeaders(req)
		req.Header.Set("Authorization", "Bearer "+jwt)
		return req, nil
	})
	if err != nil {
		return token{}, nil, err
	}
	t, err := a.tokenFrom(r)
	return t, r, err
}

// tokenFrom reads the answer to a mint.
func (a *App) tokenFrom(r *response) (token, error) {
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		e := r.apiError(mintCall)
		switch {
		case r.clockRefused():
			e.Hint = "check this machine's clock: GitHub finds the App's JWT issued or expiring at the wrong time"
		case r.status == http.StatusUnauthorized:
			e.Hint = "check " + envAppID + " and " + envPrivateKey
		case r.status == http.StatusNotFound, r.status == http.StatusForbidden:
			e.Hint = "check " + envInstallationID + " and that the app is installed"
		}
		return token{}, e
	}

	bad := func(what string) error {
		return fmt.Errorf("github: %s failed: GitHub answered %d but %s", mintCall, r.status, what)
	}
	var body struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		return token{}, bad("the response is not JSON")
	}
	switch {
	case body.Token == "":
		return token{}, bad("the response has no token")
	case !headerSafe(body.Token):
		return token{}, bad("the token holds characters an HTTP header cannot carry")
	case body.ExpiresAt == "":
		return token{}, bad("the response has no expires_at")
	}
	exp, err := time.Parse(time.RFC3339, body.ExpiresAt)
	if err != nil {
		return token{}, bad(fmt.Sprintf("its expires_at %q is not an ISO 8601 time", oneLine(body.ExpiresAt, body.Token)))
	}
	return token{value: body.Token, expires: exp}, nil
}

// headerSafe reports whether s can be sent in a header as it is: printable
// ASCII without spaces. Tokens are otherwise opaque.
func headerSafe(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return s != ""
}
