// Package config reads taskrunner's settings from the environment, once, into
// one struct. Nothing else in the program calls os.Getenv: every package is
// handed the values it needs from here.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/taskrunner/taskrunner/internal/fds"
)

// Names of the variables a taskrunner passes to the processes below it,
// besides those that name its descriptors (package fds).
const (
	EnvBuildID = "_taskrunner_build_id"
	// EnvStateDir is the state directory, which a taskrunner passes down to
	// its task as an absolute path.
	EnvStateDir = "TASKRUNNER_STATE_DIRECTORY"
	// EnvJobs names the jobs a task runs under, innermost last, one a line.
	EnvJobs = "_taskrunner_jobs"
)

// Settings are all the environment variables taskrunner reads.
type Settings struct {
	// StateDir is TASKRUNNER_STATE_DIRECTORY, default /tmp/taskrunner.
	StateDir string
	// RootDir is TASKRUNNER_ROOT_DIRECTORY, default the current directory.
	RootDir string

	Debug        bool          // TASKRUNNER_DEBUG: debug lines reach the toplevel
	LogInfo      bool          // TASKRUNNER_LOG_INFO: info lines reach the toplevel
	Timestamps   bool          // not TASKRUNNER_DISABLE_TIMESTAMPS
	Quiet        bool          // TASKRUNNER_QUIET
	DrainTimeout time.Duration // TASKRUNNER_OUTPUT_STREAM_TIMEOUT, default 5 s
	// KillGrace is TASKRUNNER_KILL_GRACE, default 10 s: how long the task's
	// processes have to end after a stop signal before they are killed.
	KillGrace       time.Duration
	PrimeCacheMode  bool   // TASKRUNNER_PRIME_CACHE_MODE
	SaveRemoteCache bool   // TASKRUNNER_SAVE_REMOTE_CACHE
	UploadLogs      bool   // TASKRUNNER_UPLOAD_LOGS
	MainBranch      string // TASKRUNNER_MAIN_BRANCH; empty: untracked
	// FallbackBranches is TASKRUNNER_FALLBACK_BRANCHES split on white space.
	FallbackBranches []string
	// DetachedBranch names the branch when HEAD is detached: GITHUB_HEAD_REF,
	// which GitHub Actions sets to the pull request's branch while it checks
	// out the merge commit.
	DetachedBranch string
	// BaseBranch is GITHUB_BASE_REF: on GitHub Actions, the branch a pull
	// request merges into. A build on a detached HEAD never records the
	// latest hash of that branch.
	BaseBranch string
	// CommitStatus is TASKRUNNER_ENABLE_COMMIT_STATUS.
	CommitStatus bool
	// KeepBuilds is TASKRUNNER_KEEP_BUILDS, default 50: the toplevel
	// removes older builds from the state directory; 0 keeps them all.
	KeepBuilds int
	// Color is TASKRUNNER_COLOR: ColorAuto (the default), ColorAlways or
	// ColorNever.
	Color string
	// NoColor is NO_COLOR set to anything but the empty string
	// (https://no-color.org): no colour, unless TASKRUNNER_COLOR=always.
	NoColor bool

	// GitHub holds the GitHub App settings.
	GitHub GitHub
	// Cache holds the remote cache settings.
	Cache Cache

	// Inherited is what a toplevel taskrunner passed down; nil in a toplevel.
	Inherited *Inherited

	// lookup is the environment the settings were read from, for List.
	lookup func(string) (string, bool)
}

// GitHub holds the settings of the GitHub App that posts commit statuses.
// They are checked only when something needs GitHub, by the github package.
type GitHub struct {
	APIURL         string // GITHUB_API_URL, default https://api.github.com
	AppID          string // GITHUB_APP_ID
	InstallationID string // GITHUB_INSTALLATION_ID
	// PrivateKey is GITHUB_APP_PRIVATE_KEY, PEM, with each "|" standing for
	// a newline already replaced.
	PrivateKey string
	Owner      string // GITHUB_REPOSITORY_OWNER
	// Repository is GITHUB_REPOSITORY: a bare name or "owner/repo".
	Repository string
	// Actions is GITHUB_ACTIONS=true: new tokens are masked in the log.
	Actions bool
	// Token is GH_TOKEN, else GITHUB_TOKEN, and EnterpriseToken is
	// GH_ENTERPRISE_TOKEN, else GITHUB_ENTERPRISE_TOKEN, as gh reads them: a
	// fixed token, used when no App is set up. TokenVar and
	// EnterpriseTokenVar name the variables they came from.
	Token, TokenVar                     string
	EnterpriseToken, EnterpriseTokenVar string
	// CommitSHA is TASKRUNNER_COMMIT_SHA: the commit statuses go on, when
	// set, instead of the one found from the event or HEAD.
	CommitSHA string
	// EventName and EventPath are GITHUB_EVENT_NAME and GITHUB_EVENT_PATH:
	// under GitHub Actions, the event that started the workflow and the
	// file holding its payload.
	EventName, EventPath string
	// StepSummary is GITHUB_STEP_SUMMARY: under GitHub Actions, the file
	// the toplevel appends the build's table to.
	StepSummary string
	// Niceties is not TASKRUNNER_GITHUB_ACTIONS=0 (or false, no, off): the
	// step summary and the ::error line of a failed task, under Actions.
	Niceties bool
	// MaxWait is TASKRUNNER_GITHUB_MAX_WAIT_SECONDS, default 300 s: the
	// longest a call waits for GitHub's rate limits.
	MaxWait time.Duration
	// RefreshThreshold is TASKRUNNER_GITHUB_TOKEN_REFRESH_THRESHOLD_SECONDS,
	// default 300 s: a token with less left than this is renewed.
	RefreshThreshold time.Duration
}

// Cache holds the settings of the remote cache and of log uploads. They are
// checked only when something needs the store, by the cache package.
type Cache struct {
	// URL is TASKRUNNER_REMOTE_CACHE_URL (s3://bucket/prefix?region=…&endpoint=…
	// or file:///path), an alternative to the variables below.
	URL         string
	Endpoint    string // TASKRUNNER_S3_ENDPOINT; empty for AWS
	Region      string // TASKRUNNER_AWS_REGION, default eu-central-1
	AccessKey   string // TASKRUNNER_AWS_ACCESS_KEY; empty: the AWS credential chain
	SecretKey   string // TASKRUNNER_AWS_SECRET_KEY
	Bucket      string // TASKRUNNER_REMOTE_CACHE_BUCKET
	Prefix      string // TASKRUNNER_REMOTE_CACHE_PREFIX, default "taskrunner/"
	LogsPrefix  string // TASKRUNNER_LOGS_PREFIX
	LogsViewURL string // TASKRUNNER_LOGS_VIEW_URL
	// SigningKey is TASKRUNNER_CACHE_SIGNING_KEY: the text of an OpenSSH
	// ed25519 private key that signs every object the build uploads.
	SigningKey string
	// TrustedKeys is TASKRUNNER_CACHE_TRUSTED_KEYS: public keys, one a line;
	// with any, only objects signed by one of them are restored.
	TrustedKeys string
}

// Inherited holds the variables a subtask finds in its environment; package
// fds states what the descriptors are.
type Inherited struct {
	BuildID        string
	ToplevelStdout int
	ToplevelStderr int
	// RequestPipe and ResponsePipe are the parent job's control channel, or
	// -1 where the parent left none (a taskrunner started outside any task's
	// script, e.g. by a redirected helper).
	RequestPipe  int
	ResponsePipe int
	// Jobs are the jobs this taskrunner runs under, outermost first.
	Jobs []string
}

// The values of TASKRUNNER_COLOR.
const (
	ColorAuto   = "auto"   // colour on the toplevel's streams that are terminals
	ColorAlways = "always" // colour wherever the lines go, for CI logs that render it
	ColorNever  = "never"  // no colour
)

// Colored reports whether lines written to one of the toplevel's streams
// get colour, given whether that stream is a terminal. A file or a pipe
// gets the same bytes as without colour, unless colour is forced.
func (s *Settings) Colored(terminal bool) bool {
	switch s.Color {
	case ColorAlways:
		return true
	case ColorNever:
		return false
	}
	return terminal && !s.NoColor
}

// SettingError is a variable with a value taskrunner cannot use.
type SettingError struct {
	Name, Value, Want string
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s=%q is not %s", e.Name, e.Value, e.Want)
}

// FromEnv reads the settings from the process environment.
func FromEnv() (*Settings, error) {
	return Load(os.LookupEnv)
}

// maxSeconds bounds a setting in seconds: ParseFloat also reads "NaN",
// "inf" and numbers no time.Duration holds, which would become a negative
// duration.
const maxSeconds = 1e9

// durationSetting sets *d from the variable name, a number of seconds, when
// it is set; *d keeps its default otherwise.
func durationSetting(get func(string) string, name string, d *time.Duration) error {
	v := get(name)
	if v == "" {
		return nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || !(secs >= 0 && secs <= maxSeconds) {
		return &SettingError{name, v, "a number of seconds"}
	}
	*d = time.Duration(secs * float64(time.Second))
	return nil
}

// Load reads the settings through lookup, so tests can pass their own
// environment.
func Load(lookup func(string) (string, bool)) (*Settings, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	var flagErr error
	flag := func(name string) bool {
		on, err := parseFlag(name, get(name))
		if err != nil && flagErr == nil {
			flagErr = err
		}
		return on
	}

	s := &Settings{
		StateDir:         get(EnvStateDir),
		RootDir:          get("TASKRUNNER_ROOT_DIRECTORY"),
		Debug:            flag("TASKRUNNER_DEBUG"),
		LogInfo:          flag("TASKRUNNER_LOG_INFO"),
		Timestamps:       !flag("TASKRUNNER_DISABLE_TIMESTAMPS"),
		Quiet:            flag("TASKRUNNER_QUIET"),
		DrainTimeout:     5 * time.Second,
		KillGrace:        10 * time.Second,
		PrimeCacheMode:   flag("TASKRUNNER_PRIME_CACHE_MODE"),
		SaveRemoteCache:  flag("TASKRUNNER_SAVE_REMOTE_CACHE"),
		UploadLogs:       flag("TASKRUNNER_UPLOAD_LOGS"),
		MainBranch:       get("TASKRUNNER_MAIN_BRANCH"),
		FallbackBranches: strings.Fields(get("TASKRUNNER_FALLBACK_BRANCHES")),
		DetachedBranch:   get("GITHUB_HEAD_REF"),
		BaseBranch:       get("GITHUB_BASE_REF"),
		CommitStatus:     flag("TASKRUNNER_ENABLE_COMMIT_STATUS"),
		lookup:           lookup,
	}
	if flagErr != nil {
		return nil, flagErr
	}
	s.GitHub = GitHub{
		APIURL:           get("GITHUB_API_URL"),
		AppID:            get("GITHUB_APP_ID"),
		InstallationID:   get("GITHUB_INSTALLATION_ID"),
		PrivateKey:       strings.ReplaceAll(get("GITHUB_APP_PRIVATE_KEY"), "|", "\n"),
		Owner:            get("GITHUB_REPOSITORY_OWNER"),
		Repository:       get("GITHUB_REPOSITORY"),
		Actions:          get("GITHUB_ACTIONS") == "true",
		CommitSHA:        strings.TrimSpace(get("TASKRUNNER_COMMIT_SHA")),
		EventName:        get("GITHUB_EVENT_NAME"),
		EventPath:        get("GITHUB_EVENT_PATH"),
		RefreshThreshold: 300 * time.Second,
		MaxWait:          300 * time.Second,
		StepSummary:      get("GITHUB_STEP_SUMMARY"),
	}
	// On unless turned off: unlike the other on/off settings, empty is on.
	s.GitHub.Niceties = true
	if v := get("TASKRUNNER_GITHUB_ACTIONS"); v != "" {
		on, err := parseFlag("TASKRUNNER_GITHUB_ACTIONS", v)
		if err != nil {
			return nil, err
		}
		s.GitHub.Niceties = on
	}
	for _, name := range []string{"GITHUB_TOKEN", "GH_TOKEN"} {
		if v := strings.TrimSpace(get(name)); v != "" {
			s.GitHub.Token, s.GitHub.TokenVar = v, name
		}
	}
	for _, name := range []string{"GITHUB_ENTERPRISE_TOKEN", "GH_ENTERPRISE_TOKEN"} {
		if v := strings.TrimSpace(get(name)); v != "" {
			s.GitHub.EnterpriseToken, s.GitHub.EnterpriseTokenVar = v, name
		}
	}
	prefix, prefixSet := lookup("TASKRUNNER_REMOTE_CACHE_PREFIX")
	if !prefixSet {
		prefix = "taskrunner/"
	}
	s.Cache = Cache{
		URL:         get("TASKRUNNER_REMOTE_CACHE_URL"),
		Endpoint:    get("TASKRUNNER_S3_ENDPOINT"),
		Region:      get("TASKRUNNER_AWS_REGION"),
		AccessKey:   get("TASKRUNNER_AWS_ACCESS_KEY"),
		SecretKey:   get("TASKRUNNER_AWS_SECRET_KEY"),
		Bucket:      get("TASKRUNNER_REMOTE_CACHE_BUCKET"),
		Prefix:      prefix,
		LogsPrefix:  get("TASKRUNNER_LOGS_PREFIX"),
		LogsViewURL: get("TASKRUNNER_LOGS_VIEW_URL"),
		SigningKey:  get("TASKRUNNER_CACHE_SIGNING_KEY"),
		TrustedKeys: get("TASKRUNNER_CACHE_TRUSTED_KEYS"),
	}
	if s.Cache.Region == "" {
		s.Cache.Region = "eu-central-1"
	}
	if s.GitHub.APIURL == "" {
		s.GitHub.APIURL = "https://api.github.com"
	}
	if err := durationSetting(get, "TASKRUNNER_GITHUB_TOKEN_REFRESH_THRESHOLD_SECONDS", &s.GitHub.RefreshThreshold); err != nil {
		return nil, err
	}
	s.Color = strings.ToLower(get("TASKRUNNER_COLOR"))
	switch s.Color {
	case "":
		s.Color = ColorAuto
	case ColorAuto, ColorAlways, ColorNever:
	default:
		return nil, &SettingError{"TASKRUNNER_COLOR", get("TASKRUNNER_COLOR"), "auto, always or never"}
	}
	s.NoColor = get("NO_COLOR") != ""
	if err := durationSetting(get, "TASKRUNNER_GITHUB_MAX_WAIT_SECONDS", &s.GitHub.MaxWait); err != nil {
		return nil, err
	}
	s.KeepBuilds = 50
	if v := get("TASKRUNNER_KEEP_BUILDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, &SettingError{"TASKRUNNER_KEEP_BUILDS", v, "a number of builds (0 keeps all)"}
		}
		s.KeepBuilds = n
	}
	if s.StateDir == "" {
		s.StateDir = "/tmp/taskrunner"
	}
	// Absolute, and passed down so (see EnvStateDir): a nested task started
	// in another folder must find the same builds and locks.
	if abs, err := filepath.Abs(s.StateDir); err == nil {
		s.StateDir = abs
	}
	if s.RootDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("cannot read the current directory: %w", err)
		}
		s.RootDir = wd
	}
	abs, err := filepath.Abs(s.RootDir)
	if err != nil {
		return nil, &SettingError{"TASKRUNNER_ROOT_DIRECTORY", s.RootDir, "a usable path"}
	}
	s.RootDir = abs
	if err := durationSetting(get, "TASKRUNNER_OUTPUT_STREAM_TIMEOUT", &s.DrainTimeout); err != nil {
		return nil, err
	}
	if err := durationSetting(get, "TASKRUNNER_KILL_GRACE", &s.KillGrace); err != nil {
		return nil, err
	}

	if id := get(EnvBuildID); id != "" {
		in := &Inherited{BuildID: id}
		if strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
			return nil, &SettingError{EnvBuildID, id, "a build id"}
		}
		named := []struct {
			name     string
			dst      *int
			optional bool
		}{
			{fds.EnvToplevelStdout, &in.ToplevelStdout, false},
			{fds.EnvToplevelStderr, &in.ToplevelStderr, false},
			{fds.EnvRequestPipe, &in.RequestPipe, true},
			{fds.EnvResponsePipe, &in.ResponsePipe, true},
		}
		for _, fd := range named {
			v, ok := lookup(fd.name)
			if !ok && fd.optional {
				*fd.dst = -1
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, &SettingError{fd.name, v, "a file descriptor number"}
			}
			*fd.dst = n
		}
		if jobs := get(EnvJobs); jobs != "" {
			in.Jobs = strings.Split(jobs, "\n")
		}
		s.Inherited = in
	}
	return s, nil
}

// Toplevel reports whether this process starts a new build.
func (s *Settings) Toplevel() bool { return s.Inherited == nil }
