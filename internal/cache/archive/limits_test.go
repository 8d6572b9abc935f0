package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestRestoreLimits(t *testing.T) {
	long := "out/" + strings.Repeat("n", 200) + "/" + strings.Repeat("x", 4096)
	deep := "out" + strings.Repeat("/a", 299)
	cases := []struct {
		name    string
		limits  Limits
		entries []entry
		want    string // the message
	}{
		{"entries", Limits{MaxEntries: 3},
			[]entry{dir("out/"), file("out/a", ""), file("out/b", ""), file("out/c", "")},
			"archive has more than 3 entries"},
		{"entries, defaults", Limits{},
			nil, // made below
			"archive has more than 1000000 entries"},
		{"name length", Limits{},
			[]entry{file(long, "x")},
			`entry "out/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn…" has a 4301-byte name (at most 4096)`},
		{"name length, set", Limits{MaxPathLength: 10},
			[]entry{file("out/abcdefgh", "x")},
			`entry "out/abcdefgh" has a 12-byte name (at most 10)`},
		{"link target length", Limits{},
			[]entry{symlink("out/l", strings.Repeat("t", 5000))},
			`entry "out/l" links to a 5000-byte path (at most 4096)`},
		{"hard link target length", Limits{MaxPathLength: 10},
			[]entry{file("out/a", "x"), hardlink("out/b", "out/"+strings.Repeat("a", 10))},
			`entry "out/b" links to a 14-byte path (at most 10)`},
		{"depth", Limits{},
			[]entry{dir("out/"), file(deep, "x")},
			`entry "out/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/…" has 300 path components (at most 256)`},
		{"depth, set", Limits{MaxDepth: 2},
			[]entry{dir("out/"), dir("out/a/"), dir("out/a/b/")},
			`entry "out/a/b/" has 3 path components (at most 2)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			if tc.entries == nil {
				data = manyEntries(t, DefaultMaxEntries+1)
			} else {
				data = buildArchive(t, tc.entries...)
			}
			root, outside := makeRoot(t)
			before := snapshot(t, root)
			_, err := restoreBytes(t, data, root, testOutputs, RestoreOptions{Limits: tc.limits})
			var limit *LimitError
			if !errors.As(err, &limit) || err.Error() != tc.want {
				t.Errorf("err = %v, want a *LimitError saying:\n%s", err, tc.want)
			}
			refused(t, root, outside, before)
		})
	}
}

// manyEntries makes an archive of n named pipes in out/: entries that
// cost the restore nothing but their count.
func manyEntries(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	must(t, err)
	tw := tar.NewWriter(enc)
	hdr := &tar.Header{Typeflag: tar.TypeFifo, Mode: 0o644, ModTime: time.Unix(1e9, 0)}
	for i := range n {
		hdr.Name = "out/" + string(rune('a'+i%26))
		must(t, tw.WriteHeader(hdr))
	}
	must(t, tw.Close())
	must(t, enc.Close())
	return buf.Bytes()
}

// deepArchive is what took the old extractor minutes: a folder entry at
// every level of a path depth folders deep, and a file at the bottom,
// made with archive/tar and zstd.
func deepArchive(t testing.TB, depth int) []byte {
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf)
	must(t, err)
	tw := tar.NewWriter(enc)
	name := "a"
	for i := 1; i < depth; i++ {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: time.Unix(1e9, 0)}))
		name += "/a"
	}
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: 4, ModTime: time.Unix(1e9, 0)}))
	_, err = tw.Write([]byte("deep"))
	must(t, err)
	must(t, tw.Close())
	must(t, enc.Close())
	return buf.Bytes()
}

// TestRestoreDeep: a path 6000 folders deep is refused at once by default
// (the old extractor took minutes over it), and restored with flat memory
// when the limits allow it. The time bound is loose, for noisy machines.
// BenchmarkRestoreDeep shows the time per folder does not grow with depth.
func TestRestoreDeep(t *testing.T) {
	data := deepArchive(t, 6000)
	root := t.TempDir()
	start := time.Now()
	_, err := restoreBytes(t, data, root, []string{"a"}, RestoreOptions{})
	var limit *LimitError
	if !errors.As(err, &limit) || limit.What != LimitDepth {
		t.Errorf("err = %v, want a *LimitError on depth", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing took %v", d)
	}
	noStaging(t, root)

	var st Stats
	heap, _ := peakMemory(func() {
		lim := Limits{MaxDepth: 6000, MaxPathLength: 12000}
		st, err = restoreBytes(t, data, root, []string{"a"}, RestoreOptions{Limits: lim})
	})
	must(t, err)
	// Mostly the zstd window and garbage; the old extractor kept every
	// folder's path, a few hundred MiB here.
	if heap > 48<<20 {
		t.Errorf("peak HeapInuse %d MiB restoring, want under 48", heap>>20)
	}
	if st.Dirs != 5999 || st.Files != 1 {
		t.Errorf("stats = %+v", st)
	}
	rt, err := os.OpenRoot(root)
	must(t, err)
	defer rt.Close()
	if got, err := rt.ReadFile(strings.TrimSuffix(strings.Repeat("a/", 6000), "/")); err != nil || string(got) != "deep" {
		t.Errorf("the file at the bottom: %q, %v", got, err)
	}
	noStaging(t, root)
}

func TestRestoreFreeSpace(t *testing.T) {
	const gib = 1 << 30
	big := strings.Repeat("z", 3*spaceCheckEvery) // three checks while it is written
	cases := []struct {
		name      string
		minFree   int64
		avail     []uint64 // successive answers; the last one repeats
		total     uint64
		data      string
		want      string // "": restored
		wantCalls int
	}{
		{"room", 0, []uint64{gib + 100}, 100 * gib, strings.Repeat("x", 100), "", 1},
		{"one byte short", 0, []uint64{gib + 99}, 100 * gib, strings.Repeat("x", 100), "1.0 GiB", 1},
		{"5% of a small disk", 0, []uint64{512 << 20}, 10 * gib, "x", "512.0 MiB", 1},
		{"5% of a small disk, room", 0, []uint64{512<<20 + 1}, 10 * gib, "x", "", 1},
		{"set", 1 << 20, []uint64{1<<20 + 1}, 10 * gib, "x", "", 1},
		{"set, short", 512 << 20, []uint64{512 << 20}, 10 * gib, "x", "512.0 MiB", 1},
		{"off", -1, []uint64{0}, 10 * gib, "x", "", 0},
		{"filling while written", 0, []uint64{4 * gib, 4 * gib, gib + 1}, 100 * gib, big, "1.0 GiB", 3},
		{"empty file", 0, []uint64{0}, 10 * gib, "", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := makeRoot(t)
			before := snapshot(t, root)
			var calls int
			var paths []string
			lim := Limits{MinFree: tc.minFree, statFS: func(path string) (uint64, uint64, error) {
				paths = append(paths, path)
				calls++
				return tc.avail[min(calls, len(tc.avail))-1], tc.total, nil
			}}
			data := buildArchive(t, dir("out/"), file("out/f", tc.data))
			_, err := restoreBytes(t, data, root, testOutputs, RestoreOptions{Limits: lim})
			if calls != tc.wantCalls {
				t.Errorf("%d free space checks, want %d", calls, tc.wantCalls)
			}
			for _, p := range paths {
				if filepath.Dir(p) != root || !strings.HasPrefix(filepath.Base(p), stagingPrefix) {
					t.Errorf("checked the free space at %s, not the staging folder", p)
				}
			}
			if tc.want == "" {
				must(t, err)
				return
			}
			var limit *LimitError
			want := "restoring would leave less than " + tc.want + " free on " + root
			if !errors.As(err, &limit) || err.Error() != want {
				t.Errorf("err = %v, want a *LimitError saying:\n%s", err, want)
			}
			refused(t, root, outside, before)
		})
	}
}

func TestLimitErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *LimitError
		want string
	}{
		{&LimitError{What: LimitEntries, Limit: 1_000_000}, "archive has more than 1000000 entries"},
		{&LimitError{What: LimitDepth, Entry: strings.Repeat("é/", 30), Limit: 256, Value: 300},
			`entry "é/é/é/é/é/é/é/é/é/é/é/é/é/…" has 300 path components (at most 256)`},
		{&LimitError{What: LimitFreeSpace, Limit: 1 << 30, Path: "/work"}, "restoring would leave less than 1.0 GiB free on /work"},
		{&LimitError{What: LimitFreeSpace, Limit: 5 << 40, Path: "/work"}, "restoring would leave less than 5.0 TiB free on /work"},
		{&LimitError{What: LimitFreeSpace, Limit: 1000, Path: "/work"}, "restoring would leave less than 1000 bytes free on /work"},
		{&LimitError{What: LimitImplied, Limit: 10_000}, "archive implies more than 10000 folders without entries of their own"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("message:\n%s\nwant:\n%s", got, tc.want)
		}
	}
}

// BenchmarkRestoreDeep restores a path 4000 folders deep; its time per
// folder should not grow with the depth (compare -bench with other depths).
func BenchmarkRestoreDeep(b *testing.B) {
	for _, depth := range []int{250, 1000, 4000} {
		b.Run(strconv.Itoa(depth), func(b *testing.B) {
			data := deepArchive(b, depth)
			lim := Limits{MaxDepth: depth, MaxPathLength: 2 * depth}
			for b.Loop() {
				root := b.TempDir()
				if _, err := restoreBytes(b, data, root, []string{"a"}, RestoreOptions{Limits: lim}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(depth), "ns/folder")
		})
	}
}
