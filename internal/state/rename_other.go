//go:build !linux

package state

import "syscall"

// errNotEmpty is rename(2)'s answer for a target folder that holds files.
var errNotEmpty = syscall.ENOTEMPTY

// renameNoReplace renames old to new unless new exists.
func renameNoReplace(old, new string) error { return renameUnlessExists(old, new) }
