package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/taskrunner/taskrunner/internal/cache/s3test"
	"github.com/taskrunner/taskrunner/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(stopS3After{m}, map[string]func(){
		"taskrunner": func() { os.Exit(cli.Run()) },
	})
}

// stopS3After runs the tests, then stops the S3 server if a script started
// one.
type stopS3After struct{ m *testing.M }

func (s stopS3After) Run() int {
	code := s.m.Run()
	s3test.Stop()
	return code
}

// TestScripts runs the golden command-line tests in testdata/script. Each
// script gets its own state directory, git identity and HOME; timestamps
// are off so that output compares exactly.
func TestScripts(t *testing.T) {
	goEnv := goBuildEnv(t)
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("..", "..", "testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("TASKRUNNER_STATE_DIRECTORY", filepath.Join(env.WorkDir, ".taskrunner"))
			env.Setenv("TASKRUNNER_DISABLE_TIMESTAMPS", "1")
			env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			env.Setenv("GIT_AUTHOR_NAME", "Test")
			env.Setenv("GIT_AUTHOR_EMAIL", "test@example.com")
			env.Setenv("GIT_COMMITTER_NAME", "Test")
			env.Setenv("GIT_COMMITTER_EMAIL", "test@example.com")
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			return setupGitHub(env)
		},
		Condition: func(cond string) (bool, error) {
			// [root]: file permissions do not stop this process.
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			// [s3]: a real S3 server runs for the script; without one, in
			// CI, the script fails rather than skipping.
			if cond == "s3" {
				return s3Available()
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"buildids":   cmdBuildIDs,
			"envfile":    cmdEnvFile,
			"exits":      cmdExits,
			"github":     cmdGitHub,
			"jsonlines":  cmdJSONLines,
			"s3":         cmdS3,
			"tarzst":     cmdTarZst,
			"tracecheck": cmdTraceCheck,
			"waitfile":   cmdWaitFile,
			"within":     cmdWithin,
		},
	})
}

// cmdExits runs a command and checks its exit status:
//
//	exits N command [args...]
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %q is not an exit status", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
		if ws, ok := ee.Sys().(interface{ Signaled() bool }); ok && ws.Signaled() {
			ts.Fatalf("exits: %s was killed by a signal: %v", args[1], err)
		}
	}
	if got != want {
		ts.Fatalf("exits: %s exited %d, want %d", args[1], got, want)
	}
}

// cmdEnvFile sets a variable to the contents of a file, such as a key that
// ssh-keygen made:
//
//	envfile VAR file
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR file")
	}
	b, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	ts.Setenv(args[0], string(b))
}

// cmdWaitFile waits for files to exist, for at most 20 seconds, so that a
// script can wait for a background task to reach a point it marks:
//
//	waitfile file...
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: waitfile file...")
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, name := range args {
		for {
			if _, err := os.Stat(ts.MkAbs(name)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				ts.Fatalf("waitfile: %s did not appear within 20 seconds", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// goBuildEnv is what a script needs to build taskrunner with `go build -C
// $MODULE_ROOT`: the module's folder, and the caches of this test's go, so
// that a build links what is already compiled.
func goBuildEnv(t *testing.T) map[string]string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MODULE_ROOT": root}
	for _, name := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN"} {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		env[name] = strings.TrimSpace(string(out))
	}
	return env
}
