package gitx

import "syscall"

// statTimes returns a file's mtime and ctime as the index stores them:
// 32-bit seconds and nanoseconds.
func statTimes(st *syscall.Stat_t) (mtime, ctime [2]uint32) {
	return [2]uint32{uint32(st.Mtim.Sec), uint32(st.Mtim.Nsec)},
		[2]uint32{uint32(st.Ctim.Sec), uint32(st.Ctim.Nsec)}
}
