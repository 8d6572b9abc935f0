package github

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/flock"
)

// helperEnv names the variable that turns the test binary into a helper
// process: "token" fetches a token as a taskrunner would, "lock" takes the
// token cache lock and holds it until killed.
const helperEnv = "TASKRUNNER_GITHUB_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "token":
		os.Exit(helperToken())
	case "lock":
		os.Exit(helperLock())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper")
		os.Exit(2)
	}
}

// helperToken reads its settings from the environment like taskrunner
// does, waits for a line on stdin so that its parent can start many at
// once, then prints "token=<token>" (tests only: these are fake tokens).
func helperToken() int {
	s, err := config.FromEnv()
	if err == nil {
		var app *App
		if app, err = NewApp(s.GitHub); err == nil {
			bufio.NewReader(os.Stdin).ReadString('\n')
			var tok string
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if tok, err = NewTokenSource(app, s.StateDir, os.Stdout).Token(ctx); err == nil {
				fmt.Printf("token=%s\n", tok)
				return 0
			}
		}
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// helperLock takes the token cache lock of TASKRUNNER_STATE_DIRECTORY, says
// "locked" and waits to be killed.
func helperLock() int {
	s, err := config.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ts := &TokenSource{dir: s.StateDir}
	if _, err := flock.Lock(context.Background(), ts.lockPath(), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	select {}
}

// helperCmd returns a helper process of kind ("token" or "lock") set up
// like a taskrunner for e.
func (e *env) helperCmd(kind string, actions bool) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		helperEnv+"="+kind,
		"TASKRUNNER_STATE_DIRECTORY="+e.dir,
		"GITHUB_API_URL="+e.cfg.APIURL,
		"GITHUB_APP_ID="+e.cfg.AppID,
		"GITHUB_INSTALLATION_ID="+e.cfg.InstallationID,
		"GITHUB_APP_PRIVATE_KEY="+strings.ReplaceAll(e.cfg.PrivateKey, "\n", "|"),
		"GITHUB_REPOSITORY="+e.cfg.Repository,
		"GITHUB_REPOSITORY_OWNER="+e.cfg.Owner,
		"GITHUB_ACTIONS="+strconv.FormatBool(actions),
	)
	return cmd
}

// TestTokenConcurrentProcesses starts 50 processes with an empty cache,
// releases them at once, and wants a single mint, announced by a single
// mask line.
func TestTokenConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 50 processes")
	}
	e := newEnv(t, 300*time.Second)
	e.srv.Delay(200 * time.Millisecond) // a slow mint, so that all the others queue behind it

	const n = 50
	type proc struct {
		cmd       *exec.Cmd
		out, errb bytes.Buffer
		release   func()
	}
	procs := make([]*proc, n)
	for i := range procs {
		p := &proc{cmd: e.helperCmd("token", true)}
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
		stdin, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.release = func() { stdin.Write([]byte("go\n")); stdin.Close() }
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	for _, p := range procs {
		p.release()
	}
	var tokens []string
	masks := 0
	for _, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("helper: %v: %s", err, p.errb.String())
		}
		for line := range strings.Lines(p.out.String()) {
			line = strings.TrimSuffix(line, "\n")
			if tok, ok := strings.CutPrefix(line, "token="); ok {
				tokens = append(tokens, tok)
			} else if strings.HasPrefix(line, "::add-mask::") {
				masks++
			}
		}
	}
	if e.srv.Mints() != 1 {
		t.Fatalf("%d processes minted %d tokens, want 1", n, e.srv.Mints())
	}
	if len(tokens) != n {
		t.Fatalf("%d processes printed %d tokens", n, len(tokens))
	}
	for _, tok := range tokens {
		if tok != e.srv.Tokens()[0] {
			t.Fatal("a process got a token other than the one minted")
		}
	}
	if masks != n {
		t.Errorf("%d mask lines, want %d: every process masks the token it uses", masks, n)
	}
}

// TestTokenLockHolderKilled kills a process holding the cache lock with
// SIGKILL and wants the next process to proceed: the kernel drops an
// flock with its holder.
func TestTokenLockHolderKilled(t *testing.T) {
	e := newEnv(t, 300*time.Second)
	cmd := e.helperCmd("lock", false)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("helper said %q, want locked", line)
	}

	// While it holds the lock, a token cannot be had.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = e.source().Token(ctx)
	if msg := e.failed(err); !strings.Contains(msg, "waiting for the lock") {
		t.Errorf("error = %q, want a wait for the lock", msg)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.source().Token(ctx); err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	if e.srv.Mints() != 1 {
		t.Errorf("mints = %d, want 1", e.srv.Mints())
	}
}
