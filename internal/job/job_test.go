package job

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskrunner/taskrunner/internal/config"
	"github.com/taskrunner/taskrunner/internal/state"
	"github.com/taskrunner/taskrunner/internal/watchdog"
)

// TestMain lets the test binary be the build's watchdog, which a toplevel
// job starts as its own binary.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == watchdog.Arg && watchdog.Inherited() {
		os.Exit(watchdog.Serve(os.Args[2]))
	}
	os.Exit(m.Run())
}

// jobTest is a folder to run toplevel jobs in, in-process, with a state
// directory of its own.
type jobTest struct {
	t     *testing.T
	dir   string
	state state.Dir
	env   map[string]string
}

func newJobTest(t *testing.T) *jobTest {
	root := t.TempDir()
	dir := filepath.Join(root, "work")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(root, "state")
	return &jobTest{t: t, dir: dir, state: state.Dir{Root: stateDir}, env: map[string]string{
		"TASKRUNNER_STATE_DIRECTORY":    stateDir,
		"TASKRUNNER_ROOT_DIRECTORY":     dir,
		"TASKRUNNER_DISABLE_TIMESTAMPS": "1",
		"TASKRUNNER_LOG_INFO":           "1",
		"TASKRUNNER_KILL_GRACE":         "5",
	}}
}

// ran is what one job left.
type ran struct {
	status         int
	stdout, stderr string
	build          string
}

// run runs the toplevel job name with argv, its stop signals from sigs,
// and its stdout and stderr into files.
func (jt *jobTest) run(name string, sigs <-chan os.Signal, argv ...string) ran {
	t := jt.t
	t.Helper()
	s, err := config.Load(func(k string) (string, bool) { v, ok := jt.env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	before, _ := jt.state.Builds()
	stdout, stderr := jt.file("stdout"), jt.file("stderr")
	status, err := Run(Options{
		Name: name, Argv: argv, Settings: s,
		Env: os.Environ(), Dir: jt.dir,
		Stdout: stdout, Stderr: stderr, Signals: sigs,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	after, _ := jt.state.Builds()
	if len(after) != len(before)+1 {
		t.Fatalf("builds %q after %q: want one more", after, before)
	}
	return ran{status: status, stdout: jt.read(stdout), stderr: jt.read(stderr), build: after[len(after)-1]}
}

func (jt *jobTest) file(name string) *os.File {
	f, err := os.CreateTemp(jt.t.TempDir(), name)
	if err != nil {
		jt.t.Fatal(err)
	}
	jt.t.Cleanup(func() { f.Close() })
	return f
}

func (jt *jobTest) read(f *os.File) string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		jt.t.Fatal(err)
	}
	return string(b)
}

// result is the exit status the build recorded for job.
func (jt *jobTest) result(build, job string) int {
	st, ok, err := jt.state.Result(build, job)
	if err != nil || !ok {
		jt.t.Fatalf("no result of %s in build %s: %v", job, build, err)
	}
	return st
}

func (jt *jobTest) log(build, job string) string {
	b, err := os.ReadFile(jt.state.LogPath(build, job))
	if err != nil {
		jt.t.Fatal(err)
	}
	return string(b)
}

// TestRunPrefixesAndRecords: the task's lines reach the toplevel's stdout
// and stderr behind the job's name, its log holds them, and its exit status
// passes through and is recorded.
func TestRunPrefixesAndRecords(t *testing.T) {
	jt := newJobTest(t)
	r := jt.run("greet", nil, "sh", "-c", "echo hi; echo oops >&2; pwd; exit 3")
	if r.status != 3 {
		t.Errorf("status %d, want 3", r.status)
	}
	if want := "[greet] stdout | hi\n[greet] stdout | " + jt.dir + "\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if want := "[greet] stderr | oops\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	log := jt.log(r.build, "greet")
	for _, line := range []string{"stdout | hi", "stderr | oops"} {
		if !strings.Contains(log, line) {
			t.Errorf("log lacks %q:\n%s", line, log)
		}
	}
	if got := jt.result(r.build, "greet"); got != 3 {
		t.Errorf("recorded %d, want 3", got)
	}
}

// TestRunTaskEnvironment: the task gets the job's environment with
// taskrunner's variables, and its descriptors as package fds numbers them.
func TestRunTaskEnvironment(t *testing.T) {
	jt := newJobTest(t)
	t.Setenv("JOB_TEST_VAR", "from the caller")
	r := jt.run("env", nil, "sh", "-c", `echo "$JOB_TEST_VAR" "$_taskrunner_jobs" $_taskrunner_toplevel_stdout $_taskrunner_request_pipe; echo direct >&3`)
	if r.status != 0 {
		t.Fatalf("status %d, stderr %q", r.status, r.stderr)
	}
	// The line written to descriptor 3 itself bypasses the job's output,
	// and may come first.
	lines := strings.SplitAfter(r.stdout, "\n")
	slices.Sort(lines)
	if want := []string{"", "[env] stdout | from the caller env 3 5\n", "direct\n"}; !slices.Equal(lines, want) {
		t.Errorf("stdout %q, want the lines %q", r.stdout, want[1:])
	}
}

// TestRunFailures: a phase's failure is the job's error line and its exit
// status, recorded like a task's.
func TestRunFailures(t *testing.T) {
	for _, tt := range []struct {
		name   string
		argv   []string
		status int
		stderr string
	}{
		{"not-found", []string{"no-such-command-here"}, 127, "[not-found] error | command not found: no-such-command-here\n"},
		{"not-executable", []string{"./data.txt"}, 126, "[not-executable] error | cannot run ./data.txt: permission denied\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jt := newJobTest(t)
			if err := os.WriteFile(filepath.Join(jt.dir, "data.txt"), []byte("data\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(jt.dir) // the command is looked up from the process's directory
			r := jt.run(tt.name, nil, tt.argv...)
			if r.status != tt.status || r.stderr != tt.stderr || r.stdout != "" {
				t.Errorf("status %d, stdout %q, stderr %q; want %d, \"\", %q", r.status, r.stdout, r.stderr, tt.status, tt.stderr)
			}
			if got := jt.result(r.build, tt.name); got != tt.status {
				t.Errorf("recorded %d, want %d", got, tt.status)
			}
		})
	}
}

// TestRunSkipsUnchangedInputs: a task whose inputs are those of its last
// success ends at snapshot, successfully, without running the rest.
func TestRunSkipsUnchangedInputs(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash") // the snapshot function is bash's
	}
	jt := newJobTest(t)
	git := exec.Command("git", "init", "-q")
	git.Dir = jt.dir
	if out, err := git.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(jt.dir, "input.txt"), []byte("foo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := []string{"bash", "-c", "snapshot input.txt; echo ran"}

	first := jt.run("build", nil, task...)
	if first.status != 0 || first.stdout != "[build] stdout | ran\n" {
		t.Fatalf("first run: status %d, stdout %q, stderr %q", first.status, first.stdout, first.stderr)
	}
	if want := "[build] info | Inputs changed, running task\n[build] info | success\n"; first.stderr != want {
		t.Errorf("first run: stderr %q, want %q", first.stderr, want)
	}
	second := jt.run("build", nil, task...)
	if second.status != 0 || second.stdout != "" {
		t.Errorf("second run: status %d, stdout %q; want 0 and nothing", second.status, second.stdout)
	}
	if want := "[build] info | skipped, inputs unchanged\n"; second.stderr != want {
		t.Errorf("second run: stderr %q, want %q", second.stderr, want)
	}
}

// TestRunStopSignal: a stop signal from the channel reaches the task's
// process group at once, long before the kill grace, and the job ends with
// 128+N, recorded as its result.
func TestRunStopSignal(t *testing.T) {
	jt := newJobTest(t)
	jt.env["TASKRUNNER_KILL_GRACE"] = "60"
	sigs := make(chan os.Signal, 2)
	marker := filepath.Join(jt.dir, "started")
	done := make(chan ran, 1)
	go func() {
		done <- jt.run("sleeper", sigs, "sh", "-c", "trap 'echo got TERM; exit 0' TERM; touch started; sleep 60 & wait; echo woke")
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the task did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sigs <- syscall.SIGTERM
	var r ran
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the job did not end after SIGTERM")
	}
	want := 128 + int(syscall.SIGTERM)
	if r.status != want {
		t.Errorf("status %d, want %d (stderr %q)", r.status, want, r.stderr)
	}
	if r.stdout != "[sleeper] stdout | got TERM\n" {
		t.Errorf("stdout %q, want the task's trap of SIGTERM only", r.stdout)
	}
	if got := jt.result(r.build, "sleeper"); got != want {
		t.Errorf("recorded %d, want %d", got, want)
	}
}
