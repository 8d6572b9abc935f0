package archive

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchSize is the size of the benchmarks' tree: mixed noise and text in
// large files, plus small files.
const benchSize = 64 << 20

var bench struct {
	once    sync.Once
	dir     string // the tree
	archive string // our archive of it
	err     error
}

// benchTree makes the benchmark tree and its archive once per test binary,
// so benchmark rounds do not each write 64 MiB.
func benchTree(b *testing.B) (dir, archive string) {
	bench.once.Do(func() {
		base, err := os.MkdirTemp("", "archive-bench-")
		if err != nil {
			bench.err = err
			return
		}
		bench.dir = filepath.Join(base, "tree")
		bench.archive = filepath.Join(base, "tree.tar.zst")
		must(b, os.Mkdir(bench.dir, 0o755))
		makeBigTree(b, bench.dir, benchSize)
		f, err := os.Create(bench.archive)
		must(b, err)
		_, bench.err = Write(context.Background(), f, bench.dir, []string{"."}, WriteOptions{})
		must(b, f.Close())
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.dir, bench.archive
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(filepath.Dir(bench.dir))
	}
	os.Exit(code)
}

// BenchmarkWrite archives the tree to io.Discard; "gnu" runs
// `tar -c | zstd -3 -T0` on it, the pipeline the older tool used.
func BenchmarkWrite(b *testing.B) {
	dir, _ := benchTree(b)
	b.Run("ours", func(b *testing.B) {
		b.SetBytes(benchSize)
		var st Stats
		for b.Loop() {
			var err error
			st, err = Write(context.Background(), io.Discard, dir, []string{"."}, WriteOptions{})
			must(b, err)
		}
		b.ReportMetric(float64(st.Compressed)/float64(st.Bytes), "ratio")
	})
	b.Run("gnu", func(b *testing.B) {
		needTools(b)
		b.SetBytes(benchSize)
		var out []byte
		for b.Loop() {
			out = runSh(b, `tar -C "$SRC" -cf - . | zstd -3 -T0 -q -c | wc -c`, "SRC="+dir)
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			b.ReportMetric(float64(n)/benchSize, "ratio")
		}
	})
}

// BenchmarkRestore restores the tree's archive into a fresh folder each
// round; "gnu" runs `zstd -dc | tar -x` on it.
func BenchmarkRestore(b *testing.B) {
	_, archive := benchTree(b)
	run := func(b *testing.B, extract func(dst string)) {
		b.SetBytes(benchSize)
		base := b.TempDir()
		for i := 0; i < b.N; i++ {
			dst := filepath.Join(base, "x")
			extract(dst)
			b.StopTimer()
			must(b, os.RemoveAll(dst))
			b.StartTimer()
		}
	}
	b.Run("ours", func(b *testing.B) {
		run(b, func(dst string) {
			f, err := os.Open(archive)
			must(b, err)
			defer f.Close()
			_, err = Restore(context.Background(), f, dst, []string{"."}, RestoreOptions{})
			must(b, err)
		})
	})
	b.Run("gnu", func(b *testing.B) {
		needTools(b)
		run(b, func(dst string) {
			runSh(b, `mkdir -p "$DST" && zstd -dc "$ARCHIVE" | tar -xf - -C "$DST"`, "ARCHIVE="+archive, "DST="+dst)
		})
	})
}

func needTools(b *testing.B) {
	for _, tool := range []string{"tar", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not on this machine: no comparison", tool)
		}
	}
}

func runSh(b *testing.B, script string, env ...string) []byte {
	cmd := exec.Command("sh", "-ec", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s: %v", script, err)
	}
	return out
}

// TestMemoryBounded writes a 256 MiB tree to a file and extracts it, and
// checks that the heap stays far below the data's size in each direction.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB three times")
	}
	if raceEnabled {
		t.Skip("the race detector makes this minutes long; memory use is the same without it")
	}
	const size = 256 << 20
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	makeBigTree(t, src, size)
	archive := filepath.Join(t.TempDir(), "bundle.tar.zst")

	const mib = 1 << 20
	heap, sys := peakMemory(func() {
		f, err := os.Create(archive)
		must(t, err)
		_, err = Write(context.Background(), f, src, []string{"."}, WriteOptions{})
		must(t, err)
		must(t, f.Close())
	})
	t.Logf("Write: peak HeapInuse %d MiB, Sys %d MiB for %d MiB", heap/mib, sys/mib, size/mib)
	if heap > 64*mib || sys > 100*mib {
		t.Errorf("Write: peak HeapInuse %d MiB, Sys %d MiB; want under 64 and 100 MiB", heap/mib, sys/mib)
	}

	var st Stats
	heap, sys = peakMemory(func() {
		f, err := os.Open(archive)
		must(t, err)
		defer f.Close()
		st, err = Restore(context.Background(), f, filepath.Join(t.TempDir(), "dst"), []string{"."}, RestoreOptions{})
		must(t, err)
	})
	t.Logf("Restore: peak HeapInuse %d MiB, Sys %d MiB for %d MiB", heap/mib, sys/mib, size/mib)
	if heap > 32*mib || sys > 100*mib {
		t.Errorf("Restore: peak HeapInuse %d MiB, Sys %d MiB; want under 32 and 100 MiB", heap/mib, sys/mib)
	}
	if st.Bytes != size {
		t.Errorf("extracted %d bytes, want %d", st.Bytes, size)
	}
}

// peakMemory runs f and returns the highest HeapInuse and Sys seen while it
// ran, sampled every few milliseconds.
func peakMemory(f func()) (heap, sys uint64) {
	runtime.GC()
	stop := make(chan struct{})
	peak := make(chan [2]uint64)
	go func() {
		var m runtime.MemStats
		var top [2]uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- top
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				top[0] = max(top[0], m.HeapInuse)
				top[1] = max(top[1], m.Sys)
			}
		}
	}()
	f()
	close(stop)
	p := <-peak
	return p[0], p[1]
}
