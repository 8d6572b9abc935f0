package githubtest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GitHub's messages for App JWTs it refuses, all answered with 401.
const (
	msgJWTNotDecoded = "A JSON web token could not be decoded"
	msgExpTooFar     = "'Expiration time' claim ('exp') is too far in the future"
	msgExpInvalid    = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	msgIatInvalid    = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	msgIssInvalid    = "'Issuer' claim ('iss') must be an Integer"
	msgNoApp         = "Integration not found"
)

// GitHub's messages for installation tokens it refuses, answered with 401.
const (
	msgBadCredentials = "Bad credentials"
	msgRequiresAuth   = "Requires authentication"
)

// JWT time limits GitHub applies: exp at most 10 minutes ahead, and iat
// tolerated up to about a minute in the future for clock drift.
const (
	maxJWTLifetime = 10 * time.Minute
	maxIatDrift    = 60 * time.Second
)

// appPermissions are the permissions the test App's installations grant.
var appPermissions = map[string]string{"statuses": "write", "contents": "read", "metadata": "read"}

// token is a minted installation token.
type token struct {
	mint         int       // 1 for the first minted, and so on
	installation int64     // installation it was minted for
	expires      time.Time // real expiry; the reported one may be skewed
	created      time.Time
}

var (
	errIssNotInteger = errors.New("iss not an integer")
	errNoApp         = errors.New("no such app")
)

// verifyJWT checks an App JWT as GitHub does and returns the message of
// GitHub's 401 answer, or "" if the JWT is good.
func (s *Server) verifyJWT(raw string, now time.Time) string {
	claims := jwt.MapClaims{}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithJSONNumber(),
		jwt.WithoutClaimsValidation(), // the claims are checked below, with GitHub's messages
	)
	// GitHub finds the App named by iss before it can check the signature
	// against that App's key.
	_, err := p.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) {
		if err := s.checkIssuer(claims["iss"]); err != nil {
			return nil, err
		}
		return &s.key.PublicKey, nil
	})
	switch {
	case errors.Is(err, errIssNotInteger):
		return msgIssInvalid
	case errors.Is(err, errNoApp):
		return msgNoApp
	case err != nil:
		return msgJWTNotDecoded
	}

	exp, ok := numericClaim(claims["exp"])
	if !ok {
		return msgExpInvalid
	}
	if exp > float64(now.Add(maxJWTLifetime).Unix()) {
		return msgExpTooFar
	}
	if exp <= float64(now.Unix()) {
		return msgExpInvalid
	}
	iat, ok := integerClaim(claims["iat"])
	if !ok || iat > now.Add(maxIatDrift).Unix() {
		return msgIatInvalid
	}
	return ""
}

// checkIssuer accepts the App id, as a JSON number or a string of digits,
// or the App's client id.
func (s *Server) checkIssuer(v any) error {
	var id int64
	switch v := v.(type) {
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return errIssNotInteger
		}
		id = n
	case string:
		if v == s.ClientID {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errNoApp
		}
		id = n
	default:
		return errIssNotInteger
	}
	if id != s.AppID {
		return errNoApp
	}
	return nil
}

// numericClaim reads a JSON number claim.
func numericClaim(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil && !math.IsInf(f, 0)
}

// integerClaim reads a JSON integer claim.
func integerClaim(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// tokenAnswer is the 201 body of a token mint.
type tokenAnswer struct {
	Token               string            `json:"token"`
	ExpiresAt           string            `json:"expires_at"`
	Permissions         map[string]string `json:"permissions"`
	RepositorySelection string            `json:"repository_selection"`
}

// createToken serves POST /app/installations/{id}/access_tokens.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, installation string) {
	now := time.Now()
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") {
		writeError(w, http.StatusUnauthorized, msgJWTNotDecoded)
		return
	}
	if msg := s.verifyJWT(strings.TrimSpace(cred), now.Add(s.clock)); msg != "" {
		writeError(w, http.StatusUnauthorized, msg)
		return
	}
	id, err := strconv.ParseInt(installation, 10, 64)
	s.mu.Lock()
	known := err == nil && s.installations[id]
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}

	perms, msg, status := requestedPermissions(r.Body)
	if msg != "" {
		writeError(w, status, msg)
		return
	}

	s.mu.Lock()
	value := s.newTokenValue()
	t := &token{mint: len(s.minted) + 1, installation: id, expires: now.Add(s.lifetime), created: now}
	s.tokens[value] = t
	s.minted = append(s.minted, value)
	reported := t.expires.Add(s.skew)
	s.mu.Unlock()

	writeJSON(w, http.StatusCreated, tokenAnswer{
		Token:               value,
		ExpiresAt:           reported.UTC().Format(time.RFC3339), // whole seconds, as GitHub does
		Permissions:         perms,
		RepositorySelection: "all",
	})
}

// requestedPermissions reads the optional request body of a token mint. A
// token gets the permissions asked for, or all of the installation's when
// none are; asking for more than the installation has is GitHub's 422.
func requestedPermissions(body io.Reader) (perms map[string]string, msg string, status int) {
	var req struct {
		Permissions map[string]string `json:"permissions"`
	}
	b, _ := io.ReadAll(body)
	if strings.TrimSpace(string(b)) != "" {
		if err := json.Unmarshal(b, &req); err != nil {
			return nil, "Problems parsing JSON", http.StatusBadRequest
		}
	}
	if len(req.Permissions) == 0 {
		return appPermissions, "", 0
	}
	for name, level := range req.Permissions {
		has, ok := appPermissions[name]
		if !ok || (level == "write" && has != "write") || (level != "read" && level != "write") {
			return nil, "The permissions requested are not granted to this installation.", http.StatusUnprocessableEntity
		}
	}
	return req.Permissions, "", 0
}

// tokenAlphabet is what follows "ghs_" in an installation token.
const tokenAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newTokenValue returns a token value never handed out before. s.mu is held.
func (s *Server) newTokenValue() string {
	for {
		b := make([]byte, max(s.tokenLen, 36))
		for i := range b {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(tokenAlphabet))))
			if err != nil {
				panic("githubtest: " + err.Error())
			}
			b[i] = tokenAlphabet[n.Int64()]
		}
		v := "ghs_" + string(b)
		if _, dup := s.tokens[v]; !dup {
			return v
		}
	}
}

// authenticate checks the installation token of an API request. It returns
// the token's mint number, or the status and message of GitHub's refusal.
func (s *Server) authenticate(r *http.Request) (mint, status int, msg string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return 0, http.StatusUnauthorized, msgRequiresAuth
	}
	scheme, cred, _ := strings.Cut(h, " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.EqualFold(scheme, "bearer") && (s.bearerOnly || !strings.EqualFold(scheme, "token")) {
		return 0, http.StatusUnauthorized, msgBadCredentials
	}
	t, ok := s.tokens[strings.TrimSpace(cred)]
	if !ok {
		return 0, http.StatusUnauthorized, msgBadCredentials
	}
	if !time.Now().Before(t.expires) || time.Since(t.created) < s.replication {
		return t.mint, http.StatusUnauthorized, msgBadCredentials
	}
	return t.mint, 0, ""
}

// Mints returns how many installation tokens have been minted.
func (s *Server) Mints() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.minted)
}

// Tokens returns the value of every minted token, in mint order, so that a
// test can check that none of them leaked into logs or error messages.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.minted...)
}

// ExpireAllTokens makes every token minted so far stop working now, as if
// its hour were up, whatever its reported expires_at says.
func (s *Server) ExpireAllTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, t := range s.tokens {
		if t.expires.After(now) {
			t.expires = now
		}
	}
}

// ExpireToken makes one token stop working now, as GitHub does when a token
// is revoked. It reports whether the server had minted that token.
func (s *Server) ExpireToken(value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[value]
	if ok && t.expires.After(time.Now()) {
		t.expires = time.Now()
	}
	return ok
}

// Issue makes a token of the installation that was not minted through the
// App, as GitHub Actions gives each job its GITHUB_TOKEN, valid for the
// server's token lifetime. Calls made with it show as "token" in Calls,
// with no mint number.
func (s *Server) Issue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	value := s.newTokenValue()
	s.tokens[value] = &token{installation: s.InstallationID, expires: time.Now().Add(s.lifetime)}
	s.issued = append(s.issued, value)
	return value
}

// Issued returns the tokens made by Issue, in order.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}
