package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taskrunner/taskrunner/internal/cache/s3test"
)

// lines records what a Remote reports, by kind.
type lines struct {
	mu                 sync.Mutex
	info, warn, debugs []string
}

func (l *lines) Info(m string)  { l.mu.Lock(); l.info = append(l.info, m); l.mu.Unlock() }
func (l *lines) Warn(m string)  { l.mu.Lock(); l.warn = append(l.warn, m); l.mu.Unlock() }
func (l *lines) Debug(m string) { l.mu.Lock(); l.debugs = append(l.debugs, m); l.mu.Unlock() }

func (l *lines) get(kind string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), map[string][]string{"info": l.info, "warn": l.warn, "debug": l.debugs}[kind]...)
}

// brokenStore fails every call, as an unreachable endpoint does, and
// counts the calls.
type brokenStore struct{ calls atomic.Int64 }

var errDown = errors.New("connection refused")

func (b *brokenStore) Get(context.Context, string) (io.ReadCloser, error) {
	b.calls.Add(1)
	return nil, errDown
}
func (b *brokenStore) NewWriter(context.Context, string, string) (io.WriteCloser, error) {
	b.calls.Add(1)
	return nil, errDown
}
func (b *brokenStore) Exists(context.Context, string) (bool, error) {
	b.calls.Add(1)
	return false, errDown
}
func (b *brokenStore) Describe() string { return "broken://" }
func (b *brokenStore) Close() error     { return nil }

// slowStore hands out readers that deliver their object a little at a time.
type slowStore struct {
	Store
	pause time.Duration
}

func (s slowStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return &slowReader{rc: rc, pause: s.pause}, nil
}

type slowReader struct {
	rc    io.ReadCloser
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(r.pause)
	if len(p) > 512 {
		p = p[:512]
	}
	return r.rc.Read(p)
}
func (r *slowReader) Close() error { return r.rc.Close() }

// outputs makes a small output tree in a new cache root and returns the root.
func outputs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "out", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"out/a.txt": "a\n", "out/sub/b.txt": strings.Repeat("b", 5000)} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestRemoteWarnsOnce: a store that fails is one warn line for the
// process, after which the store is not called again.
func TestRemoteWarnsOnce(t *testing.T) {
	ctx := testCtx(t)
	store := &brokenStore{}
	rep := &lines{}
	r := NewRemote(store, "taskrunner/", "logs/", "https://logs/", rep)
	root := outputs(t)
	log := filepath.Join(root, "out", "a.txt")

	if r.Restore(ctx, r.Archive("job", "", "abc"), root, []string{"out"}, nil) {
		t.Error("Restore from a broken store reported success")
	}
	if calls := store.calls.Load(); calls != 1 {
		t.Errorf("%d calls to the store for one restore", calls)
	}
	if r.Save(ctx, r.Archive("job", "", "abc"), root, []string{"out"}) {
		t.Error("Save to a broken store reported success")
	}
	if _, ok := r.LatestHash(ctx, "job", "main"); ok {
		t.Error("LatestHash from a broken store found a hash")
	}
	r.SetLatest(ctx, "job", "main", "abc")
	if url := r.UploadLog(ctx, "build", "job", log); url != "" {
		t.Errorf("UploadLog to a broken store gave %q", url)
	}
	if calls := store.calls.Load(); calls != 1 {
		t.Errorf("the store was called %d times; want once, then left alone", calls)
	}
	warns := rep.get("warn")
	if len(warns) != 1 || !strings.Contains(warns[0], "connection refused") ||
		!strings.Contains(warns[0], "going on without the remote cache") {
		t.Errorf("warn lines: %q; want one naming the failure", warns)
	}
}

// TestRemoteLocalFailures: outputs that cannot be archived, or a cache
// root that cannot be written, are warn lines that leave the store in use.
func TestRemoteLocalFailures(t *testing.T) {
	ctx := testCtx(t)
	store := openTestFolder(t, t.TempDir())
	defer store.Close()
	root := outputs(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "out", "abs-link")); err != nil {
		t.Fatal(err)
	}
	rep := &lines{}
	r := NewRemote(store, "", "", "", rep)
	key := r.Archive("job", "", "abc")

	tests := []struct {
		name  string
		op    func() bool
		wants string
	}{
		{"missing output", func() bool { return r.Save(ctx, key, root, []string{"missing"}) },
			"cannot archive the outputs: write cache archive: output missing does not exist"},
		{"absolute symlink", func() bool { return r.Save(ctx, key, root, []string{"out"}) },
			`cannot archive the outputs: write cache archive: unsafe cache archive entry "out/abs-link"`},
	}
	for _, tt := range tests {
		before := len(rep.get("warn"))
		if tt.op() {
			t.Errorf("%s: Save reported success", tt.name)
		}
		warns := rep.get("warn")
		if len(warns) != before+1 || !strings.Contains(warns[before], tt.wants) {
			t.Errorf("%s: warn lines %q, want a new one with %q", tt.name, warns[before:], tt.wants)
		}
		if exists(t, store, key) {
			t.Errorf("%s: an archive was stored", tt.name)
		}
	}

	if err := os.Remove(filepath.Join(root, "out", "abs-link")); err != nil {
		t.Fatal(err)
	}
	if !r.Save(ctx, key, root, []string{"out"}) {
		t.Fatalf("Save after local failures did not store: %q", rep.get("warn"))
	}

	// A cache root that is a file cannot be restored into.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(rep.get("warn"))
	if r.Restore(ctx, key, filepath.Join(file, "root"), []string{"out"}, nil) {
		t.Error("Restore into a file reported success")
	}
	if warns := rep.get("warn"); len(warns) != before+1 || !strings.Contains(warns[before], "cannot restore "+key) {
		t.Errorf("warn lines %q, want one saying the archive cannot be restored", warns[before:])
	}
	dest := t.TempDir()
	if !r.Restore(ctx, key, dest, []string{"out"}, nil) {
		t.Fatalf("Restore after a local failure did not restore: %q", rep.get("warn"))
	}
	if b, err := os.ReadFile(filepath.Join(dest, "out", "sub", "b.txt")); err != nil || len(b) != 5000 {
		t.Errorf("restored b.txt: %d bytes, %v", len(b), err)
	}
}

// TestRemoteCorruptArchive: an archive that is not one is a miss with a
// warn line, and the store stays in use.
func TestRemoteCorruptArchive(t *testing.T) {
	ctx := testCtx(t)
	store := openTestFolder(t, t.TempDir())
	defer store.Close()
	rep := &lines{}
	r := NewRemote(store, "p/", "", "", rep)
	key := r.Archive("job", "v1", "abc")
	if key != "p/bundles/job-v1-abc.tar.zst" {
		t.Errorf("Archive = %q", key)
	}
	put(t, store, key, "", []byte("not zstd at all"))
	found := false
	if r.Restore(ctx, key, t.TempDir(), []string{"out"}, func() { found = true }) {
		t.Fatal("a corrupt archive was restored")
	}
	if !found {
		t.Error("found was not called for an archive that exists")
	}
	if w := rep.get("warn"); len(w) != 1 || !strings.Contains(w[0], "is unusable, ignoring it: corrupt cache archive") {
		t.Errorf("warn lines %q", w)
	}
	r.SetLatest(ctx, "job", "main", "abc")
	if h, ok := r.LatestHash(ctx, "job", "main"); !ok || h != "abc" {
		t.Errorf("LatestHash after a corrupt archive = %q, %v", h, ok)
	}
}

// TestRemoteProgress: a long transfer prints progress info lines while it
// lasts, and a debug line with bytes, seconds and MB/s at the end.
func TestRemoteProgress(t *testing.T) {
	ctx := testCtx(t)
	folder := openTestFolder(t, t.TempDir())
	defer folder.Close()
	rep := &lines{}
	r := NewRemote(folder, "", "", "", rep)
	key := r.Archive("job", "", "abc")
	if !r.Save(ctx, key, outputs(t), []string{"out"}) {
		t.Fatalf("Save: %q", rep.get("warn"))
	}
	r = NewRemote(slowStore{Store: folder, pause: 5 * time.Millisecond}, "", "", "", rep)
	r.progressEvery = 20 * time.Millisecond
	if !r.Restore(ctx, key, t.TempDir(), []string{"out"}, nil) {
		t.Fatalf("Restore: %q", rep.get("warn"))
	}
	var progress int
	for _, l := range rep.get("info") {
		if strings.HasPrefix(l, "Downloading "+key+": ") && strings.HasSuffix(l, "MB/s) so far") {
			progress++
		}
	}
	if progress == 0 {
		t.Errorf("no progress line in %q", rep.get("info"))
	}
	var done bool
	for _, l := range rep.get("debug") {
		done = done || strings.HasPrefix(l, "Downloaded "+key+": ") && strings.Contains(l, " bytes in ") && strings.HasSuffix(l, " MB/s)")
	}
	if !done {
		t.Errorf("no Downloaded debug line in %q", rep.get("debug"))
	}
}

// TestRemoteS3Multipart: an archive of several upload parts goes up as a
// multipart upload, with the part size and concurrency of uploadBuffers,
// and comes back whole.
func TestRemoteS3Multipart(t *testing.T) {
	env := s3test.Bucket(t)
	ctx := testCtx(t)
	store := openS3Env(t, env, defaultLimits)
	defer store.Close()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3*uploadPartSize+12345) // random: the archive is as big
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "out", "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := &lines{}
	r := NewRemote(store, "", "", "", rep)
	key := r.Archive("job", "", "abc")
	if !r.Save(ctx, key, root, []string{"out"}) {
		t.Fatalf("Save: %q", rep.get("warn"))
	}
	head, err := s3test.Client(env).HeadObject(ctx, &s3.HeadObjectInput{Bucket: &env.Bucket, Key: aws.String("taskrunner/" + key)})
	if err != nil {
		t.Fatal(err)
	}
	// A multipart upload's ETag is "<md5 of the parts' md5s>-<parts>".
	if etag := aws.ToString(head.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-4") {
		t.Errorf("ETag %s: want a multipart upload of 4 parts", etag)
	}
	dest := t.TempDir()
	if !r.Restore(ctx, key, dest, []string{"out"}, nil) {
		t.Fatalf("Restore: %q", rep.get("warn"))
	}
	got, err := os.ReadFile(filepath.Join(dest, "out", "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("restored big.bin: %d bytes, %v; want the %d bytes saved", len(got), err, len(data))
	}
}

// TestLazyRemoteOpensOnce: a lazy remote opens its store only when a task
// first needs it (a task skipped by its local hash never does), once; a
// store that cannot be opened is one warn line and then misses.
func TestLazyRemoteOpensOnce(t *testing.T) {
	folder, err := openFolder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var opened atomic.Int64
	rep := &lines{}
	r := NewLazyRemote(func(context.Context) (Store, error) {
		opened.Add(1)
		return folder, nil
	}, "", "", "", rep)
	if opened.Load() != 0 {
		t.Fatal("the store was opened before anything needed it")
	}
	ctx := context.Background()
	r.LatestHash(ctx, "job", "main")
	r.SetLatest(ctx, "job", "main", "abc")
	if h, ok := r.LatestHash(ctx, "job", "main"); !ok || h != "abc" {
		t.Errorf("LatestHash = %q, %v; want abc, true", h, ok)
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("the store was opened %d times, want 1", n)
	}

	rep = &lines{}
	r = NewLazyRemote(func(context.Context) (Store, error) {
		opened.Add(1)
		return nil, errors.New("no such bucket setting")
	}, "", "", "", rep)
	for i := 0; i < 3; i++ {
		if _, ok := r.LatestHash(ctx, "job", "main"); ok {
			t.Fatal("a store that cannot be opened gave a hash")
		}
	}
	if w := rep.get("warn"); len(w) != 1 || !strings.Contains(w[0], "opening the store") {
		t.Errorf("warn lines = %q, want one about opening the store", w)
	}
}

// TestRemoteCancelledIsNoFailure: an operation cut short by a cancelled
// context (a stop signal) says so, and leaves the store in use.
func TestRemoteCancelledIsNoFailure(t *testing.T) {
	store := &brokenStore{}
	rep := &lines{}
	r := NewRemote(store, "taskrunner/", "logs/", "", rep)
	root := outputs(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()

	key := r.Archive("job", "", "abc")
	if r.Restore(ctx, key, root, []string{"out"}, nil) {
		t.Error("a cancelled Restore reported success")
	}
	if r.Save(ctx, key, root, []string{"out"}) {
		t.Error("a cancelled Save reported success")
	}
	if _, ok := r.LatestHash(ctx, "job", "main"); ok {
		t.Error("a cancelled LatestHash found a hash")
	}
	want := []string{
		"remote cache: restoring taskrunner/bundles/job-abc.tar.zst was cancelled; the outputs are as they were",
		"remote cache: uploading taskrunner/bundles/job-abc.tar.zst was cancelled",
	}
	if got := rep.get("warn"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warn lines:\n%q\nwant\n%q", got, want)
	}
	if !r.usable() {
		t.Error("a cancelled operation stopped the use of the store")
	}
	if got, err := os.ReadFile(filepath.Join(root, "out", "a.txt")); err != nil || string(got) != "a\n" {
		t.Errorf("the outputs changed: %q, %v", got, err)
	}
}
