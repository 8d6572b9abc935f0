package cli

import (
	"bytes"
	"errors"
	"reflect"
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
		{"version", []string{"--version"}, 0, "taskrunner " + Version + "\n", ""},
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
