//go:build !linux

package gitx

import "syscall"

// statTimes returns times no index entry holds, so that every file is read
// again: the stat layout is only checked on Linux.
func statTimes(*syscall.Stat_t) (mtime, ctime [2]uint32) {
	return [2]uint32{^uint32(0), ^uint32(0)}, [2]uint32{^uint32(0), ^uint32(0)}
}
