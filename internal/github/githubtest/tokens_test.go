package githubtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestMintChecksTheJWTLikeGitHub(t *testing.T) {
	s := newServer(t)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&s.PrivateKey().PublicKey)})
	now := time.Now()
	iat, exp := now.Add(-60*time.Second).Unix(), now.Add(10*time.Minute).Unix()
	claims := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": s.AppID, "iat": iat, "exp": exp}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	good := func(c jwt.MapClaims) string { return sign(t, s.PrivateKey(), c) }

	for _, tc := range []struct {
		name    string
		auth    string
		status  int
		message string
	}{
		{"as the client makes it", "Bearer " + good(claims()), 201, ""},
		{"iss as a string", "Bearer " + good(claims("iss", "12345")), 201, ""},
		{"iss as the client id", "Bearer " + good(claims("iss", s.ClientID)), 201, ""},
		{"iat now, exp in 9 minutes", "Bearer " + good(claims("iat", now.Unix(), "exp", now.Add(9*time.Minute).Unix())), 201, ""},
		{"iat 30 s ahead, within the drift", "Bearer " + good(claims("iat", now.Add(30*time.Second).Unix())), 201, ""},
		{"bearer scheme in lower case", "bearer " + good(claims()), 201, ""},

		{"tampered signature", "Bearer " + tamper(good(claims())), 401, msgJWTNotDecoded},
		{"signed with another key", "Bearer " + sign(t, otherKey, claims()), 401, msgJWTNotDecoded},
		{"alg none", "Bearer " + unsigned(t, claims()), 401, msgJWTNotDecoded},
		{"HS256 keyed with the public key", "Bearer " + hs256(t, pubPEM, claims()), 401, msgJWTNotDecoded},
		{"not a JWT", "Bearer ghs_notajwt", 401, msgJWTNotDecoded},
		{"no Authorization", "", 401, msgJWTNotDecoded},
		{"token scheme", "token " + good(claims()), 401, msgJWTNotDecoded},

		{"wrong iss", "Bearer " + good(claims("iss", 99999)), 401, msgNoApp},
		{"wrong iss as a string", "Bearer " + good(claims("iss", "99999")), 401, msgNoApp},
		{"iss missing", "Bearer " + good(claims("iss", nil)), 401, msgIssInvalid},
		{"iss not an integer", "Bearer " + good(claims("iss", 12345.5)), 401, msgIssInvalid},

		{"exp 11 minutes ahead", "Bearer " + good(claims("exp", now.Add(11*time.Minute).Unix())), 401, msgExpTooFar},
		{"exp missing", "Bearer " + good(claims("exp", nil)), 401, msgExpInvalid},
		{"exp as a string", "Bearer " + good(claims("exp", fmt.Sprint(exp))), 401, msgExpInvalid},
		{"expired", "Bearer " + good(claims("iat", now.Add(-11*time.Minute).Unix(), "exp", now.Add(-time.Minute).Unix())), 401, msgExpInvalid},
		{"iat 5 minutes ahead", "Bearer " + good(claims("iat", now.Add(5*time.Minute).Unix())), 401, msgIatInvalid},
		{"iat missing", "Bearer " + good(claims("iat", nil)), 401, msgIatInvalid},
		{"iat as a string", "Bearer " + good(claims("iat", fmt.Sprint(iat))), 401, msgIatInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, "POST", tokenURL(s), tc.auth, "")
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.status == 201 {
				return
			}
			var e apiError
			if err := json.Unmarshal(a.body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Message != tc.message || e.DocumentationURL != docURL {
				t.Errorf("body %s, want message %q", a.body, tc.message)
			}
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// tamper changes one character in the middle of a JWT's signature.
func tamper(tok string) string {
	i := strings.LastIndex(tok, ".") + 10
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func unsigned(t *testing.T, c jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hs256(t *testing.T, secret []byte, c jwt.MapClaims) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestMintAnswer(t *testing.T) {
	s := newServer(t)
	before := time.Now()
	a := do(t, "POST", tokenURL(s), "Bearer "+appJWT(t, s), "")
	if a.status != http.StatusCreated {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var m mintAnswer
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Token, "ghs_") || len(m.Token) != 40 {
		t.Errorf("token %q is not ghs_ and 36 characters", m.Token)
	}
	exp, err := time.Parse(time.RFC3339, m.ExpiresAt)
	if err != nil || strings.Contains(m.ExpiresAt, ".") || !strings.HasSuffix(m.ExpiresAt, "Z") {
		t.Errorf("expires_at %q is not RFC 3339 UTC in whole seconds (%v)", m.ExpiresAt, err)
	}
	if want := before.Add(time.Hour); exp.Before(want.Add(-time.Second)) || exp.After(want.Add(2*time.Second)) {
		t.Errorf("expires_at %v, want about %v", exp, want)
	}
	want := map[string]string{"statuses": "write", "contents": "read", "metadata": "read"}
	if fmt.Sprint(m.Permissions) != fmt.Sprint(want) || m.RepositorySelection != "all" {
		t.Errorf("permissions %v, repository_selection %q", m.Permissions, m.RepositorySelection)
	}

	seen := map[string]bool{m.Token: true}
	for range 5 {
		tok := mint(t, s).Token
		if seen[tok] {
			t.Fatalf("token %d handed out twice", len(seen))
		}
		seen[tok] = true
	}
	if s.Mints() != 6 {
		t.Errorf("Mints = %d, want 6", s.Mints())
	}
}

func TestMintInstallations(t *testing.T) {
	s := newServer(t, WithInstallations(111, 222))
	if s.InstallationID != 111 {
		t.Errorf("InstallationID = %d, want 111", s.InstallationID)
	}
	jwtStr := "Bearer " + appJWT(t, s)
	for _, tc := range []struct {
		id     string
		status int
	}{{"111", 201}, {"222", 201}, {"67890", 404}, {"abc", 404}} {
		a := do(t, "POST", s.URL+"/app/installations/"+tc.id+"/access_tokens", jwtStr, "")
		if a.status != tc.status {
			t.Errorf("installation %s: %d %s, want %d", tc.id, a.status, a.body, tc.status)
		}
		if tc.status == 404 && a.message(t) != "Not Found" {
			t.Errorf("installation %s: %s", tc.id, a.body)
		}
	}
	if s.Mints() != 2 {
		t.Errorf("Mints = %d, want 2", s.Mints())
	}
}

func TestMintRequestedPermissions(t *testing.T) {
	s := newServer(t)
	jwtStr := "Bearer " + appJWT(t, s)
	a := do(t, "POST", tokenURL(s), jwtStr, `{"permissions":{"statuses":"write"}}`)
	var m mintAnswer
	json.Unmarshal(a.body, &m)
	if a.status != 201 || len(m.Permissions) != 1 || m.Permissions["statuses"] != "write" {
		t.Errorf("asking for statuses:write: %d %s", a.status, a.body)
	}
	for _, body := range []string{`{"permissions":{"administration":"write"}}`, `{"permissions":{"contents":"write"}}`} {
		if a := do(t, "POST", tokenURL(s), jwtStr, body); a.status != 422 {
			t.Errorf("asking %s: %d %s, want 422", body, a.status, a.body)
		}
	}
	if a := do(t, "POST", tokenURL(s), jwtStr, `{"permissions":`); a.status != 400 || a.message(t) != "Problems parsing JSON" {
		t.Errorf("bad JSON: %d %s", a.status, a.body)
	}
}

func TestPrivateKeyPEMSignsJWTs(t *testing.T) {
	s := newServer(t)
	pemText := s.PrivateKeyPEM()
	if !strings.HasPrefix(pemText, "-----BEGIN RSA PRIVATE KEY-----\n") {
		t.Fatalf("PEM starts %q", pemText[:40])
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	if key.N.BitLen() != 2048 {
		t.Errorf("key has %d bits, want 2048", key.N.BitLen())
	}
	now := time.Now()
	tok := sign(t, key, jwt.MapClaims{"iss": fmt.Sprint(s.AppID), "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	if a := do(t, "POST", tokenURL(s), "Bearer "+tok, ""); a.status != 201 {
		t.Errorf("JWT signed with the PEM key: %d %s", a.status, a.body)
	}
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	s := newServer(t, WithTokenLifetime(time.Second))
	tok := mint(t, s).Token
	if a := postStatus(t, s, tok, shaA, `{"state":"pending"}`); a.status != 201 {
		t.Fatalf("fresh token: %d %s", a.status, a.body)
	}
	time.Sleep(1200 * time.Millisecond)
	for _, a := range []answer{
		postStatus(t, s, tok, shaA, `{"state":"success"}`),
		do(t, "GET", listURL(s, shaA), "token "+tok, ""),
	} {
		if a.status != 401 || a.message(t) != msgBadCredentials {
			t.Errorf("expired token: %d %s, want 401 Bad credentials", a.status, a.body)
		}
	}
	if a := postStatus(t, s, mint(t, s).Token, shaA, `{"state":"success"}`); a.status != 201 {
		t.Errorf("new token: %d %s", a.status, a.body)
	}
}

func TestExpirySkew(t *testing.T) {
	t.Parallel()
	s := newServer(t, WithTokenLifetime(time.Second), WithExpirySkew(5*time.Second))
	before := time.Now()
	m := mint(t, s)
	exp, err := time.Parse(time.RFC3339, m.ExpiresAt)
	if err != nil {
		t.Fatal(err)
	}
	// Reported: real expiry (now + 1 s) + 5 s, truncated to the second.
	if want := before.Add(6 * time.Second); exp.Before(want.Add(-time.Second)) || exp.After(want.Add(time.Second)) {
		t.Errorf("expires_at %v, want about %v", exp, want)
	}
	time.Sleep(1200 * time.Millisecond)
	if time.Now().After(exp) {
		t.Fatal("test too slow: the reported expiry has passed")
	}
	if a := postStatus(t, s, m.Token, shaA, `{"state":"success"}`); a.status != 401 || a.message(t) != msgBadCredentials {
		t.Errorf("token past its real expiry: %d %s, want 401 Bad credentials", a.status, a.body)
	}
}

func TestExpireTokens(t *testing.T) {
	s := newServer(t)
	a, b := mint(t, s).Token, mint(t, s).Token
	if !s.ExpireToken(a) || s.ExpireToken("ghs_unknown") {
		t.Fatal("ExpireToken reports wrongly whether it knew the token")
	}
	if r := postStatus(t, s, a, shaA, `{"state":"success"}`); r.status != 401 {
		t.Errorf("expired token a: %d %s", r.status, r.body)
	}
	if r := postStatus(t, s, b, shaA, `{"state":"success"}`); r.status != 201 {
		t.Errorf("token b: %d %s", r.status, r.body)
	}
	s.ExpireAllTokens()
	if r := postStatus(t, s, b, shaA, `{"state":"success"}`); r.status != 401 || r.message(t) != msgBadCredentials {
		t.Errorf("token b after ExpireAllTokens: %d %s", r.status, r.body)
	}
	if r := postStatus(t, s, mint(t, s).Token, shaA, `{"state":"success"}`); r.status != 201 {
		t.Errorf("token minted after ExpireAllTokens: %d %s", r.status, r.body)
	}
}

func TestBearerOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		opts       []Option
		tokenWant  int
		bearerWant int
	}{
		{"like GitHub", nil, 200, 200},
		{"bearer only", []Option{WithBearerOnly()}, 401, 200},
	} {
		s := newServer(t, tc.opts...)
		tok := mint(t, s).Token
		if a := do(t, "GET", listURL(s, shaA), "token "+tok, ""); a.status != tc.tokenWant {
			t.Errorf("%s: token scheme: %d %s, want %d", tc.name, a.status, a.body, tc.tokenWant)
		}
		if a := do(t, "GET", listURL(s, shaA), "Bearer "+tok, ""); a.status != tc.bearerWant {
			t.Errorf("%s: Bearer scheme: %d %s, want %d", tc.name, a.status, a.body, tc.bearerWant)
		}
	}
}
