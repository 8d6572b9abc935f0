package github

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/github/githubtest"
)

// keyPEM is the fake server's App key, the same in every Server of this
// process.
var keyPEM = sync.OnceValue(func() string {
	s := githubtest.New()
	defer s.Close()
	return s.PrivateKeyPEM()
})

func goodConfig() config.GitHub {
	return config.GitHub{
		APIURL:           "https://api.github.com",
		AppID:            "12345",
		InstallationID:   "67890",
		PrivateKey:       keyPEM(),
		Owner:            "acme",
		Repository:       "acme/widgets",
		RefreshThreshold: 300 * time.Second,
	}
}

func TestNewAppAcceptsGoodSettings(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*config.GitHub)
		owner      string
		repo       string
		wantAPIURL string
	}{
		{"owner/repo", func(c *config.GitHub) {}, "acme", "widgets", "https://api.github.com"},
		{"bare repo", func(c *config.GitHub) { c.Repository = "widgets" }, "acme", "widgets", "https://api.github.com"},
		{"owner from repository", func(c *config.GitHub) { c.Owner = "" }, "acme", "widgets", "https://api.github.com"},
		{"owner differs in case only", func(c *config.GitHub) { c.Owner = "ACME" }, "acme", "widgets", "https://api.github.com"},
		{"client id as app id", func(c *config.GitHub) { c.AppID = "Iv23liTaskrunnerTest" }, "acme", "widgets", "https://api.github.com"},
		{"enterprise url with slash", func(c *config.GitHub) { c.APIURL = "https://ghe.example.com/api/v3/" }, "acme", "widgets", "https://ghe.example.com/api/v3"},
		{"default url", func(c *config.GitHub) { c.APIURL = "" }, "acme", "widgets", "https://api.github.com"},
		{"pkcs8 rsa key", func(c *config.GitHub) { c.PrivateKey = pkcs8(t, rsaKey(t)) }, "acme", "widgets", "https://api.github.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := goodConfig()
			tt.edit(&cfg)
			app, err := NewApp(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if app.Owner() != tt.owner || app.Repo() != tt.repo || app.APIURL() != tt.wantAPIURL {
				t.Errorf("got %s/%s at %s, want %s/%s at %s", app.Owner(), app.Repo(), app.APIURL(), tt.owner, tt.repo, tt.wantAPIURL)
			}
		})
	}
}

// TestNewAppKeyWithPipes reads the key as a CI secret store holds it, "|"
// for each newline, through the config package.
func TestNewAppKeyWithPipes(t *testing.T) {
	env := map[string]string{
		"GITHUB_APP_ID":           "12345",
		"GITHUB_INSTALLATION_ID":  "67890",
		"GITHUB_APP_PRIVATE_KEY":  strings.ReplaceAll(keyPEM(), "\n", "|"),
		"GITHUB_REPOSITORY":       "acme/widgets",
		"GITHUB_REPOSITORY_OWNER": "acme",
	}
	s, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewApp(s.GitHub); err != nil {
		t.Fatal(err)
	}
}

func TestNewAppRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.GitHub)
		want []string // each must be in the message
	}{
		{"no app id", func(c *config.GitHub) { c.AppID = "" }, []string{"GITHUB_APP_ID is not set"}},
		{"blank app id", func(c *config.GitHub) { c.AppID = "  " }, []string{"GITHUB_APP_ID is not set"}},
		{"odd app id", func(c *config.GitHub) { c.AppID = "12 34" }, []string{`GITHUB_APP_ID="12 34" is not an app id`}},
		{"no installation", func(c *config.GitHub) { c.InstallationID = "" }, []string{"GITHUB_INSTALLATION_ID is not set"}},
		{"installation not a number", func(c *config.GitHub) { c.InstallationID = "abc" }, []string{`GITHUB_INSTALLATION_ID="abc" is not a number`}},
		{"no key", func(c *config.GitHub) { c.PrivateKey = "" }, []string{"GITHUB_APP_PRIVATE_KEY is not set"}},
		{"key not pem", func(c *config.GitHub) { c.PrivateKey = "MIIEowIBAAKCAQEAsecretsecret" }, []string{"GITHUB_APP_PRIVATE_KEY is not a PEM key"}},
		{"key truncated", func(c *config.GitHub) { c.PrivateKey = truncatedKey() }, []string{"GITHUB_APP_PRIVATE_KEY holds an RSA PRIVATE KEY block that does not parse"}},
		{"key ecdsa pkcs8", func(c *config.GitHub) { c.PrivateKey = pkcs8(t, ecKey(t)) }, []string{"GITHUB_APP_PRIVATE_KEY is not an RSA key (it is an ECDSA key)"}},
		{"key ecdsa sec1", func(c *config.GitHub) { c.PrivateKey = sec1(t, ecKey(t)) }, []string{"GITHUB_APP_PRIVATE_KEY is not an RSA key"}},
		{"key ed25519", func(c *config.GitHub) { c.PrivateKey = pkcs8(t, edKey(t)) }, []string{"GITHUB_APP_PRIVATE_KEY is not an RSA key (it is an Ed25519 key)"}},
		{"key is a certificate", func(c *config.GitHub) {
			c.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}))
		}, []string{`GITHUB_APP_PRIVATE_KEY is not a private key (it is a PEM "CERTIFICATE" block)`}},
		{"no repository", func(c *config.GitHub) { c.Repository = "" }, []string{"GITHUB_REPOSITORY is not set"}},
		{"repository too deep", func(c *config.GitHub) { c.Repository = "a/b/c" }, []string{`GITHUB_REPOSITORY="a/b/c" is not a repository name or owner/repo`}},
		{"owner mismatch", func(c *config.GitHub) { c.Owner = "other" }, []string{`GITHUB_REPOSITORY="acme/widgets" names owner "acme" but GITHUB_REPOSITORY_OWNER is "other"`}},
		{"no owner, bare repository", func(c *config.GitHub) { c.Owner = ""; c.Repository = "widgets" }, []string{"GITHUB_REPOSITORY_OWNER is not set"}},
		{"odd owner", func(c *config.GitHub) { c.Owner = "a b"; c.Repository = "widgets" }, []string{`GITHUB_REPOSITORY_OWNER="a b" is not a user or organisation name`}},
		{"api url", func(c *config.GitHub) { c.APIURL = "api.github.com" }, []string{`GITHUB_API_URL="api.github.com" is not an http(s) URL`}},
		{"everything missing", func(c *config.GitHub) { *c = config.GitHub{} }, []string{
			"GITHUB_APP_ID is not set", "GITHUB_INSTALLATION_ID is not set", "GITHUB_APP_PRIVATE_KEY is not set",
			"GITHUB_REPOSITORY is not set", "GITHUB_REPOSITORY_OWNER is not set",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := goodConfig()
			tt.edit(&cfg)
			app, err := NewApp(cfg)
			if err == nil {
				t.Fatalf("NewApp succeeded (%s/%s), want an error", app.Owner(), app.Repo())
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error is a %T, want a *ConfigError", err)
			}
			assertNoKey(t, msg, cfg.PrivateKey)
		})
	}
}

func TestJWTClaims(t *testing.T) {
	app, err := NewApp(goodConfig())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	signed, err := app.signJWT(now)
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(signed, &claims, func(*jwt.Token) (any, error) { return &app.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["alg"] != "RS256" {
		t.Errorf("alg = %v, want RS256", tok.Header["alg"])
	}
	if claims.Issuer != "12345" {
		t.Errorf("iss = %q, want 12345", claims.Issuer)
	}
	if got := claims.IssuedAt.Time; !got.Equal(now.Add(-60 * time.Second)) {
		t.Errorf("iat = %v, want now - 60 s", now.Sub(got))
	}
	if got := claims.ExpiresAt.Time; !got.Equal(now.Add(9 * time.Minute)) {
		t.Errorf("exp = now + %v, want now + 9 m (GitHub refuses over 10 m)", got.Sub(now))
	}
}

func rsaKey(t testing.TB) any {
	block, _ := pem.Decode([]byte(keyPEM()))
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkcs8(t testing.TB, k any) string {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b}))
}

func sec1(t testing.TB, k *ecdsa.PrivateKey) string {
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b}))
}

// truncatedKey is the App key with half its bytes gone, still valid PEM.
func truncatedKey() string {
	block, _ := pem.Decode([]byte(keyPEM()))
	block.Bytes = block.Bytes[:len(block.Bytes)/2]
	return string(pem.EncodeToMemory(block))
}

// assertNoKey fails if msg holds any 12 characters in a row of the base64
// body of the PEM key.
func assertNoKey(t testing.TB, msg, key string) {
	t.Helper()
	var body strings.Builder
	for line := range strings.Lines(key) {
		if !strings.HasPrefix(line, "-----") {
			body.WriteString(strings.TrimSpace(line))
		}
	}
	b := body.String()
	for i := 0; i+12 <= len(b); i++ {
		if strings.Contains(msg, b[i:i+12]) {
			t.Fatalf("message quotes the private key: %q", msg)
		}
	}
}

func TestNewAppFixedToken(t *testing.T) {
	base := config.GitHub{Owner: "acme", Repository: "acme/widgets", Token: "ghs_dotcom", TokenVar: "GITHUB_TOKEN",
		EnterpriseToken: "ghs_ghes", EnterpriseTokenVar: "GH_ENTERPRISE_TOKEN"}
	for _, tc := range []struct {
		name    string
		api     string
		edit    func(*config.GitHub)
		want    string
		wantVar string
	}{
		{"github.com", "https://api.github.com", nil, "ghs_dotcom", "GITHUB_TOKEN"},
		{"enterprise server", "https://ghe.example/api/v3", nil, "ghs_ghes", "GH_ENTERPRISE_TOKEN"},
		{"enterprise server, Actions' token", "https://ghe.example/api/v3", func(c *config.GitHub) { c.EnterpriseToken = "" }, "ghs_dotcom", "GITHUB_TOKEN"},
		{"app wins", "https://api.github.com", func(c *config.GitHub) { c.AppID = "1" }, "", ""},
	} {
		cfg := base
		cfg.APIURL = tc.api
		if tc.edit != nil {
			tc.edit(&cfg)
		}
		app, err := NewApp(cfg)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "GITHUB_APP_PRIVATE_KEY is not set") {
				t.Errorf("%s: err = %v, want the App's settings checked", tc.name, err)
			}
			continue
		}
		if err != nil || app.fixed != tc.want || app.fixedVar != tc.wantVar {
			t.Errorf("%s: NewApp = %+v, %v; want token of %s", tc.name, app, err, tc.wantVar)
		}
	}
}
