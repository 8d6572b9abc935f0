//go:build unix && !linux

package s3test

import "syscall"

// sysProcAttr puts the server in its own process group, so that stop
// reaches all of it. Only Linux can also tie its life to the test process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func terminate(pid int) { _ = syscall.Kill(-pid, syscall.SIGTERM) }
func kill(pid int)      { _ = syscall.Kill(-pid, syscall.SIGKILL) }
