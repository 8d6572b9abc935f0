package watchdog

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testServer runs a watchdog's loop in this process, on a socket whose path
// is longer than a socket address can hold, with kill recording what it
// would kill. It returns the socket, the toplevel's connection, the kills
// and the end of the loop.
func testServer(t *testing.T) (socket string, top *Conn, kills chan guard, ended chan error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	socket = filepath.Join(dir, "watchdog.sock")
	lfd, err := listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	kills = make(chan guard, 10)
	ended = make(chan error, 1)
	w := &server{socket: socket, kill: func(g guard) { kills <- g }, uid: os.Geteuid()}
	go func() {
		ended <- w.serve(lfd, pair[1])
		syscall.Close(pair[1])
	}()
	return socket, &Conn{fd: pair[0]}, kills, ended
}

// die closes c as a killed process would: without "done".
func die(c *Conn) { syscall.Close(c.fd) }

func wantKill(t *testing.T, kills chan guard, pgid int) {
	t.Helper()
	select {
	case g := <-kills:
		if g.pgid != pgid {
			t.Errorf("killed group %d, want %d", g.pgid, pgid)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("group %d not killed within 10 s", pgid)
	}
}

func wantNoKill(t *testing.T, kills chan guard) {
	t.Helper()
	select {
	case g := <-kills:
		t.Errorf("killed group %d, want none", g.pgid)
	default:
	}
}

func wantEnd(t *testing.T, ended chan error, socket string) {
	t.Helper()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog did not end within 10 s")
	}
	if _, err := os.Lstat(socket); !os.IsNotExist(err) {
		t.Errorf("the socket is still there once the watchdog ended: %v", err)
	}
}

// TestDiedKilled: a taskrunner that dies has its task's group killed; one
// that says it is done has not; the watchdog ends when the toplevel and
// every other taskrunner have gone.
func TestDiedKilled(t *testing.T) {
	socket, top, kills, ended := testServer(t)
	if err := top.Guard(999001); err != nil {
		t.Fatal(err)
	}
	a, err := Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Guard(999002); err != nil {
		t.Fatal(err)
	}
	if err := b.Guard(999003); err != nil {
		t.Fatal(err)
	}
	die(a)
	wantKill(t, kills, 999002)

	// The toplevel dies first: its group is killed, and the watchdog
	// stays for b.
	die(top)
	wantKill(t, kills, 999001)
	select {
	case <-ended:
		t.Fatal("the watchdog ended while a taskrunner was still connected")
	case <-time.After(100 * time.Millisecond):
	}
	b.Done()
	wantEnd(t, ended, socket)
	wantNoKill(t, kills)
	if _, err := Dial(socket); err == nil {
		t.Error("Dial succeeded once the watchdog had ended")
	}
}

// TestDoneNotKilled: taskrunners that end of their own accord, guarded or
// not, have nothing killed.
func TestDoneNotKilled(t *testing.T) {
	socket, top, kills, ended := testServer(t)
	a, err := Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Guard(999002); err != nil {
		t.Fatal(err)
	}
	a.Done()
	// One that dies before its task started has nothing to kill.
	b, err := Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	die(b)
	if err := top.Guard(999001); err != nil {
		t.Fatal(err)
	}
	top.Done()
	wantEnd(t, ended, socket)
	wantNoKill(t, kills)
}

// TestGuardStart: the guard names the start time of the group's leader, so
// that a reused pid is not taken for it.
func TestGuardStart(t *testing.T) {
	socket, top, kills, ended := testServer(t)
	_ = socket
	pid := os.Getpid()
	if err := top.Guard(pid); err != nil {
		t.Fatal(err)
	}
	die(top)
	select {
	case g := <-kills:
		b, err := os.ReadFile("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		want, ok := startTime(string(b))
		if !ok || g.start != want || g.pgid != pid {
			t.Errorf("guard = %+v, want pgid %d and start %d", g, pid, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no kill within 10 s")
	}
	wantEnd(t, ended, socket)
}
