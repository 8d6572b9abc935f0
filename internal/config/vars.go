package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flagValues are the accepted spellings of an on/off setting, in any case.
const flagValues = "on or off (1, true, yes, on; or 0, false, no, off, empty; in any case)"

// parseFlag reads an on/off setting. A value that is neither is an error
// rather than off: `TASKRUNNER_SAVE_REMOTE_CACHE=ture` must not silently
// skip every upload.
func parseFlag(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "", "0", "false", "no", "off":
		return false, nil
	}
	return false, &SettingError{name, v, flagValues}
}

// Var is one environment variable taskrunner reads.
type Var struct {
	Name string
	// Help says in a few words what it does, for --help.
	Help string
	// Secret values are never printed, only whether they are set.
	Secret bool
	// value is the effective value in s, as the variable would spell it.
	value func(s *Settings) string
}

// Vars are the settings, in the order --help and --env list them.
var Vars = []Var{
	{Name: EnvStateDir, Help: "state directory (locks, hashes, logs)", value: func(s *Settings) string { return s.StateDir }},
	{Name: "TASKRUNNER_ROOT_DIRECTORY", Help: "root directory of the remote cache", value: func(s *Settings) string { return s.RootDir }},
	{Name: "TASKRUNNER_LOG_INFO", Help: "on: show info lines", value: func(s *Settings) string { return onOff(s.LogInfo) }},
	{Name: "TASKRUNNER_DEBUG", Help: "on: show debug lines", value: func(s *Settings) string { return onOff(s.Debug) }},
	{Name: "TASKRUNNER_DISABLE_TIMESTAMPS", Help: "on: no time at the start of lines", value: func(s *Settings) string { return onOff(!s.Timestamps) }},
	{Name: "TASKRUNNER_COLOR", Help: "auto: colour on a terminal; always; never", value: func(s *Settings) string { return s.Color }},
	{Name: "NO_COLOR", Help: "not empty: no colour (unless TASKRUNNER_COLOR=always)", value: func(s *Settings) string { return noColor(s.NoColor) }},
	{Name: "TASKRUNNER_QUIET", Help: "on: show a task's lines only if it fails", value: func(s *Settings) string { return onOff(s.Quiet) }},
	{Name: "TASKRUNNER_OUTPUT_STREAM_TIMEOUT", Help: "seconds to wait for a task's output to close", value: func(s *Settings) string { return seconds(s.DrainTimeout) }},
	{Name: "TASKRUNNER_KILL_GRACE", Help: "seconds a stopped task has before SIGKILL", value: func(s *Settings) string { return seconds(s.KillGrace) }},
	{Name: "TASKRUNNER_PRIME_CACHE_MODE", Help: "on: record inputs without running tasks", value: func(s *Settings) string { return onOff(s.PrimeCacheMode) }},
	{Name: "TASKRUNNER_REMOTE_CACHE_URL", Help: "remote cache, s3://… or file:///…", value: func(s *Settings) string { return s.Cache.URL }},
	{Name: "TASKRUNNER_REMOTE_CACHE_BUCKET", Help: "remote cache's S3 bucket", value: func(s *Settings) string { return s.Cache.Bucket }},
	{Name: "TASKRUNNER_REMOTE_CACHE_PREFIX", Help: "remote cache's key prefix", value: func(s *Settings) string { return s.Cache.Prefix }},
	{Name: "TASKRUNNER_AWS_REGION", Help: "remote cache's S3 region", value: func(s *Settings) string { return s.Cache.Region }},
	{Name: "TASKRUNNER_S3_ENDPOINT", Help: "remote cache's S3 endpoint (empty: AWS)", value: func(s *Settings) string { return s.Cache.Endpoint }},
	{Name: "TASKRUNNER_AWS_ACCESS_KEY", Help: "S3 access key (empty: the AWS chain)", Secret: true, value: func(s *Settings) string { return s.Cache.AccessKey }},
	{Name: "TASKRUNNER_AWS_SECRET_KEY", Help: "S3 secret key", Secret: true, value: func(s *Settings) string { return s.Cache.SecretKey }},
	{Name: "TASKRUNNER_SAVE_REMOTE_CACHE", Help: "on: upload the outputs of tasks that ran", value: func(s *Settings) string { return onOff(s.SaveRemoteCache) }},
	{Name: "TASKRUNNER_CACHE_SIGNING_KEY", Help: "ed25519 key that signs uploads", Secret: true, value: func(s *Settings) string { return s.Cache.SigningKey }},
	{Name: "TASKRUNNER_CACHE_TRUSTED_KEYS", Help: "public keys whose signatures are trusted", value: func(s *Settings) string { return s.Cache.TrustedKeys }},
	{Name: "TASKRUNNER_FALLBACK_BRANCHES", Help: "branches the fuzzy cache may start from", value: func(s *Settings) string { return strings.Join(s.FallbackBranches, " ") }},
	{Name: "GITHUB_HEAD_REF", Help: "branch of a detached HEAD", value: func(s *Settings) string { return s.DetachedBranch }},
	{Name: "GITHUB_BASE_REF", Help: "a pull request's base branch", value: func(s *Settings) string { return s.BaseBranch }},
	{Name: "TASKRUNNER_MAIN_BRANCH", Help: "main branch, for the fuzzy cache", value: func(s *Settings) string { return s.MainBranch }},
	{Name: "TASKRUNNER_UPLOAD_LOGS", Help: "on: upload each task's log", value: func(s *Settings) string { return onOff(s.UploadLogs) }},
	{Name: "TASKRUNNER_LOGS_PREFIX", Help: "where logs are uploaded", value: func(s *Settings) string { return s.Cache.LogsPrefix }},
	{Name: "TASKRUNNER_LOGS_VIEW_URL", Help: "URL commit statuses link logs to", value: func(s *Settings) string { return s.Cache.LogsViewURL }},
	{Name: "TASKRUNNER_KEEP_BUILDS", Help: "builds the state directory keeps (0: all)", value: func(s *Settings) string { return strconv.Itoa(s.KeepBuilds) }},
	{Name: "TASKRUNNER_ENABLE_COMMIT_STATUS", Help: "on: report tasks as commit statuses", value: func(s *Settings) string { return onOff(s.CommitStatus) }},
	{Name: "TASKRUNNER_GITHUB_TOKEN_REFRESH_THRESHOLD_SECONDS", Help: "renew tokens with less left", value: func(s *Settings) string { return seconds(s.GitHub.RefreshThreshold) }},
	{Name: "GITHUB_APP_ID", Help: "GitHub App id", value: func(s *Settings) string { return s.GitHub.AppID }},
	{Name: "GITHUB_INSTALLATION_ID", Help: "GitHub App installation id", value: func(s *Settings) string { return s.GitHub.InstallationID }},
	{Name: "GITHUB_APP_PRIVATE_KEY", Help: "GitHub App private key", Secret: true, value: func(s *Settings) string { return s.GitHub.PrivateKey }},
	{Name: "GITHUB_REPOSITORY", Help: "repository for commit statuses", value: func(s *Settings) string { return s.GitHub.Repository }},
	{Name: "GITHUB_REPOSITORY_OWNER", Help: "its owner", value: func(s *Settings) string { return s.GitHub.Owner }},
	{Name: "GITHUB_API_URL", Help: "GitHub API", value: func(s *Settings) string { return s.GitHub.APIURL }},
	{Name: "GITHUB_ACTIONS", Help: "true: mask every token in the log", value: func(s *Settings) string { return strconv.FormatBool(s.GitHub.Actions) }},
	{Name: "GH_TOKEN", Help: "a fixed token, used when no App is set up", Secret: true, value: func(s *Settings) string { return tokenFrom(s.GitHub.Token, s.GitHub.TokenVar, "GH_TOKEN") }},
	{Name: "GITHUB_TOKEN", Help: "the same, when GH_TOKEN is not set", Secret: true, value: func(s *Settings) string { return tokenFrom(s.GitHub.Token, s.GitHub.TokenVar, "GITHUB_TOKEN") }},
	{Name: "GH_ENTERPRISE_TOKEN", Help: "a fixed token for a GitHub Enterprise API", Secret: true, value: func(s *Settings) string {
		return tokenFrom(s.GitHub.EnterpriseToken, s.GitHub.EnterpriseTokenVar, "GH_ENTERPRISE_TOKEN")
	}},
	{Name: "GITHUB_ENTERPRISE_TOKEN", Help: "the same, when GH_ENTERPRISE_TOKEN is not set", Secret: true, value: func(s *Settings) string {
		return tokenFrom(s.GitHub.EnterpriseToken, s.GitHub.EnterpriseTokenVar, "GITHUB_ENTERPRISE_TOKEN")
	}},
	{Name: "TASKRUNNER_COMMIT_SHA", Help: "the commit statuses go on (default: HEAD, or a pull request's head)", value: func(s *Settings) string { return s.GitHub.CommitSHA }},
	{Name: "TASKRUNNER_GITHUB_MAX_WAIT_SECONDS", Help: "longest wait for a GitHub rate limit", value: func(s *Settings) string { return seconds(s.GitHub.MaxWait) }},
	{Name: "TASKRUNNER_GITHUB_ACTIONS", Help: "off: no step summary or ::error lines on Actions", value: func(s *Settings) string { return onOff(s.GitHub.Niceties) }},
}

// tokenFrom is token when it came from the variable name, else "": of a
// pair of token variables, only the one in use is shown as set.
func tokenFrom(token, from, name string) string {
	if from != name {
		return ""
	}
	return token
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// noColor spells NO_COLOR's effect: it takes no values, only set or not.
func noColor(on bool) string {
	if on {
		return "1"
	}
	return ""
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// Setting is one variable's effective value and where it came from.
type Setting struct {
	Name string
	// Value is the effective value; "(set)" for a secret that is set.
	Value string
	// Source is "environment" or "default".
	Source string
}

// List returns every setting of s, in the order of Vars.
func (s *Settings) List() []Setting {
	out := make([]Setting, 0, len(Vars))
	for _, v := range Vars {
		set := Setting{Name: v.Name, Value: v.value(s), Source: "default"}
		if s.lookup != nil {
			if _, ok := s.lookup(v.Name); ok {
				set.Source = "environment"
			}
		}
		if v.Secret && set.Value != "" {
			set.Value = "(set)"
		}
		out = append(out, set)
	}
	return out
}

// String is the setting as `taskrunner --env` prints it: a line the shell
// can read back, with the source as a comment.
func (s Setting) String() string {
	return fmt.Sprintf("%s=%s # %s", s.Name, shellQuote(s.Value), s.Source)
}

// shellQuote quotes v for a POSIX shell, only where it needs it.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:,+@%=") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
