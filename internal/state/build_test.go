package state

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestNewBuildID(t *testing.T) {
	at := time.Date(2026, 11, 29, 17, 40, 0, 123456789, time.FixedZone("CET", 3600))
	if got, want := NewBuildID(at), "2026-11-29T16:40:00.123456Z"; got != want {
		t.Errorf("NewBuildID = %s, want %s", got, want)
	}
	// Sub-second precision keeps the zeros, so ids sort as times do.
	at = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got, want := NewBuildID(at), "2026-01-02T03:04:05.000000Z"; got != want {
		t.Errorf("NewBuildID = %s, want %s", got, want)
	}
}

func TestParseBuildID(t *testing.T) {
	tests := []struct {
		id   string
		want time.Time // zero: not a build id
	}{
		{"2026-11-29T16:40:00.123456Z", time.Date(2026, 11, 29, 16, 40, 0, 123456000, time.UTC)},
		// The tool taskrunner succeeds writes as many digits as it needs.
		{"2026-11-29T16:40:00Z", time.Date(2026, 11, 29, 16, 40, 0, 0, time.UTC)},
		{"2026-11-29T16:40:00.5Z", time.Date(2026, 11, 29, 16, 40, 0, 500000000, time.UTC)},
		{"2026-11-29T16:40:00.123456789012Z", time.Date(2026, 11, 29, 16, 40, 0, 123456789, time.UTC)},
		{"2026-11-29T16:40:00.1234567890123Z", time.Time{}},
		{"2026-11-29T16:40:00.Z", time.Time{}},
		{"2026-11-29T16:40:00.12a456Z", time.Time{}},
		{"2026-11-29T16:40:00.123456", time.Time{}},
		{"2026-11-29T16:40:00.123456+01:00", time.Time{}},
		{"2026-13-29T16:40:00.123456Z", time.Time{}},
		{"2026-11-29 16:40:00.123456Z", time.Time{}},
		{".new-build-123", time.Time{}},
		{"my-notes", time.Time{}},
		{"", time.Time{}},
		{".", time.Time{}},
		{"..", time.Time{}},
	}
	for _, tt := range tests {
		got, ok := ParseBuildID(tt.id)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("ParseBuildID(%q) = %v, %v; want %v", tt.id, got, ok, tt.want)
		}
	}
}

// TestNewBuildUnique: two toplevels that start in the same microsecond get
// two builds, and a folder of that name that is not a build, even an empty
// one, is not taken over.
func TestNewBuildUnique(t *testing.T) {
	d := newDir(t)
	at := time.Date(2026, 11, 29, 16, 40, 0, 123456000, time.UTC)
	a, releaseA, err := d.NewBuild(at)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	if err := os.Mkdir(d.Build("2026-11-29T16:40:00.123457Z"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := d.NewBuild(at)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseB()
	if a == b || b != "2026-11-29T16:40:00.123458Z" {
		t.Errorf("NewBuild twice at one time = %q, %q; want %q then the first free microsecond", a, b, a)
	}
}

// TestNewBuildMarkedRunning: a new build is running as soon as it has its
// id, until released, and leaves no temporary folder.
func TestNewBuildMarkedRunning(t *testing.T) {
	d := newDir(t)
	id, release, err := d.NewBuild(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !d.IsRunning(id) {
		t.Error("a new build is not running")
	}
	entries, _ := os.ReadDir(filepath.Join(d.Root, "builds"))
	if len(entries) != 1 || entries[0].Name() != id {
		t.Errorf("builds/ holds %v, want %s alone", entries, id)
	}
	release()
	if d.IsRunning(id) {
		t.Error("a released build still runs")
	}
	if d.IsRunning("2000-01-01T00:00:00.000000Z") {
		t.Error("a build that does not exist runs")
	}
}

// TestBuildsOnlyBuildIDs: folders that are no build ids, files and links
// in builds/ are not builds; builds come in the order they started.
func TestBuildsOnlyBuildIDs(t *testing.T) {
	d := newDir(t)
	builds := filepath.Join(d.Root, "builds")
	for _, name := range []string{"notes", ".new-build-1", "2026-11-29T16:40:01Z", "2026-11-29T16:40:00.5Z", "2026-11-29T16:40:00.100000Z"} {
		if err := os.Mkdir(filepath.Join(builds, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(builds, "2026-11-29T16:40:02.000000Z"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(builds, "notes"), filepath.Join(builds, "2026-11-29T16:40:03.000000Z")); err != nil {
		t.Fatal(err)
	}
	got, err := d.Builds()
	want := []string{"2026-11-29T16:40:00.100000Z", "2026-11-29T16:40:00.5Z", "2026-11-29T16:40:01Z"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Builds = %v, %v; want %v", got, err, want)
	}
	for name, want := range map[string]bool{"2026-11-29T16:40:01Z": true, "notes": false, ".new-build-1": false, "2026-11-29T16:40:02.000000Z": false, "2026-11-29T16:40:03.000000Z": false, "2026-11-29T16:40:04.000000Z": false} {
		if got := d.IsBuild(name); got != want {
			t.Errorf("IsBuild(%q) = %v, want %v", name, got, want)
		}
	}
}
