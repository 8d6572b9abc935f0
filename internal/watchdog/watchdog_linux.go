package watchdog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The watchdog's inherited descriptors: its listening socket and its end of
// the toplevel's connection.
const (
	listenFD   = 3
	toplevelFD = 4
)

// Conn is a taskrunner's connection to its build's watchdog. Its
// descriptor is close-on-exec: no process of the task holds it, so that it
// closes exactly when taskrunner exits.
type Conn struct {
	fd int
	// started is closed once the watchdog process has been started, or
	// has failed to start; nil for a connection made by Dial.
	started chan struct{}
}

// Start starts the build's watchdog, listening on socket, a path in the
// build's folder that does not exist yet, and returns the toplevel's
// connection to it. It waits neither for the watchdog to run nor for it
// to be started: the socket listens before Start returns, and connections
// wait in its queue until the watchdog takes them.
func Start(socket string) (*Conn, error) {
	lfd, err := listen(socket)
	if err != nil {
		return nil, err
	}
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		syscall.Close(lfd)
		os.Remove(socket)
		return nil, fmt.Errorf("cannot start the watchdog: %w", err)
	}
	c := &Conn{fd: pair[0], started: make(chan struct{})}
	// The fork and exec take a millisecond or so, which the job's other
	// work need not wait for.
	go func() {
		defer close(c.started)
		ln := os.NewFile(uintptr(lfd), "watchdog listener")
		theirs := os.NewFile(uintptr(pair[1]), "watchdog connection")
		defer ln.Close()
		defer theirs.Close()
		cmd := &exec.Cmd{
			// The running binary itself, even if its file has been
			// replaced since; its name as it was called, which is how a
			// test binary knows to be taskrunner.
			Path:       "/proc/self/exe",
			Args:       []string{os.Args[0], Arg, socket},
			Dir:        "/",
			ExtraFiles: []*os.File{ln, theirs},
			// A session of its own: no signal to the build's process
			// groups or terminal reaches it.
			SysProcAttr: &syscall.SysProcAttr{Setsid: true},
		}
		if err := cmd.Start(); err != nil {
			// Nobody will take the connections: Guard and Done fail.
			os.Remove(socket)
			return
		}
		_ = cmd.Process.Release()
	}()
	return c, nil
}

// listen makes the listening socket at path, close-on-exec.
func listen(path string) (int, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot make the watchdog's socket: %w", err)
	}
	err = inDir(path, func(short string) error {
		return syscall.Bind(fd, &syscall.SockaddrUnix{Name: short})
	})
	if err == nil {
		err = syscall.Listen(fd, 4096)
	}
	if err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	return fd, nil
}

// Dial connects to the watchdog of the build whose socket is socket.
func Dial(socket string) (*Conn, error) {
	// Non-blocking: a full queue fails rather than waits.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the watchdog: %w", err)
	}
	err = inDir(socket, func(short string) error {
		return syscall.Connect(fd, &syscall.SockaddrUnix{Name: short})
	})
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("cannot connect to the watchdog at %s: %w", socket, err)
	}
	return &Conn{fd: fd}, nil
}

// inDir calls f with a name of path short enough for a socket address
// (108 bytes at most, which a state folder's path may exceed): the path
// through a descriptor of its folder, in /proc/self/fd.
func inDir(path string, f func(short string) error) error {
	dir, err := syscall.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	defer syscall.Close(dir)
	return f("/proc/self/fd/" + strconv.Itoa(dir) + "/" + filepath.Base(path))
}

// Guard asks the watchdog to kill process group pgid with SIGKILL if this
// process dies before it calls Done. pgid is a child of this process, not
// yet waited for: its start time tells the watchdog whether a process
// with that pid is still the same one.
func (c *Conn) Guard(pgid int) error {
	start, _ := procStart(pgid)
	return c.send(fmt.Sprintf("%s %d %d\n", guardVerb, pgid, start))
}

// Done tells the watchdog that this process exits of its own accord, and
// closes the connection.
func (c *Conn) Done() {
	_ = c.send(doneLine + "\n")
	syscall.Close(c.fd)
	if c.started != nil {
		// Taskrunners the task left running in the background may
		// still need the watchdog.
		<-c.started
	}
}

func (c *Conn) send(line string) error {
	// MSG_NOSIGNAL: a watchdog that has gone is an error, not SIGPIPE.
	_, err := syscall.SendmsgN(c.fd, []byte(line), nil, nil, syscall.MSG_NOSIGNAL)
	if err != nil {
		return fmt.Errorf("cannot reach the watchdog: %w", err)
	}
	return nil
}

// Inherited reports whether this process was started as a watchdog: it
// holds a listening socket as descriptor 3 and a socket as descriptor 4.
func Inherited() bool {
	n, err := syscall.GetsockoptInt(listenFD, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	if err != nil || n != 1 {
		return false
	}
	_, err = syscall.GetsockoptInt(toplevelFD, syscall.SOL_SOCKET, syscall.SO_TYPE)
	return err == nil
}

// Serve is the watchdog process: it serves the connections of the build's
// taskrunners until the toplevel's and all others have closed, then
// removes socket and returns the exit status.
func Serve(socket string) int {
	closeInherited()
	w := &server{socket: socket, kill: killGroup, uid: os.Geteuid(), self: os.Getpid()}
	if err := w.serve(listenFD, toplevelFD); err != nil {
		return 1
	}
	return 0
}

// closeInherited closes the descriptors above the watchdog's own that the
// toplevel passed on without meaning to (those it inherited itself), so
// that the watchdog keeps no pipe of the build's open.
func closeInherited() {
	if unix.CloseRange(toplevelFD+1, ^uint(0), 0) == nil {
		return
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > toplevelFD {
			syscall.Close(fd)
		}
	}
}

// procStart returns the start time of process pid, from /proc/PID/stat;
// false if it cannot be read.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return startTime(string(b))
}

// killGroup kills process group g.pgid with SIGKILL, unless its leader's
// pid now names another process: then the group has ended, and the pid
// has been reused.
func killGroup(g guard) {
	if g.start != 0 {
		if start, ok := procStart(g.pgid); ok && start != g.start {
			return
		}
	}
	_ = syscall.Kill(-g.pgid, syscall.SIGKILL)
}

// server is the watchdog's state.
type server struct {
	socket string
	// kill ends a guarded process group.
	kill func(guard)
	// uid is the only user whose processes may connect.
	uid int
	// self is the watchdog's own process group, which it never kills.
	self int
}

// conn is one taskrunner's connection.
type conn struct {
	fd    int
	buf   []byte
	guard guard
	done  bool
}

// maxLine bounds a line of the protocol: a connection that sends a longer
// one is no taskrunner's, and is closed.
const maxLine = 256

// serve runs the watchdog's loop over the listening socket lfd and the
// toplevel's connection top: one thread, poll(2), no goroutine.
func (w *server) serve(lfd, top int) error {
	for _, fd := range []int{lfd, top} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			return err
		}
	}
	// The toplevel's connection is the first: the watchdog ends when it
	// and all that came later have closed.
	conns := []*conn{{fd: top}}
	listening := true
	for {
		if len(conns) == 0 {
			// The toplevel is gone and nobody else is connected: stop
			// taking connections, then serve those that came meanwhile.
			if listening {
				os.Remove(w.socket)
				listening = false
			}
			conns = w.accept(lfd, conns)
			if len(conns) == 0 {
				syscall.Close(lfd)
				return nil
			}
		}
		fds := make([]unix.PollFd, 0, len(conns)+1)
		if listening {
			fds = append(fds, unix.PollFd{Fd: int32(lfd), Events: unix.POLLIN})
		}
		for _, c := range conns {
			fds = append(fds, unix.PollFd{Fd: int32(c.fd), Events: unix.POLLIN})
		}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return err
		}
		if listening {
			if fds[0].Revents != 0 {
				conns = w.accept(lfd, conns)
			}
			fds = fds[1:]
		}
		kept := conns[:0]
		for i, c := range conns[:len(fds)] {
			if fds[i].Revents == 0 || w.read(c) {
				kept = append(kept, c)
				continue
			}
			syscall.Close(c.fd)
			if !c.done && c.guard.pgid != 0 {
				w.kill(c.guard)
			}
		}
		// Connections accepted in this round were not polled yet.
		kept = append(kept, conns[len(fds):]...)
		conns = kept
	}
}

// accept takes the connections waiting on lfd, those of other users'
// processes excepted.
func (w *server) accept(lfd int, conns []*conn) []*conn {
	for {
		fd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ECONNABORTED) {
			continue
		}
		if err != nil {
			return conns
		}
		cred, err := syscall.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		if err != nil || int(cred.Uid) != w.uid {
			syscall.Close(fd)
			continue
		}
		conns = append(conns, &conn{fd: fd})
	}
}

// read reads what c has sent and reports whether it is still open.
func (w *server) read(c *conn) bool {
	var b [512]byte
	for {
		n, err := syscall.Read(c.fd, b[:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			return true
		}
		if err != nil || n == 0 {
			return false
		}
		c.buf = append(c.buf, b[:n]...)
		for {
			i := strings.IndexByte(string(c.buf), '\n')
			if i < 0 {
				break
			}
			line := string(c.buf[:i])
			c.buf = c.buf[i+1:]
			if line == doneLine {
				c.done = true
			} else if g, ok := parseGuard(line); ok && g.pgid != w.self {
				c.guard = g
			}
		}
		if len(c.buf) > maxLine {
			return false
		}
	}
}
