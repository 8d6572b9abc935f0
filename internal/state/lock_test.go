package state

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// testBuild is the build the tests take locks for.
const testBuild = "2026-11-29T16:40:00.123456Z"

// TestLockRecordsHolder: the holder of a lock records its pid, build and
// since when in the lock file, and a waiter reads them back; releasing the
// lock clears the record.
func TestLockRecordsHolder(t *testing.T) {
	d := newDir(t)
	before := time.Now().UTC().Truncate(time.Second)
	unlock, err := d.Lock(context.Background(), "build", testBuild, nil)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	h, ok := d.LockHolder("build")
	if !ok {
		b, _ := os.ReadFile(d.LockPath("build"))
		t.Fatalf("LockHolder = unknown, want this process; the lock file holds %q", b)
	}
	if h.PID != os.Getpid() || h.Build != testBuild {
		t.Errorf("LockHolder = pid %d, build %q; want pid %d, build %q", h.PID, h.Build, os.Getpid(), testBuild)
	}
	if h.Since.Before(before) || h.Since.After(after) || h.Since.Location() != time.UTC {
		t.Errorf("LockHolder since %v, want a UTC time between %v and %v", h.Since, before, after)
	}
	b, err := os.ReadFile(d.LockPath("build"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b); n == 0 || bytes.IndexByte(b, '\n') != n-1 {
		t.Errorf("lock file %q is not one line", b)
	}

	unlock.Unlock()
	if h, ok := d.LockHolder("build"); ok {
		t.Errorf("after unlock, LockHolder = %+v, want unknown", h)
	}
}

// TestLockRecordsEachHolder: a new holder replaces the record of the last
// one, in the same file, whose flock is what excludes.
func TestLockRecordsEachHolder(t *testing.T) {
	d := newDir(t)
	if err := os.WriteFile(d.LockPath("build"), []byte(`{"pid":1,"build":"older-and-longer-than-the-new-one-by-far","since":"2020-01-01T00:00:00Z"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(d.LockPath("build"))
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := d.Lock(context.Background(), "build", testBuild, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock.Unlock()
	if h, ok := d.LockHolder("build"); !ok || h.PID != os.Getpid() || h.Build != testBuild {
		t.Errorf("LockHolder = %+v, %v; want this process and build %s", h, ok, testBuild)
	}
	now, err := os.Stat(d.LockPath("build"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, now) {
		t.Error("Lock replaced the lock file: waiters on the old inode would not be excluded")
	}
}

// TestLockWaitingCalled: waiting is called when another holder has the
// lock, and only then.
func TestLockWaitingCalled(t *testing.T) {
	d := newDir(t)
	calls := 0
	unlock, err := d.Lock(context.Background(), "build", testBuild, func() { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Errorf("waiting called %d times for a free lock, want 0", calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if unlock2, err := d.Lock(ctx, "build", testBuild, func() { calls++ }); err == nil {
		unlock2.Unlock()
		t.Fatal("a second Lock succeeded while the first was held")
	}
	if calls != 1 {
		t.Errorf("waiting called %d times for a held lock, want 1", calls)
	}
	unlock.Unlock()
}

// TestLockHolderUnknown: a record that is missing, empty, torn or not
// fit to print names no holder.
func TestLockHolderUnknown(t *testing.T) {
	full := `{"pid":1234,"build":"2026-11-30T08:12:34.123456Z","since":"2026-11-30T08:12:34Z"}` + "\n"
	for _, tt := range []struct {
		name, record string
	}{
		{"empty", ""},
		{"torn", full[:len(full)/2]},
		{"torn before the last brace", full[:len(full)-2]},
		{"not JSON", "12345\n"},
		{"no pid", `{"build":"2026-11-30T08:12:34.123456Z","since":"2026-11-30T08:12:34Z"}`},
		{"negative pid", `{"pid":-1,"build":"2026-11-30T08:12:34.123456Z","since":"2026-11-30T08:12:34Z"}`},
		{"no build", `{"pid":1234,"since":"2026-11-30T08:12:34Z"}`},
		{"no since", `{"pid":1234,"build":"2026-11-30T08:12:34.123456Z"}`},
		{"bad since", `{"pid":1234,"build":"2026-11-30T08:12:34.123456Z","since":"yesterday"}`},
		{"escape in build", `{"pid":1234,"build":"\u001b[2J","since":"2026-11-30T08:12:34Z"}`},
		{"space in build", `{"pid":1234,"build":"a b","since":"2026-11-30T08:12:34Z"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			if err := os.WriteFile(d.LockPath("job"), []byte(tt.record), 0o644); err != nil {
				t.Fatal(err)
			}
			if h, ok := d.LockHolder("job"); ok {
				t.Errorf("LockHolder of %q = %+v, want unknown", tt.record, h)
			}
		})
	}

	d := newDir(t)
	if h, ok := d.LockHolder("missing"); ok {
		t.Errorf("LockHolder without a lock file = %+v, want unknown", h)
	}
	// The whole record is read back as written.
	if err := os.WriteFile(d.LockPath("job"), []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	want := Holder{PID: 1234, Build: "2026-11-30T08:12:34.123456Z", Since: time.Date(2026, 11, 30, 8, 12, 34, 0, time.UTC)}
	if h, ok := d.LockHolder("job"); !ok || h.PID != want.PID || h.Build != want.Build || !h.Since.Equal(want.Since) {
		t.Errorf("LockHolder = %+v, %v; want %+v", h, ok, want)
	}
}
