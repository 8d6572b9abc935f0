package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/taskrunner/taskrunner/internal/github/githubtest"
)

// fakeGitHub is the fake GitHub API of one script.
type fakeGitHub struct{ srv *githubtest.Server }

type fakeGitHubKey struct{}

// setupGitHub starts a fake GitHub API for a script and points the GitHub
// App settings at it. Commit statuses stay off until the script sets
// TASKRUNNER_ENABLE_COMMIT_STATUS=1.
func setupGitHub(env *testscript.Env) error {
	f := &fakeGitHub{srv: githubtest.New(githubtest.WithBearerOnly())}
	env.Values[fakeGitHubKey{}] = f
	env.Defer(func() { f.srv.Close() })
	env.Setenv("GITHUB_API_URL", f.srv.URL)
	env.Setenv("GITHUB_APP_ID", strconv.FormatInt(f.srv.AppID, 10))
	env.Setenv("GITHUB_INSTALLATION_ID", strconv.FormatInt(f.srv.InstallationID, 10))
	env.Setenv("GITHUB_APP_PRIVATE_KEY", f.srv.PrivateKeyPEM())
	env.Setenv("GITHUB_REPOSITORY_OWNER", "acme")
	env.Setenv("GITHUB_REPOSITORY", "acme/widgets")
	return nil
}

// cmdGitHub controls and checks the script's fake GitHub API:
//
//	github restart [ghes] [long] [lifetime=D] [skew=D] [clock=D] [replication=D]  a new server (new URL, no
//	                                     tokens); ghes: an Enterprise Server's API, under /api/v3;
//	                                     long: tokens of about 520 characters;
//	                                     clock: the server's clock is D ahead (or behind);
//	                                     replication: new tokens are refused for D
//	github mints N                       exactly N tokens were minted
//	github fail MATCH STATUS N           the next N matching requests answer STATUS
//	github clear                         no more injected faults: every request is answered
//	github ratelimit MATCH N SECONDS     the next N matching requests answer 429 with Retry-After
//	github primarylimit MATCH N SECONDS  the next N matching requests answer 403 with
//	                                     x-ratelimit-remaining 0, resetting in SECONDS
//	github secondarylimit MATCH N        the next N matching requests answer 403 for a
//	                                     secondary limit, without Retry-After
//	github delay MATCH N DURATION        the next N matching requests wait DURATION (or until
//	                                     the client leaves), then are answered as usual
//	github waitfaults                    wait (at most 20 s) until every armed fault or delay
//	                                     has met its requests
//	github reply MATCH STATUS BODY       the next matching request answers STATUS with BODY
//	github statuses FILE [SHA]           write HEAD's (or SHA's) statuses, newest first, to FILE
//	github calls FILE                    write every request received to FILE, one a line:
//	                                     "POST /repos/acme/widgets/statuses/HEAD 201 token#1"
//	                                     (HEAD's id written HEAD; token#N: the Nth minted token;
//	                                     "(fault)" when an injected fault answered)
//	github issue VAR                     set VAR to a token the server knows but did not
//	                                     mint, as Actions gives GITHUB_TOKEN
//	github redact FILE...                rewrite the files with each minted token written
//	                                     <token N>, so that cmp can check where tokens appear,
//	                                     and each password_expiry_utc=<expiry>
//	github nosecrets FILE...             no minted token, nor the key, appears in the files
//	                                     (stdout and stderr name the last command's output)
func cmdGitHub(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: github restart|mints|fail|clear|reply|ratelimit|primarylimit|secondarylimit|delay|waitfaults|statuses|calls|issue|redact|nosecrets ...")
	}
	f := ts.Value(fakeGitHubKey{}).(*fakeGitHub)
	switch args[0] {
	case "restart":
		opts := []githubtest.Option{githubtest.WithBearerOnly()}
		for _, a := range args[1:] {
			if a == "ghes" {
				opts = append(opts, githubtest.WithEnterprisePaths())
				continue
			}
			if a == "long" {
				opts = append(opts, githubtest.WithLongTokens())
				continue
			}
			k, v, _ := strings.Cut(a, "=")
			d, err := time.ParseDuration(v)
			ts.Check(err)
			switch k {
			case "lifetime":
				opts = append(opts, githubtest.WithTokenLifetime(d))
			case "skew":
				opts = append(opts, githubtest.WithExpirySkew(d))
			case "replication":
				opts = append(opts, githubtest.WithReplication(d))
			case "clock":
				opts = append(opts, githubtest.WithClock(d))
			default:
				ts.Fatalf("github restart: unknown option %q", k)
			}
		}
		f.srv.Close()
		f.srv = githubtest.New(opts...)
		ts.Setenv("GITHUB_API_URL", f.srv.APIURL)
	case "mints":
		want := atoi(ts, args, 1)
		if got := f.srv.Mints(); got != want {
			ts.Fatalf("github: %d tokens minted, want %d", got, want)
		}
	case "fail":
		f.srv.Fail(arg(ts, args, 1), atoi(ts, args, 2), atoi(ts, args, 3))
	case "clear":
		f.srv.ClearFaults()
	case "reply":
		f.srv.Inject(githubtest.Fault{Match: arg(ts, args, 1), Status: atoi(ts, args, 2), Body: arg(ts, args, 3), Times: 1})
	case "ratelimit":
		f.srv.RateLimit(arg(ts, args, 1), atoi(ts, args, 2), time.Duration(atoi(ts, args, 3))*time.Second)
	case "primarylimit":
		f.srv.PrimaryLimit(arg(ts, args, 1), atoi(ts, args, 2), time.Duration(atoi(ts, args, 3))*time.Second)
	case "secondarylimit":
		f.srv.SecondaryLimit(arg(ts, args, 1), atoi(ts, args, 2))
	case "delay":
		d, err := time.ParseDuration(arg(ts, args, 3))
		ts.Check(err)
		f.srv.DelayNext(arg(ts, args, 1), atoi(ts, args, 2), d)
	case "waitfaults":
		deadline := time.Now().Add(20 * time.Second)
		for f.srv.FaultsLeft() > 0 {
			if time.Now().After(deadline) {
				ts.Fatalf("github waitfaults: %d requests still awaited after 20 seconds", f.srv.FaultsLeft())
			}
			time.Sleep(10 * time.Millisecond)
		}
	case "statuses":
		sha := head(ts)
		if len(args) > 2 {
			sha = args[2]
		}
		if sha == "" {
			ts.Fatalf("github statuses: no git repository with a commit in $WORK")
		}
		var b strings.Builder
		for _, s := range f.srv.Statuses("acme", "widgets", sha) {
			fmt.Fprintf(&b, "%s %s %s %s\n", s.Context, s.State, orNull(s.Description), orNull(s.TargetURL))
		}
		ts.Check(writeFile(ts, arg(ts, args, 1), b.String()))
	case "calls":
		var b strings.Builder
		sha := head(ts)
		for _, c := range f.srv.Calls() {
			line := c.String()
			if sha != "" {
				line = strings.ReplaceAll(line, sha, "HEAD")
			}
			fmt.Fprintln(&b, line)
		}
		ts.Check(writeFile(ts, arg(ts, args, 1), b.String()))
	case "issue":
		ts.Setenv(arg(ts, args, 1), f.srv.Issue())
	case "redact":
		tokens := f.srv.Tokens()
		for _, name := range args[1:] {
			text := ts.ReadFile(name)
			for i, t := range tokens {
				text = strings.ReplaceAll(text, t, fmt.Sprintf("<token %d>", i+1))
			}
			for _, t := range f.srv.Issued() {
				text = strings.ReplaceAll(text, t, "<issued token>")
			}
			text = expiryLine.ReplaceAllString(text, "password_expiry_utc=<expiry>")
			ts.Check(writeFile(ts, name, text))
		}
	case "nosecrets":
		secrets := append(f.srv.Tokens(), f.srv.PrivateKeyPEM()[40:80])
		secrets = append(secrets, f.srv.Issued()...)
		for _, name := range args[1:] {
			text := ts.ReadFile(name)
			for _, s := range secrets {
				if strings.Contains(text, s) {
					ts.Fatalf("github: %s holds a secret", name)
				}
			}
		}
	default:
		ts.Fatalf("github: unknown subcommand %q", args[0])
	}
}

// expiryLine is the expiry a git helper reports, which redact rewrites.
var expiryLine = regexp.MustCompile(`password_expiry_utc=[0-9]+`)

// head is the commit id of HEAD in $WORK, or "" when there is none.
func head(ts *testscript.TestScript) string {
	out, err := exec.Command("git", "-C", ts.MkAbs("."), "rev-parse", "--verify", "-q", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func arg(ts *testscript.TestScript, args []string, i int) string {
	if i >= len(args) {
		ts.Fatalf("github %s: missing argument %d", args[0], i)
	}
	return args[i]
}

func atoi(ts *testscript.TestScript, args []string, i int) int {
	n, err := strconv.Atoi(arg(ts, args, i))
	ts.Check(err)
	return n
}

func orNull(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}

func writeFile(ts *testscript.TestScript, name, content string) error {
	return os.WriteFile(ts.MkAbs(name), []byte(content), 0o644)
}
