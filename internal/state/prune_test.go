package state

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/taskrunner/taskrunner/internal/flock"
)

// newBuilds starts n builds a second apart and returns their ids, oldest
// first.
func newBuilds(t *testing.T, d Dir, n int) []string {
	t.Helper()
	start := time.Date(2026, 11, 29, 16, 40, 0, 0, time.UTC)
	var ids []string
	for i := range n {
		id, release, err := d.NewBuild(start.Add(time.Duration(i) * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		release()
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
		// A clock that went back: the current build is not among the newest,
		// and builds younger than it are another toplevel's.
		{name: "never the current build", builds: 4, keep: 1, current: 0, want: []int{0, 1, 2, 3}},
		{name: "never a younger build", builds: 6, keep: 2, current: 2, want: []int{2, 3, 4, 5}},
		{name: "never a running build", builds: 5, keep: 2, current: 4, running: []int{0, 2}, want: []int{0, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Dir{Root: t.TempDir()}
			ids := newBuilds(t, d, tt.builds)
			for _, i := range tt.running {
				release, err := d.MarkRunning(ids[i])
				if err != nil {
					t.Fatal(err)
				}
				defer release()
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
	release, err := d.MarkRunning(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if removed, _ := d.Prune(1, ids[2]); !slices.Equal(removed, ids[1:2]) {
		t.Fatalf("Prune while %s runs removed %v, want %v", ids[0], removed, ids[1:2])
	}
	release()
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

// TestPruneOnlyBuilds: folders and files in builds/ that are no builds
// survive pruning, whatever their age.
func TestPruneOnlyBuilds(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	builds := filepath.Join(d.Root, "builds")
	if err := os.MkdirAll(filepath.Join(builds, "mine", "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(builds, "0000-notes"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ids := newBuilds(t, d, 3)
	removed, err := d.Prune(1, ids[2])
	if err != nil || !slices.Equal(removed, ids[:2]) {
		t.Fatalf("Prune = %v, %v; want %v", removed, err, ids[:2])
	}
	if got, want := buildsLeft(t, d), []string{"0000-notes", ids[2], "mine"}; !slices.Equal(got, want) {
		t.Errorf("builds/ holds %v, want %v", got, want)
	}
}

// TestPruneConcurrentBuilds: toplevels that start builds and prune at once,
// keeping one build, never remove each other's running builds.
func TestPruneConcurrentBuilds(t *testing.T) {
	d := Dir{Root: t.TempDir()}
	errs := make(chan error)
	for range 8 {
		go func() {
			for range 25 {
				id, release, err := d.NewBuild(time.Now())
				if err != nil {
					errs <- err
					return
				}
				_, _ = d.Prune(1, id)
				if _, err := os.Stat(filepath.Join(d.Build(id), "results")); err != nil {
					release()
					errs <- err
					return
				}
				release()
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("a running build was pruned: %v", err)
		}
	}
}

func TestRemoveStale(t *testing.T) {
	d := newDir(t)
	now := time.Now()
	old := now.Add(-2 * StaleAfter)
	id, release, err := d.NewBuild(now)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	write := func(path string, mtime time.Time) string {
		t.Helper()
		path = filepath.Join(d.Root, path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// A temporary build folder whose toplevel died, and one whose
	// toplevel, though slow, still holds it.
	dead := filepath.Join(d.Root, "builds", tempBuildPrefix+"1")
	alive := filepath.Join(d.Root, "builds", tempBuildPrefix+"2")
	for _, dir := range []string{dead, alive} {
		if err := os.MkdirAll(filepath.Join(dir, "results"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := flock.Shared(filepath.Join(alive, "results"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	for _, dir := range []string{dead, alive} {
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		write("hash/.build.hash.tmp123", old),
		write(".github-token-cache.json.456.tmp", old),
		dead,
		write("builds/"+id+"/.build.tmp789", old),
		write("builds/"+id+"/.trace-1.json", old),
	}
	kept := []string{
		alive,
		write("hash/.build.hash.tmp124", now), // a save going on now
		write("hash/build.hash", old),
		write("hash/.x.hash", old), // the saved hash of job .x
		write("builds/"+id+"/.build.tmp790", now),
		write("builds/"+id+"/results/.build.tmp1", old), // job .build.tmp1's result
		write("builds/notes/.old.tmp1", old),
		write("builds/.notes", old),
		write(".other.tmp", old),
	}
	got := d.RemoveStale(now)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("RemoveStale removed %v, want %v", got, want)
	}
	for _, path := range want {
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("%s is still there", path)
		}
	}
	for _, path := range kept {
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("%s went: %v", path, err)
		}
	}
}
