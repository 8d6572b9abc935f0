// Package github talks to GitHub as a GitHub App: it checks the App's
// settings, signs the App's JWT, mints installation tokens and shares them
// between every taskrunner process on the machine through a locked file cache
// in the state directory, and posts and reads commit statuses.
//
// No token, JWT or private key ever appears in an error or a warning made
// here.
package github

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/taskrunner/taskrunner/internal/config"
)

// Names of the variables the settings come from, for error messages.
const (
	envAPIURL         = "GITHUB_API_URL"
	envAppID          = "GITHUB_APP_ID"
	envInstallationID = "GITHUB_INSTALLATION_ID"
	envPrivateKey     = "GITHUB_APP_PRIVATE_KEY"
	envOwner          = "GITHUB_REPOSITORY_OWNER"
	envRepository     = "GITHUB_REPOSITORY"
)

// App is a GitHub App installation that taskrunner acts as, with its
// settings checked. Its fields are unexported so that the private key cannot
// be printed by accident.
type App struct {
	apiURL         string // without a trailing slash
	appID          string
	installationID string
	key            *rsa.PrivateKey
	owner, repo    string
	actions        bool
	threshold      time.Duration
	maxWait        time.Duration // for rate limits, in one call
	// fixed is a token given in the environment (GITHUB_TOKEN, say), used
	// as it is instead of minting, and fixedVar the variable it came from.
	fixed, fixedVar string
}

// ConfigError lists the GitHub App settings that are missing or unusable.
// Its message names each variable and never quotes the private key.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "github app settings: " + strings.Join(e.Problems, "; ")
}

// NewApp checks the GitHub App settings in cfg and parses the private key.
// Every problem found is reported, each naming its variable, in one
// *ConfigError.
func NewApp(cfg config.GitHub) (*App, error) {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	a := &App{
		appID:          strings.TrimSpace(cfg.AppID),
		installationID: strings.TrimSpace(cfg.InstallationID),
		actions:        cfg.Actions,
		threshold:      cfg.RefreshThreshold,
		maxWait:        cfg.MaxWait,
	}

	api := strings.TrimSpace(cfg.APIURL)
	if api == "" {
		api = "https://api.github.com"
	}
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("%s=%q is not an http(s) URL", envAPIURL, api)
	}
	a.apiURL = strings.TrimRight(api, "/")

	appSet := a.appID != "" || a.installationID != "" || strings.TrimSpace(cfg.PrivateKey) != ""
	if !appSet {
		a.fixed, a.fixedVar = fixedToken(cfg, u)
		if a.fixed != "" && !headerSafe(a.fixed) {
			bad("%s holds characters an HTTP header cannot carry", a.fixedVar)
		}
	}
	if a.fixed == "" {
		a.checkApp(cfg, appSet, bad)
	}

	a.owner, a.repo = checkRepository(cfg, bad)

	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return a, nil
}

// fixedToken picks the token gh would use for the API at u: on a GitHub
// Enterprise Server, GH_ENTERPRISE_TOKEN or GITHUB_ENTERPRISE_TOKEN, else
// (as GitHub Actions there sets it) GH_TOKEN or GITHUB_TOKEN.
func fixedToken(cfg config.GitHub, u *url.URL) (tok, name string) {
	if u != nil && u.Host != "api.github.com" && cfg.EnterpriseToken != "" {
		return cfg.EnterpriseToken, cfg.EnterpriseTokenVar
	}
	return cfg.Token, cfg.TokenVar
}

// checkApp checks the App's own settings into a. When none is set, the
// first problem says that a GITHUB_TOKEN would do instead.
func (a *App) checkApp(cfg config.GitHub, appSet bool, bad func(string, ...any)) {
	switch {
	case a.appID == "" && !appSet:
		bad("%s is not set (nor is GITHUB_TOKEN, to use instead of an App)", envAppID)
	case a.appID == "":
		bad("%s is not set", envAppID)
	case !isName(a.appID, "._-"):
		bad("%s=%q is not an app id or client id", envAppID, a.appID)
	}
	switch {
	case a.installationID == "":
		bad("%s is not set", envInstallationID)
	case !isDigits(a.installationID):
		bad("%s=%q is not a number", envInstallationID, a.installationID)
	}

	if strings.TrimSpace(cfg.PrivateKey) == "" {
		bad("%s is not set", envPrivateKey)
	} else if key, problem := parseKey(cfg.PrivateKey); problem != "" {
		bad("%s %s", envPrivateKey, problem)
	} else {
		a.key = key
	}
}

// checkRepository returns the repository's owner and name.
func checkRepository(cfg config.GitHub, bad func(string, ...any)) (string, string) {
	owner := strings.TrimSpace(cfg.Owner)
	repo := strings.TrimSpace(cfg.Repository)
	if o, r, ok := strings.Cut(repo, "/"); ok {
		switch {
		case !isName(o, "-") || !isName(r, "._-"):
			bad("%s=%q is not a repository name or owner/repo", envRepository, repo)
		case owner != "" && !strings.EqualFold(owner, o):
			bad("%s=%q names owner %q but %s is %q", envRepository, repo, o, envOwner, owner)
		default:
			owner, repo = o, r
		}
	} else if repo == "" {
		bad("%s is not set", envRepository)
	} else if !isName(repo, "._-") {
		bad("%s=%q is not a repository name or owner/repo", envRepository, repo)
	}
	switch {
	case owner == "":
		bad("%s is not set (nor is %s of the form owner/repo)", envOwner, envRepository)
	case !isName(owner, "-"):
		bad("%s=%q is not a user or organisation name", envOwner, owner)
	}
	return owner, repo
}

// parseKey parses an RSA private key in PEM, PKCS#1 or PKCS#8. On failure it
// returns what is wrong, in words that never quote the key: parser errors are
// dropped on purpose, since they may echo bytes of it.
func parseKey(s string) (*rsa.PrivateKey, string) {
	const hint = `(want "-----BEGIN RSA PRIVATE KEY-----" or "-----BEGIN PRIVATE KEY-----"; where newlines cannot be stored, write "|" for each)`
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, "is not a PEM key " + hint
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, "holds an RSA PRIVATE KEY block that does not parse as PKCS#1: is it complete?"
		}
		return key, ""
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, "holds a PRIVATE KEY block that does not parse as PKCS#8: is it complete?"
		}
		key, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Sprintf("is not an RSA key (it is %s); GitHub Apps sign with RSA keys", keyKind(k))
		}
		return key, ""
	case "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "DSA PRIVATE KEY":
		return nil, fmt.Sprintf("is not an RSA key (it is a %s block); GitHub Apps sign with RSA keys", block.Type)
	default:
		return nil, fmt.Sprintf("is not a private key (it is a PEM %q block) %s", block.Type, hint)
	}
}

func keyKind(k any) string {
	switch k.(type) {
	case *ecdsa.PrivateKey:
		return "an ECDSA key"
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	case *ecdh.PrivateKey:
		return "an ECDH key"
	}
	return "another kind of key"
}

// isName reports whether s is ASCII letters and digits and the bytes in extra.
func isName(s, extra string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Owner is the owner of the repository, a user or an organisation.
func (a *App) Owner() string { return a.owner }

// Repo is the repository's name without its owner.
func (a *App) Repo() string { return a.repo }

// APIURL is the base URL of the GitHub REST API, without a trailing slash.
func (a *App) APIURL() string { return a.apiURL }

// retryPolicy is how the App's calls are retried.
func (a *App) retryPolicy() retryPolicy {
	p := defaultRetry
	if a.maxWait > 0 {
		p.limitWait = a.maxWait
	}
	return p
}

// signJWT signs the App's JSON web token, valid from a minute before now (to
// allow for a clock behind GitHub's) for nine minutes, under GitHub's
// ten-minute limit.
func (a *App) signJWT(now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Issuer:    a.appID,
		IssuedAt:  jwt.NewNumericDate(now.Add(-60 * time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(a.key)
	if err != nil {
		// The signer's errors do not carry key material.
		return "", fmt.Errorf("github: signing the app's JWT: %w", err)
	}
	return s, nil
}
