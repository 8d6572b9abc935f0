package state

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// newBuilds starts n builds a second apart and returns their ids, oldest
// first.
func newBuilds(t *testing.T, d Dir, n int) []string {
	t.Helper()
	start := time.Date(2026, 11, 29, 16, 40, 0, 0, time.UTC)
	var ids []string
	for i := range n {
		id, err := d.NewBuild(start.Add(time.Duration(i) * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func buildsLeft(t *testing.T, d Dir) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(d.Root, "builds"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

func TestPrune(t *testing.T) {
	tests := []struct {
		name    string
		builds  int
		keep    int
		current int // index of the current build, -1 for none
		running []int
		want    []int // indexes of the builds left
	}{
		{name: "keeps the newest", builds: 5, keep: 3, current: 4, want: []int{2, 3, 4}},
		{name: "fewer than keep", builds: 2, keep: 3, current: 1, want: []int{0, 1}},
		{name: "exactly keep", builds: 3, keep: 3, current: 2, want: []int{0, 1, 2}},
		{name: "zero keeps all", builds: 4, keep: 0, current: 3, want: []int{0, 1, 2, 3}},
		{name: "negative keeps all", builds: 4, keep: -1, current: 3, want: []int{0, 1, 2, 3}},
		// A clock that went back: the current build is not among the newest.
		{name: "never the current build", builds: 4, keep: 1, current: 0, want: []int{0, 3}},
		{name: "never a running build", builds: 5, keep: 2, current: 4, running: []int{0, 2}, want: []int{0, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Dir{Root: t.TempDir()}
			ids := newBuilds(t, d, tt.builds)
			for _, i := range tt.running {
				f, err := d.Running(ids[i])
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
			current := ""
			if tt.current >= 0 {
				current = ids[tt.current]
			}
			removed, err := d.Prune(tt.keep, current)
			if err != nil {
				t.Fatal(err)
			}
			var want, wantRemoved []string
			for i, id := range ids {
				if slices.Contains(tt.want, i) {
					want = append(want, id)
				} else {
					wantRemoved = append(wantRemoved, id)
				}
			}
			if got := buildsLeft(t, d); !slices.Equal(got, want) {
				t.Errorf("builds left: %v, want %v", got, want)
			}
			if !slices.Equal(removed, wantRemoved) {
				t.Errorf("Prune returned %v, want %v", removed, wantRemoved)
			}
		})
	}
}

// A build's running mark ends with the file that holds it: the build can
// go then.
func TestPruneAfterRunningEnds(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	ids := newBuilds(t, d, 3)
	f, err := d.Running(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if removed, _ := d.Prune(1, ids[2]); !slices.Equal(removed, ids[1:2]) {
		t.Fatalf("Prune while %s runs removed %v, want %v", ids[0], removed, ids[1:2])
	}
	f.Close()
	if removed, _ := d.Prune(1, ids[2]); !slices.Equal(removed, ids[:1]) {
		t.Errorf("Prune once %s ended removed %v, want %v", ids[0], removed, ids[:1])
	}
}

func TestPruneNoBuildsFolder(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	if removed, err := d.Prune(3, ""); err != nil || len(removed) != 0 {
		t.Errorf("Prune with no builds folder = %v, %v; want nothing, no error", removed, err)
	}
}
