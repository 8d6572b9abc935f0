package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// runStoreSuite checks the Store contract against one implementation; every
// implementation runs it (restic's internal/backend/test is the model). It
// is not named TestSuite because go vet rejects a Test function with that
// signature in a test file. open returns a new, empty store for each
// subtest, closed by the suite.
func runStoreSuite(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"RoundTrip", suiteRoundTrip},
		{"Empty", suiteEmpty},
		{"NotFound", suiteNotFound},
		{"Overwrite", suiteOverwrite},
		{"NothingBeforeClose", suiteNothingBeforeClose},
		{"AbortOnCancel", suiteAbortOnCancel},
		{"AbortKeepsOld", suiteAbortKeepsOld},
		{"Keys", suiteKeys},
		{"InvalidKeys", suiteInvalidKeys},
		{"Concurrent", suiteConcurrent},
		{"ContentType", suiteContentType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// put writes data at key and fails the test on any error.
func put(t *testing.T, s Store, key, contentType string, data []byte) {
	t.Helper()
	w, err := s.NewWriter(testCtx(t), key, contentType)
	if err != nil {
		t.Fatalf("NewWriter(%q): %v", key, err)
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		t.Fatalf("Write(%q): %v", key, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close writer of %q: %v", key, err)
	}
}

// get reads the object at key and fails the test on any error.
func get(t *testing.T, s Store, key string) []byte {
	t.Helper()
	r, err := s.Get(testCtx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func exists(t *testing.T, s Store, key string) bool {
	t.Helper()
	ok, err := s.Exists(testCtx(t), key)
	if err != nil {
		t.Fatalf("Exists(%q): %v", key, err)
	}
	return ok
}

// wantMissing checks that nothing is at key, by Exists and by Get.
func wantMissing(t *testing.T, s Store, key string) {
	t.Helper()
	if exists(t, s, key) {
		t.Errorf("Exists(%q) = true, want false", key)
	}
	r, err := s.Get(testCtx(t), key)
	if err == nil {
		r.Close()
		t.Errorf("Get(%q) found an object, want ErrNotFound", key)
	} else if !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(%q) = %v, want ErrNotFound", key, err)
	}
}

// suiteRoundTrip streams binary data larger than one S3 upload part (5 MiB)
// through a writer fed by io.Copy and reads it back by hash.
func suiteRoundTrip(t *testing.T, s Store) {
	const size = 9<<20 + 12345
	key := "taskrunner/bundles/job-v1-0123456789abcdef.tar.zst"
	if exists(t, s, key) {
		t.Fatalf("Exists(%q) = true in a new store", key)
	}
	src := rand.NewChaCha8([32]byte{1})
	want := sha256.New()
	w, err := s.NewWriter(testCtx(t), key, "application/zstd")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(w, io.TeeReader(io.LimitReader(src, size), want))
	if err != nil || n != size {
		w.Close()
		t.Fatalf("copy into the writer: %d bytes, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !exists(t, s, key) {
		t.Fatalf("Exists(%q) = false after a write", key)
	}
	r, err := s.Get(testCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err = io.Copy(got, r)
	if err != nil || n != size {
		t.Fatalf("read back %d bytes, %v; want %d", n, err, size)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close reader: %v", err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("data read back differs from data written")
	}
}

func suiteEmpty(t *testing.T, s Store) {
	key := "latest/empty.txt"
	w, err := s.NewWriter(testCtx(t), key, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close with nothing written: %v", err)
	}
	if b := get(t, s, key); len(b) != 0 {
		t.Fatalf("got %d bytes, want an empty object", len(b))
	}
}

func suiteNotFound(t *testing.T, s Store) {
	wantMissing(t, s, "latest/job-main.txt")
	put(t, s, "latest/job-main.txt", "text/plain", []byte("abc"))
	// A "folder" holding an object is no object, nor is a longer key.
	wantMissing(t, s, "latest")
	wantMissing(t, s, "latest/job-main.txt/x")
	wantMissing(t, s, "latest/job-main.tx")
}

func suiteOverwrite(t *testing.T, s Store) {
	key := "latest/job-main.txt"
	put(t, s, key, "text/plain", []byte("first, and longer than the second"))
	put(t, s, key, "text/plain", []byte("second"))
	if got := string(get(t, s, key)); got != "second" {
		t.Fatalf("after an overwrite got %q, want %q", got, "second")
	}
}

// suiteNothingBeforeClose: readers see no object while a writer is open.
func suiteNothingBeforeClose(t *testing.T, s Store) {
	key := "bundles/job-half.tar.zst"
	w, err := s.NewWriter(testCtx(t), key, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 100<<10)); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, s, key)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists(t, s, key) {
		t.Fatal("no object after Close")
	}
}

// abortedWrite writes n bytes at key, cancels the context, and checks that
// Close fails.
func abortedWrite(t *testing.T, s Store, key string, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := s.NewWriter(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i)
	}
	// A write may already fail once the upload sees the cancel; that is fine.
	_, _ = w.Write(data)
	cancel()
	if err := w.Close(); err == nil {
		t.Fatal("Close after the context was cancelled returned nil, want an error")
	} else if !errors.Is(err, context.Canceled) {
		t.Logf("Close after cancel: %v (not context.Canceled, but an error)", err)
	}
}

func suiteAbortOnCancel(t *testing.T, s Store) {
	for _, n := range []int{0, 1000, 9 << 20} { // nothing, one part, two parts
		key := fmt.Sprintf("bundles/aborted-%d.tar.zst", n)
		abortedWrite(t, s, key, n)
		wantMissing(t, s, key)
	}
}

func suiteAbortKeepsOld(t *testing.T, s Store) {
	key := "latest/job-main.txt"
	put(t, s, key, "text/plain", []byte("old"))
	abortedWrite(t, s, key, 1000)
	if got := string(get(t, s, key)); got != "old" {
		t.Fatalf("after an aborted overwrite got %q, want the old %q", got, "old")
	}
}

// suiteKeys: keys as taskrunner makes them, and characters that URL
// encoding or a file system could confuse; each is its own object.
func suiteKeys(t *testing.T, s Store) {
	keys := []string{
		"taskrunner/bundles/job-v1-0123456789abcdef0123456789abcdef01234567.tar.zst",
		"latest/job-feature/x.txt",
		"logs/2024-01-01T00:00:00Z-42/job.log.txt",
		"keys/a+b.txt",
		"keys/a b.txt",
		"keys/a%2Fb.txt",
		"keys/a%20b.txt",
		"keys/q?x=1&y=2#frag.txt",
		"keys/semi;colon,comma=eq@at~tilde!bang'quote(paren)*star$.txt",
		"keys/..dots../.hidden/x..y",
		"keys/ünïcødé/ключ/鍵.txt",
		"keys/UPPER/lower.TXT",
	}
	for i, k := range keys {
		put(t, s, k, "", []byte(fmt.Sprintf("object %d: %s", i, k)))
	}
	for i, k := range keys {
		want := fmt.Sprintf("object %d: %s", i, k)
		if got := string(get(t, s, k)); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
		if !exists(t, s, k) {
			t.Errorf("Exists(%q) = false", k)
		}
	}
	wantMissing(t, s, "keys/upper/lower.txt")
	wantMissing(t, s, "keys/a/b.txt")
}

func suiteInvalidKeys(t *testing.T, s Store) {
	for _, k := range []string{"", "/abs", "trailing/", "a//b", "./a", "a/./b", "a/../b", "..", "a\nb", "tab\tkey", "nul\x00", "bad\xffutf8"} {
		if _, err := s.Get(testCtx(t), k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Exists(testCtx(t), k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Exists(%q) = %v, want ErrInvalidKey", k, err)
		}
		if w, err := s.NewWriter(testCtx(t), k, ""); !errors.Is(err, ErrInvalidKey) {
			if err == nil {
				w.Close()
			}
			t.Errorf("NewWriter(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func suiteConcurrent(t *testing.T, s Store) {
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("bundles/job%d-v1-abc.tar.zst", i)
			w, err := s.NewWriter(testCtx(t), key, "")
			if err != nil {
				errs <- err
				return
			}
			// Interleave small writes so the uploads overlap.
			for range 64 {
				if _, err := w.Write(bytes.Repeat([]byte{byte(i)}, 4096)); err != nil {
					w.Close()
					errs <- err
					return
				}
			}
			errs <- w.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range n {
		b := get(t, s, fmt.Sprintf("bundles/job%d-v1-abc.tar.zst", i))
		if !bytes.Equal(b, bytes.Repeat([]byte{byte(i)}, 64*4096)) {
			t.Errorf("object %d: wrong content (%d bytes)", i, len(b))
		}
	}
}

// contentTyper is a store that can tell the content type of an object. The
// folder store keeps none (see openFolder): for it, suiteContentType checks
// only that an object written with a content type reads back whole.
type contentTyper interface {
	contentType(ctx context.Context, key string) (string, error)
}

func suiteContentType(t *testing.T, s Store) {
	ct, ok := s.(contentTyper)
	if !ok {
		put(t, s, "logs/build-1/job.log.txt", "text/plain; charset=utf-8", []byte("log\n"))
		if got := get(t, s, "logs/build-1/job.log.txt"); string(got) != "log\n" {
			t.Errorf("%T: an object written with a content type reads back %q", s, got)
		}
		return
	}
	for key, want := range map[string]string{
		"logs/build-1/job.log.txt": "text/plain; charset=utf-8", // SPEC §10
		"bundles/job-abc.tar.zst":  "application/octet-stream",  // given as ""
	} {
		in := want
		if strings.HasPrefix(key, "bundles/") {
			in = ""
		}
		put(t, s, key, in, []byte("line 1\nline 2\n"))
		got, err := ct.contentType(testCtx(t), key)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("content type of %q = %q, want %q", key, got, want)
		}
	}
}
