package job

// Stopping a job: the stop signals cancel the job's root context, reach the
// task's process group, and after a grace period (or a second signal) the
// group is killed.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// StopSignals are the signals that stop a job: the first cancels whatever
// taskrunner is doing and is passed on to the task's process group, and
// taskrunner exits 128+N once the task has ended and its result is
// recorded. Catching SIGQUIT also keeps the Go runtime from printing its
// goroutine dump and exiting 2. The caller of Run subscribes to them (with
// signal.Notify) and passes the channel in Options.Signals.
var StopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// afterSignalTimeout bounds the work a job still does once a stop signal
// has cancelled its root context: posting the failure of its commit
// status. A CI system that cancels a job kills it for good some seconds
// after its first signal.
const afterSignalTimeout = 5 * time.Second

// stopper turns the stop signals a process receives into the job's root
// context, cancelled by the first one.
type stopper struct {
	ctx    context.Context
	cancel context.CancelFunc
	// sigs gets every signal, the first included, for the code that waits
	// for the task: the first is passed on to the task's process group, a
	// second kills it.
	sigs chan os.Signal

	mu    sync.Mutex
	first os.Signal
}

// newStopper watches in for stop signals until done is closed.
func newStopper(in <-chan os.Signal, done <-chan struct{}) *stopper {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stopper{ctx: ctx, cancel: cancel, sigs: make(chan os.Signal, 2)}
	if in == nil {
		return s
	}
	go func() {
		for {
			select {
			case sig := <-in:
				s.mu.Lock()
				if s.first == nil {
					s.first = sig
				}
				s.mu.Unlock()
				s.cancel()
				select {
				case s.sigs <- sig:
				default: // two are waiting already: the group gets SIGKILL
				}
			case <-done:
				return
			}
		}
	}()
	return s
}

// signal returns the first stop signal received, or nil.
func (s *stopper) signal() os.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// afterSignal returns a context for the work a job does once it was
// stopped, which the root context no longer allows.
func (s *stopper) afterSignal() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(s.ctx), afterSignalTimeout)
}

// stopped returns the first stop signal taskrunner received, or nil. It is
// set before the signal reaches wait or finishDrains, which record it as
// r.signalled.
func (r *run) stopped() os.Signal { return r.stop.signal() }

// endLeftovers ends the processes left in the task's process group pgid
// once its main process has exited after a stop signal: SIGTERM at once,
// SIGKILL at deadline or on another signal. It returns once the group is
// gone, or shortly after the SIGKILL.
func (r *run) endLeftovers(pgid int, deadline time.Time) {
	if !groupAlive(pgid) {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	kill := time.NewTimer(time.Until(deadline))
	defer kill.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for groupAlive(pgid) {
		select {
		case <-poll.C:
			continue
		case <-kill.C:
		case <-r.sigs:
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		waitGroupGone(pgid, time.Second)
		return
	}
}

// killGroup kills the process group pgid and waits, briefly, until no
// process of it runs any more.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitGroupGone(pgid, time.Second)
}

// waitGroupGone waits at most d for the process group pgid to be gone.
func waitGroupGone(pgid int, d time.Duration) {
	end := time.Now().Add(d)
	for groupAlive(pgid) && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
}

// groupAlive reports whether a process of group pgid still runs. A zombie
// does not run: a killed process whose parent is gone stays one until init
// reaps it, which some containers' init never does.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell: kill(2) found one
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, state, ok := procGroup(pid); ok && g == pgid && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// procGroup reads the process group and state of pid from /proc/PID/stat.
func procGroup(pid int) (pgid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	g, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, 0, false
	}
	return g, f[0][0], true
}
