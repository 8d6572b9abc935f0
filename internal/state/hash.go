package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
)

// SavedHash is the content of hash/<job>.hash: the inputs of the job's last
// successful run.
type SavedHash struct {
	Hash      string `json:"hash"`
	HashInput string `json:"hashInput"`
	// MainBranchCommit is the main branch's merge base when the hash was
	// saved, or nil when the main branch is not tracked.
	MainBranchCommit *string `json:"mainBranchCommit"`
}

// LoadHash returns the saved hash of job, or nil when there is none. A file
// that cannot be parsed counts as none: the job then simply runs.
func (d Dir) LoadHash(job string) (*SavedHash, error) {
	b, err := os.ReadFile(d.HashPath(job))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h SavedHash
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, nil
	}
	return &h, nil
}

// SaveHash writes the saved hash of job, atomically.
func (d Dir) SaveHash(job string, h SavedHash) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return err
	}
	return WriteAtomic(filepath.Dir(d.HashPath(job)), d.HashPath(job), bytes.TrimSuffix(buf.Bytes(), []byte("\n")), 0o644)
}
