// Command benchutil is the stopwatch of scripts/bench: it runs one command
// and prints what bash cannot measure by itself, its wall time, its CPU time
// and its peak resident set size, read from the rusage that wait4(2) returns.
//
//	benchutil [-o FILE] [-e FILE] [-C DIR] [--] CMD [ARG...]
//
// CMD runs in DIR with stdin from /dev/null, stdout to FILE (truncated;
// default /dev/null) and stderr to the -e FILE (default: benchutil's own).
// benchutil then prints one line to its stdout:
//
//	<wall µs> <cpu µs> <peak RSS KiB> <exit status>
//
// The wall time runs from just before the fork to the return of wait4. The
// CPU time (user + system) and the peak RSS are those wait4 reports: CMD's
// own, and those of the descendants CMD waited for, so the peak RSS is the
// largest of CMD and its children, not their sum. The exit status is
// 128+N when a signal N killed CMD. benchutil itself exits 0 whenever CMD
// could be started, whatever CMD's status: the caller reads it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchutil:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("benchutil", flag.ContinueOnError)
	stdout := fs.String("o", os.DevNull, "`file` for CMD's stdout (truncated)")
	stderr := fs.String("e", "", "`file` for CMD's stderr (truncated); default benchutil's stderr")
	dir := fs.String("C", "", "`dir`ectory to run CMD in")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("usage: benchutil [-o FILE] [-e FILE] [-C DIR] [--] CMD [ARG...]")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}

	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer stdin.Close()
	out, err := os.Create(*stdout)
	if err != nil {
		return err
	}
	defer out.Close()
	errf := os.Stderr
	if *stderr != "" {
		if errf, err = os.Create(*stderr); err != nil {
			return err
		}
		defer errf.Close()
	}

	start := time.Now()
	p, err := os.StartProcess(path, argv, &os.ProcAttr{
		Dir:   *dir,
		Files: []*os.File{stdin, out, errf},
	})
	if err != nil {
		return err
	}
	defer p.Release()
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err = syscall.Wait4(p.Pid, &ws, 0, &ru)
		if err != syscall.EINTR {
			break
		}
	}
	wall := time.Since(start)
	if err != nil {
		return fmt.Errorf("wait4: %w", err)
	}

	status := ws.ExitStatus()
	if ws.Signaled() {
		status = 128 + int(ws.Signal())
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// On Linux ru_maxrss is in KiB.
	fmt.Printf("%d %d %d %d\n", wall.Microseconds(), cpu.Microseconds(), ru.Maxrss, status)
	return nil
}
