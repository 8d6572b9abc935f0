package state

import (
	"errors"
	"os"
)

// renameUnlessExists renames old to new unless new exists. Between its
// check and the rename another process may make new as an empty folder,
// which the rename then replaces: only where renameNoReplace cannot do
// better.
func renameUnlessExists(old, new string) error {
	if _, err := os.Lstat(new); err == nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: os.ErrExist}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Rename(old, new)
}
