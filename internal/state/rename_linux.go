package state

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errNotEmpty is rename(2)'s answer for a target folder that holds files.
var errNotEmpty = unix.ENOTEMPTY

// renameNoReplace renames old to new unless new exists, even as an empty
// folder, which a plain rename(2) would replace.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE.
		return renameUnlessExists(old, new)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}
