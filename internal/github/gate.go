package github

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// LimitFile, in the state directory, holds the end of the last rate limit
// GitHub declared, so that the other processes of the machine wait for it
// instead of each hitting the limit again: hammering a limited API may get
// an App banned.
const LimitFile = ".github-rate-limit.json"

// gate shares the end of a rate limit between the calls of this process and
// those of the others on the machine. A nil gate shares nothing. Its file
// is advice: one that is missing or unreadable is no limit.
type gate struct {
	path string

	mu   sync.Mutex
	kind string
	end  time.Time
}

type gateEntry struct {
	Kind  string    `json:"kind"`
	Until time.Time `json:"until"`
}

func newGate(stateDir string) *gate {
	return &gate{path: filepath.Join(stateDir, LimitFile)}
}

// until returns the kind and end of the latest limit known.
func (g *gate) until() (string, time.Time) {
	if g == nil {
		return "", time.Time{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, err := os.ReadFile(g.path); err == nil {
		var e gateEntry
		if json.Unmarshal(b, &e) == nil && e.Until.After(g.end) {
			g.kind, g.end = e.Kind, e.Until
		}
	}
	return g.kind, g.end
}

// set records a limit that lasts until end.
func (g *gate) set(kind string, end time.Time) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !end.After(g.end) {
		return
	}
	g.kind, g.end = kind, end
	b, _ := json.Marshal(gateEntry{Kind: kind, Until: end.UTC()})
	f, err := os.CreateTemp(filepath.Dir(g.path), LimitFile+".*.tmp")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), g.path) != nil {
		os.Remove(f.Name())
	}
}
