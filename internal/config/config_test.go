package config

import (
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/taskrunner/taskrunner/internal/fds"
)

// env is a fake environment for Load.
type env map[string]string

func (e env) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

func TestLoad(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   env
		check func(t *testing.T, s *Settings)
	}{
		{"defaults", env{}, func(t *testing.T, s *Settings) {
			if s.StateDir != "/tmp/taskrunner" {
				t.Errorf("StateDir %q", s.StateDir)
			}
			if s.RootDir != wd {
				t.Errorf("RootDir %q, want the current directory %q", s.RootDir, wd)
			}
			if !s.Timestamps || s.Debug || s.LogInfo || s.Quiet || s.PrimeCacheMode || s.SaveRemoteCache || s.UploadLogs || s.CommitStatus {
				t.Errorf("flags: %+v", s)
			}
			if s.DrainTimeout != 5*time.Second {
				t.Errorf("DrainTimeout %v", s.DrainTimeout)
			}
			if s.KillGrace != 10*time.Second {
				t.Errorf("KillGrace %v", s.KillGrace)
			}
			if !s.Toplevel() || s.Inherited != nil {
				t.Errorf("not a toplevel: %+v", s.Inherited)
			}
		}},
		{"flags are 1 for on", env{
			"TASKRUNNER_DEBUG": "1", "TASKRUNNER_LOG_INFO": "1", "TASKRUNNER_DISABLE_TIMESTAMPS": "1",
			"TASKRUNNER_QUIET": "1", "TASKRUNNER_PRIME_CACHE_MODE": "1", "TASKRUNNER_SAVE_REMOTE_CACHE": "1",
			"TASKRUNNER_UPLOAD_LOGS": "1", "TASKRUNNER_ENABLE_COMMIT_STATUS": "1",
		}, func(t *testing.T, s *Settings) {
			if s.Timestamps || !s.Debug || !s.LogInfo || !s.Quiet || !s.PrimeCacheMode || !s.SaveRemoteCache || !s.UploadLogs || !s.CommitStatus {
				t.Errorf("flags: %+v", s)
			}
		}},
		{"on and off in words", env{"TASKRUNNER_DEBUG": "True", "TASKRUNNER_QUIET": "off", "TASKRUNNER_DISABLE_TIMESTAMPS": "YES",
			"TASKRUNNER_LOG_INFO": ""},
			func(t *testing.T, s *Settings) {
				if !s.Debug || s.Quiet || s.Timestamps || s.LogInfo {
					t.Errorf("flags: %+v", s)
				}
			}},
		{"paths and lists", env{
			"TASKRUNNER_STATE_DIRECTORY": "/var/tr", "TASKRUNNER_ROOT_DIRECTORY": "sub/dir",
			"TASKRUNNER_MAIN_BRANCH": "main", "TASKRUNNER_FALLBACK_BRANCHES": " dev  release\tstaging ",
		}, func(t *testing.T, s *Settings) {
			if s.StateDir != "/var/tr" {
				t.Errorf("StateDir %q", s.StateDir)
			}
			if want := wd + "/sub/dir"; s.RootDir != want {
				t.Errorf("RootDir %q, want %q", s.RootDir, want)
			}
			if s.MainBranch != "main" {
				t.Errorf("MainBranch %q", s.MainBranch)
			}
			if want := []string{"dev", "release", "staging"}; !reflect.DeepEqual(s.FallbackBranches, want) {
				t.Errorf("FallbackBranches %q, want %q", s.FallbackBranches, want)
			}
		}},
		{"drain timeout in seconds", env{"TASKRUNNER_OUTPUT_STREAM_TIMEOUT": "1.5"}, func(t *testing.T, s *Settings) {
			if s.DrainTimeout != 1500*time.Millisecond {
				t.Errorf("DrainTimeout %v", s.DrainTimeout)
			}
		}},
		{"drain timeout zero", env{"TASKRUNNER_OUTPUT_STREAM_TIMEOUT": "0"}, func(t *testing.T, s *Settings) {
			if s.DrainTimeout != 0 {
				t.Errorf("DrainTimeout %v", s.DrainTimeout)
			}
		}},
		{"kill grace in seconds", env{"TASKRUNNER_KILL_GRACE": "0.5"}, func(t *testing.T, s *Settings) {
			if s.KillGrace != 500*time.Millisecond {
				t.Errorf("KillGrace %v", s.KillGrace)
			}
		}},
		{"GitHub waits in seconds", env{"TASKRUNNER_GITHUB_MAX_WAIT_SECONDS": "7", "TASKRUNNER_GITHUB_TOKEN_REFRESH_THRESHOLD_SECONDS": "1.5"},
			func(t *testing.T, s *Settings) {
				if s.GitHub.MaxWait != 7*time.Second || s.GitHub.RefreshThreshold != 1500*time.Millisecond {
					t.Errorf("MaxWait %v, RefreshThreshold %v", s.GitHub.MaxWait, s.GitHub.RefreshThreshold)
				}
			}},
		{"kill grace zero", env{"TASKRUNNER_KILL_GRACE": "0"}, func(t *testing.T, s *Settings) {
			if s.KillGrace != 0 {
				t.Errorf("KillGrace %v", s.KillGrace)
			}
		}},
		{"subtask", env{
			EnvBuildID: "2026-11-29T16:40:00.123456Z", fds.EnvToplevelStdout: "3", fds.EnvToplevelStderr: "4",
			fds.EnvRequestPipe: "5", fds.EnvResponsePipe: "6",
		}, func(t *testing.T, s *Settings) {
			want := &Inherited{BuildID: "2026-11-29T16:40:00.123456Z", ToplevelStdout: 3, ToplevelStderr: 4, RequestPipe: 5, ResponsePipe: 6}
			if s.Toplevel() || !reflect.DeepEqual(s.Inherited, want) {
				t.Errorf("Inherited %+v, want %+v", s.Inherited, want)
			}
		}},
		{"subtask without a control channel", env{EnvBuildID: "b", fds.EnvToplevelStdout: "1", fds.EnvToplevelStderr: "2"},
			func(t *testing.T, s *Settings) {
				want := &Inherited{BuildID: "b", ToplevelStdout: 1, ToplevelStderr: 2, RequestPipe: -1, ResponsePipe: -1}
				if !reflect.DeepEqual(s.Inherited, want) {
					t.Errorf("Inherited %+v, want %+v", s.Inherited, want)
				}
			}},
		{"an empty build id is a toplevel", env{EnvBuildID: "", fds.EnvToplevelStdout: "abc"}, func(t *testing.T, s *Settings) {
			if !s.Toplevel() {
				t.Errorf("not a toplevel: %+v", s.Inherited)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(tt.env.lookup)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	sub := func(e env) env {
		out := env{EnvBuildID: "b", fds.EnvToplevelStdout: "3", fds.EnvToplevelStderr: "4"}
		for k, v := range e {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name    string
		env     env
		varName string
		want    string
	}{
		{"timeout not a number", env{"TASKRUNNER_OUTPUT_STREAM_TIMEOUT": "5s"}, "TASKRUNNER_OUTPUT_STREAM_TIMEOUT",
			`TASKRUNNER_OUTPUT_STREAM_TIMEOUT="5s" is not a number of seconds`},
		{"timeout negative", env{"TASKRUNNER_OUTPUT_STREAM_TIMEOUT": "-1"}, "TASKRUNNER_OUTPUT_STREAM_TIMEOUT", ""},
		{"timeout NaN", env{"TASKRUNNER_OUTPUT_STREAM_TIMEOUT": "NaN"}, "TASKRUNNER_OUTPUT_STREAM_TIMEOUT", ""},
		{"timeout infinite", env{"TASKRUNNER_OUTPUT_STREAM_TIMEOUT": "inf"}, "TASKRUNNER_OUTPUT_STREAM_TIMEOUT", ""},
		{"timeout beyond a Duration", env{"TASKRUNNER_OUTPUT_STREAM_TIMEOUT": "1e300"}, "TASKRUNNER_OUTPUT_STREAM_TIMEOUT", ""},
		{"kill grace not a number", env{"TASKRUNNER_KILL_GRACE": "10s"}, "TASKRUNNER_KILL_GRACE",
			`TASKRUNNER_KILL_GRACE="10s" is not a number of seconds`},
		{"kill grace negative", env{"TASKRUNNER_KILL_GRACE": "-1"}, "TASKRUNNER_KILL_GRACE", ""},
		{"kill grace NaN", env{"TASKRUNNER_KILL_GRACE": "NaN"}, "TASKRUNNER_KILL_GRACE", ""},
		{"kill grace beyond a Duration", env{"TASKRUNNER_KILL_GRACE": "1e300"}, "TASKRUNNER_KILL_GRACE", ""},
		{"max wait not a number", env{"TASKRUNNER_GITHUB_MAX_WAIT_SECONDS": "soon"}, "TASKRUNNER_GITHUB_MAX_WAIT_SECONDS",
			`TASKRUNNER_GITHUB_MAX_WAIT_SECONDS="soon" is not a number of seconds`},
		{"refresh threshold negative", env{"TASKRUNNER_GITHUB_TOKEN_REFRESH_THRESHOLD_SECONDS": "-5"},
			"TASKRUNNER_GITHUB_TOKEN_REFRESH_THRESHOLD_SECONDS", ""},
		{"niceties neither on nor off", env{"TASKRUNNER_GITHUB_ACTIONS": "maybe"}, "TASKRUNNER_GITHUB_ACTIONS", ""},
		{"flag neither on nor off", env{"TASKRUNNER_SAVE_REMOTE_CACHE": "ture"}, "TASKRUNNER_SAVE_REMOTE_CACHE",
			`TASKRUNNER_SAVE_REMOTE_CACHE="ture" is not on or off (1, true, yes, on; or 0, false, no, off, empty; in any case)`},
		{"flag 2", env{"TASKRUNNER_DEBUG": "2"}, "TASKRUNNER_DEBUG", ""},
		{"colour neither auto, always nor never", env{"TASKRUNNER_COLOR": "yes"}, "TASKRUNNER_COLOR",
			`TASKRUNNER_COLOR="yes" is not auto, always or never`},
		{"build id with a slash", env{EnvBuildID: "a/b", fds.EnvToplevelStdout: "3", fds.EnvToplevelStderr: "4"}, EnvBuildID, ""},
		{"build id ..", env{EnvBuildID: "..", fds.EnvToplevelStdout: "3", fds.EnvToplevelStderr: "4"}, EnvBuildID, ""},
		{"stdout not a number", sub(env{fds.EnvToplevelStdout: "abc"}), fds.EnvToplevelStdout,
			`_taskrunner_toplevel_stdout="abc" is not a file descriptor number`},
		{"stdout missing", env{EnvBuildID: "b", fds.EnvToplevelStderr: "4"}, fds.EnvToplevelStdout, ""},
		{"stderr negative", sub(env{fds.EnvToplevelStderr: "-2"}), fds.EnvToplevelStderr, ""},
		{"request pipe empty", sub(env{fds.EnvRequestPipe: ""}), fds.EnvRequestPipe, ""},
		{"response pipe not a number", sub(env{fds.EnvResponsePipe: "6x"}), fds.EnvResponsePipe, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(tt.env.lookup)
			var se *SettingError
			if !errors.As(err, &se) {
				t.Fatalf("Load = %+v, %v; want a SettingError", s, err)
			}
			if se.Name != tt.varName {
				t.Errorf("error names %s, want %s", se.Name, tt.varName)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
}

func TestColored(t *testing.T) {
	tests := []struct {
		env                 env
		onTerminal, onFiles bool
	}{
		{env{}, true, false},
		{env{"TASKRUNNER_COLOR": "auto"}, true, false},
		{env{"NO_COLOR": "1"}, false, false},
		{env{"NO_COLOR": ""}, true, false}, // empty is unset, as no-color.org says
		{env{"TASKRUNNER_COLOR": "never"}, false, false},
		{env{"TASKRUNNER_COLOR": "Always"}, true, true},
		{env{"TASKRUNNER_COLOR": "always", "NO_COLOR": "1"}, true, true},
	}
	for _, tt := range tests {
		s, err := Load(tt.env.lookup)
		if err != nil {
			t.Fatalf("Load(%v): %v", tt.env, err)
		}
		if got := s.Colored(true); got != tt.onTerminal {
			t.Errorf("%v: Colored(terminal) = %v, want %v", tt.env, got, tt.onTerminal)
		}
		if got := s.Colored(false); got != tt.onFiles {
			t.Errorf("%v: Colored(file or pipe) = %v, want %v", tt.env, got, tt.onFiles)
		}
	}
}

func TestParseFlag(t *testing.T) {
	for _, v := range []string{"1", "true", "TRUE", "True", "yes", "Yes", "on", "ON"} {
		if on, err := parseFlag("X", v); !on || err != nil {
			t.Errorf("parseFlag(%q) = %v, %v; want on", v, on, err)
		}
	}
	for _, v := range []string{"", "0", "false", "FALSE", "no", "No", "off", "OFF"} {
		if on, err := parseFlag("X", v); on || err != nil {
			t.Errorf("parseFlag(%q) = %v, %v; want off", v, on, err)
		}
	}
	for _, v := range []string{"2", "y", "n", " 1", "enabled", "-1"} {
		if _, err := parseFlag("X", v); err == nil {
			t.Errorf("parseFlag(%q): no error", v)
		}
	}
}

func TestList(t *testing.T) {
	s, err := Load(env{"TASKRUNNER_QUIET": "yes", "TASKRUNNER_AWS_SECRET_KEY": "hunter2", "TASKRUNNER_KILL_GRACE": "2.5",
		"GITHUB_APP_PRIVATE_KEY": "", "GH_TOKEN": "ghs_gh", "GITHUB_TOKEN": "ghs_github"}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, set := range s.List() {
		got[set.Name] = set.String()
	}
	want := map[string]string{
		"TASKRUNNER_QUIET":                 "TASKRUNNER_QUIET=on # environment",
		"TASKRUNNER_DEBUG":                 "TASKRUNNER_DEBUG=off # default",
		"TASKRUNNER_AWS_SECRET_KEY":        "TASKRUNNER_AWS_SECRET_KEY='(set)' # environment",
		"TASKRUNNER_AWS_ACCESS_KEY":        "TASKRUNNER_AWS_ACCESS_KEY='' # default",
		"GITHUB_APP_PRIVATE_KEY":           "GITHUB_APP_PRIVATE_KEY='' # environment",
		"TASKRUNNER_KILL_GRACE":            "TASKRUNNER_KILL_GRACE=2.5 # environment",
		"TASKRUNNER_OUTPUT_STREAM_TIMEOUT": "TASKRUNNER_OUTPUT_STREAM_TIMEOUT=5 # default",
		"TASKRUNNER_REMOTE_CACHE_PREFIX":   "TASKRUNNER_REMOTE_CACHE_PREFIX=taskrunner/ # default",
		// GH_TOKEN wins, as for gh: GITHUB_TOKEN is set but not used.
		"GH_TOKEN":            "GH_TOKEN='(set)' # environment",
		"GITHUB_TOKEN":        "GITHUB_TOKEN='' # environment",
		"GH_ENTERPRISE_TOKEN": "GH_ENTERPRISE_TOKEN='' # default",
	}
	for name, line := range want {
		if got[name] != line {
			t.Errorf("%s: got %q, want %q", name, got[name], line)
		}
	}
	if len(got) != len(Vars) {
		t.Errorf("%d settings listed, want %d", len(got), len(Vars))
	}
}
