package job

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestStopperFirstSignalCancels(t *testing.T) {
	in := make(chan os.Signal, 2)
	done := make(chan struct{})
	defer close(done)
	s := newStopper(in, done)
	if s.ctx.Err() != nil || s.signal() != nil {
		t.Fatal("stopped before any signal")
	}
	in <- syscall.SIGTERM
	select {
	case <-s.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel the root context")
	}
	if got := s.signal(); got != syscall.SIGTERM {
		t.Errorf("signal() = %v, want SIGTERM", got)
	}
	in <- syscall.SIGINT
	for _, want := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		select {
		case got := <-s.sigs:
			if got != want {
				t.Errorf("forwarded %v, want %v", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v was not passed on", want)
		}
	}
	if got := s.signal(); got != syscall.SIGTERM {
		t.Errorf("after a second signal, signal() = %v, want the first, SIGTERM", got)
	}
}

func TestStopperWithoutSignals(t *testing.T) {
	s := newStopper(nil, nil)
	if s.ctx.Err() != nil || s.signal() != nil {
		t.Fatal("a job without signals is stopped")
	}
	ctx, cancel := s.afterSignal()
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		t.Error("the context after a signal has no deadline")
	}
}

func TestAfterSignalOutlivesRoot(t *testing.T) {
	s := newStopper(nil, nil)
	s.cancel()
	ctx, cancel := s.afterSignal()
	defer cancel()
	if ctx.Err() != nil {
		t.Fatalf("the context after a signal is done: %v", ctx.Err())
	}
}

// startGroup starts sh -c script as the leader of a process group of its
// own, and reaps it in the background.
func startGroup(t *testing.T, script string) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	return pgid
}

func TestGroupAlive(t *testing.T) {
	pgid := startGroup(t, "sleep 30")
	if !groupAlive(pgid) {
		t.Fatal("a running group is not alive")
	}
	killGroup(pgid)
	if groupAlive(pgid) {
		t.Fatal("a killed group is alive")
	}
}

func TestEndLeftoversKillsAfterDeadline(t *testing.T) {
	// A background process that ignores SIGTERM, as leftovers of a task
	// do: the group leader has exited.
	pgid := startGroup(t, `trap "" TERM; sleep 30 & echo ok`)
	time.Sleep(200 * time.Millisecond)
	if !groupAlive(pgid) {
		t.Fatal("the background process is not running")
	}
	r := &run{sigs: make(chan os.Signal, 1)}
	start := time.Now()
	r.endLeftovers(pgid, time.Now().Add(300*time.Millisecond))
	if groupAlive(pgid) {
		t.Fatal("the leftover still runs")
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("killed after %v, before the deadline", took)
	}
}

func TestEndLeftoversSecondSignal(t *testing.T) {
	pgid := startGroup(t, `trap "" TERM; sleep 30 & echo ok`)
	time.Sleep(200 * time.Millisecond)
	r := &run{sigs: make(chan os.Signal, 1)}
	r.sigs <- syscall.SIGINT
	start := time.Now()
	r.endLeftovers(pgid, time.Now().Add(time.Minute))
	if groupAlive(pgid) {
		t.Fatal("the leftover still runs")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a second signal took %v to kill the leftovers", took)
	}
}

func TestProcGroup(t *testing.T) {
	pgid := startGroup(t, "exec sleep 30")
	g, state, ok := procGroup(pgid)
	if !ok || g != pgid || state == 'Z' {
		t.Errorf("procGroup(%d) = %d, %q, %v", pgid, g, state, ok)
	}
	if _, _, ok := procGroup(-1); ok {
		t.Error("procGroup of no process succeeded")
	}
}
