package cli

import (
	"bytes"
	"errors"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want *invocation // nil: a usage error
		err  string      // part of the error's text
	}{
		{"command only", []string{"make", "all"}, &invocation{name: "make", argv: []string{"make", "all"}}, ""},
		{"name defaults to the base name", []string{"/usr/bin/make"}, &invocation{name: "make", argv: []string{"/usr/bin/make"}}, ""},
		{"-n", []string{"-n", "build", "make"}, &invocation{name: "build", argv: []string{"make"}}, ""},
		{"--name", []string{"--name", "build", "make"}, &invocation{name: "build", argv: []string{"make"}}, ""},
		{"--name=", []string{"--name=build", "make"}, &invocation{name: "build", argv: []string{"make"}}, ""},
		{"-nNAME", []string{"-nbuild", "make"}, &invocation{name: "build", argv: []string{"make"}}, ""},
		{"-f", []string{"-f", "make"}, &invocation{name: "make", force: true, argv: []string{"make"}}, ""},
		{"--force", []string{"--force", "-n", "b", "make"}, &invocation{name: "b", force: true, argv: []string{"make"}}, ""},
		{"last -n wins", []string{"-n", "a", "-n", "b", "make"}, &invocation{name: "b", argv: []string{"make"}}, ""},
		{"options after CMD are CMD's", []string{"bash", "-e", "-c", "x", "-n", "y", "--help"},
			&invocation{name: "bash", argv: []string{"bash", "-e", "-c", "x", "-n", "y", "--help"}}, ""},
		{"-- ends the options", []string{"-n", "x", "--", "-f", "--help"}, &invocation{name: "x", argv: []string{"-f", "--help"}}, ""},
		{"- is a command", []string{"-"}, &invocation{name: "-", argv: []string{"-"}}, ""},
		{"-h", []string{"-h"}, &invocation{help: true}, ""},
		{"--help before a bad option", []string{"--help", "--bogus"}, &invocation{help: true}, ""},
		{"--help after -n", []string{"-n", "x", "--help", "make"}, &invocation{help: true, name: "x"}, ""},
		{"--version", []string{"--version"}, &invocation{version: true}, ""},

		{"nothing", nil, nil, "no command given"},
		{"no command after options", []string{"-n", "x", "-f"}, nil, "no command given"},
		{"nothing after --", []string{"--"}, nil, "no command given"},
		{"-n without a value", []string{"-n"}, nil, "-n needs a task name"},
		{"--name without a value", []string{"--name"}, nil, "--name needs a task name"},
		{"unknown long option", []string{"--bogus", "make"}, nil, "unknown option --bogus"},
		{"unknown short option", []string{"-x", "make"}, nil, "unknown option -x"},
		{"options are not bundled", []string{"-fv", "make"}, nil, "unknown option -fv"},
		{"no mode words", []string{"--", "--version"}, &invocation{name: "--version", argv: []string{"--version"}}, ""},
		{"misspelt long option", []string{"--nmae", "x", "make"}, nil, "unknown option --nmae, did you mean --name? (see taskrunner --help)"},
		{"long option with one dash", []string{"-force", "make"}, nil, "unknown option -force, did you mean --force?"},
		{"misspelt option with a value", []string{"--naem=x", "make"}, nil, "unknown option --naem=x, did you mean --name?"},
		{"-n=NAME", []string{"-n=foo", "make"}, nil, "write -n foo or --name=foo, not -n=foo (see taskrunner --help)"},
		{"-n=", []string{"-n=", "make"}, nil, "write -n NAME or --name=NAME, not -n="},
		{"empty -n", []string{"-n", "", "make"}, nil, "the task name is empty"},
		{"empty --name=", []string{"--name=", "make"}, nil, "the task name is empty"},
		{"bad -n", []string{"-n", "a/b", "make"}, nil, `the task name "a/b" holds a slash`},
		{"bad base name of CMD", []string{"./a\tb"}, nil, `the task name "a\tb" holds the control character U+0009`},
		{"CMD that has no base name", []string{""}, nil, `the task name "." cannot be a file name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.args)
			if tt.want == nil {
				var ue *UsageError
				if !errors.As(err, &ue) {
					t.Fatalf("parse(%q) = %+v, %v; want a usage error", tt.args, got, err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q does not say %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parse(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestMainOwnModes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		status     int
		wantStdout string // prefix
		wantStderr string // whole
	}{
		{"help", []string{"--help"}, 0, "Usage: taskrunner ", ""},
		{"version", []string{"--version"}, 0, versionLine(), ""},
		{"-V", []string{"-V"}, 0, versionLine(), ""},
		{"usage error", []string{"--bogus"}, 2, "", "taskrunner: unknown option --bogus (see taskrunner --help)\n"},
		{"no command", []string{}, 2, "", "taskrunner: no command given: usage: taskrunner [-n NAME] [-f] CMD [ARGS...] (see taskrunner --help)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if st := Main(tt.args, &stdout, &stderr); st != tt.status {
				t.Errorf("status %d, want %d", st, tt.status)
			}
			if !strings.HasPrefix(stdout.String(), tt.wantStdout) || (tt.wantStdout == "" && stdout.Len() > 0) {
				t.Errorf("stdout %q, want it to start with %q", stdout.String(), tt.wantStdout)
			}
			if stderr.String() != tt.wantStderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	valid := []string{
		"build", "a.b", "my task", "-x", "..x", "x..", "...", "ünï", "job:1", "a\\b", "日本語",
		"→\u200bzero-width", "\U0001F600", "a\u00a0b", // U+00A0 follows the C1 range
		strings.Repeat("x", 200), strings.Repeat("é", 100),
	}
	for _, name := range valid {
		if err := checkName(name); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", name, err)
		}
	}
	invalid := []struct{ name, err string }{
		{"", "the task name is empty: give a name after -n"},
		{strings.Repeat("x", 201), "the task name is 201 bytes long: give one of at most 200 bytes with -n"},
		{strings.Repeat("é", 101), "the task name is 202 bytes long"},
		{"a\xffb", `the task name "a\xffb" is not valid UTF-8: give another with -n`},
		{"\xc3", `"\xc3" is not valid UTF-8`},
		{"\x1b[31m", `the task name "\x1b[31m" holds the control character U+001B: give one without control characters with -n`},
		{"a\rb", "U+000D"},
		{"a\tb", "U+0009"},
		{"a\nb", "U+000A"},
		{"a\x00b", "U+0000"},
		{"a\x7fb", "U+007F"},
		{"a\u0080b", "U+0080"},
		{"a\u0085b", "U+0085"},
		{"a\u009fb", "U+009F"},
		{".", `the task name "." cannot be a file name: give another with -n`},
		{"..", `the task name ".." cannot be a file name`},
		{"a/b", `the task name "a/b" holds a slash: give one without "/" with -n`},
		{"/", "holds a slash"},
	}
	for _, tt := range invalid {
		err := checkName(tt.name)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("checkName(%q) = %v, want a usage error", tt.name, err)
			continue
		}
		if !strings.Contains(ue.msg, tt.err) {
			t.Errorf("checkName(%q) = %q, want it to say %q", tt.name, ue.msg, tt.err)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ opt, want string }{
		{"--nmae", "--name"},
		{"--nam", "--name"},
		{"--names", "--name"},
		{"--forec", "--force"},
		{"--verison", "--version"},
		{"--evn", "--env"},
		{"--sumary", "--summary"},
		{"--github-tokens", "--github-token"},
		{"-name", "--name"},
		{"--bogus", ""},
		{"-q", ""},
		{"-x", ""},
		{"--", ""},
		{"--quiet", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.opt); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.opt, got, tt.want)
		}
	}
}

func TestVersionFrom(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"go install @version", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"go build at a commit", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260101000000-0123456789ab+dirty"}},
			"v0.0.0-20260101000000-0123456789ab+dirty"},
		{"revision only, clean", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef0123", "false")},
			"devel-0123456789ab"},
		{"revision only, dirty", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef0123", "true")},
			"devel-0123456789ab+dirty"},
		{"nothing known", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"no build info", nil, "devel"},
	}
	for _, tt := range tests {
		if got := versionFrom(tt.info); got != tt.want {
			t.Errorf("%s: versionFrom = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestVersionOverride(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "v9.8.7"
	if got := versionLine(); !strings.HasPrefix(got, "taskrunner v9.8.7 (go") || !strings.HasSuffix(got, ")\n") {
		t.Errorf("versionLine() = %q", got)
	}
}
