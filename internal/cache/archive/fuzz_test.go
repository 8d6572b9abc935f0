package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzLimits keep each run small: the fuzzer makes archives that claim
// much, and zstd makes a few bytes into many.
func fuzzLimits(budget int64) Limits {
	const minFree = 1 << 20
	return Limits{
		MaxEntries:    64,
		MaxDepth:      16,
		MaxPathLength: 256,
		MinFree:       minFree,
		// The free space shrinks with what the restore staged: it may
		// write budget bytes.
		statFS: func(staging string) (uint64, uint64, error) {
			var used int64
			filepath.WalkDir(staging, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if fi, err := d.Info(); err == nil {
						used += fi.Size()
					}
				}
				return nil
			})
			return uint64(minFree + max(0, budget-used)), 1 << 40, nil
		},
	}
}

// fuzzSeeds are the archives of the table tests: refused, corrupt, past a
// limit, and good ones; each also stored in zstd without compression or
// checksum, so that the fuzzer's changes reach the tar stream.
func fuzzSeeds(t testing.TB) [][]byte {
	tars := [][]byte{
		buildTar(t, dir("dist/"), dir("out/"), file("out/new.txt", "new"), dir("out/ro/"), file("out/ro/f", "f"),
			file("dist/app.bin", "new app")),
		append(rawHeader("out/sparse", tar.TypeGNUSparse, 8<<30), make([]byte, 1024)...),
		paxSparse("out/sparse", 8<<30),
		buildTar(t, dir("out/"), file("out/a", "a"), hardlink("out/b", "out/a"), symlink("out/c", "a"),
			symlink("out/d", "../dist/app.bin"), fifo("out/p"), entry{typ: tar.TypeReg, name: "out/s", mode: 0o7777}),
		buildTar(t, entry{typ: tar.TypeDir, name: "out/", mode: 0o500}, entry{typ: tar.TypeDir, name: "out/ro/", mode: 0},
			file("out/ro/f", "f"), file("out/x/y", "y"), file("out/ro/g", "g")),
		buildTar(t, file("out/big", strings.Repeat("z", 5<<20))), // past the budget
	}
	for _, c := range unsafeCases() {
		tars = append(tars, buildTar(t, c.entries("/tmp/outside")...))
	}
	var seeds [][]byte
	for _, ts := range tars {
		seeds = append(seeds, compress(t, ts))
		if len(ts) < 64<<10 {
			seeds = append(seeds, stored(ts))
		}
	}
	good := seeds[0]
	return append(seeds, good[:len(good)/2], deepArchive(t, 20), manyEntries(t, 70))
}

// stored makes a zstd frame of raw blocks: no compression, no checksum.
func stored(data []byte) []byte {
	const maxBlock = 128 << 10
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50} // magic; no size, no checksum; 1 MiB window
	for first := true; first || len(data) > 0; first = false {
		n := min(len(data), maxBlock)
		h := uint32(n) << 3 // raw block
		if n == len(data) {
			h |= 1 // the last
		}
		out = append(out, byte(h), byte(h>>8), byte(h>>16))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return out
}

// FuzzRestore restores arbitrary bytes over a cache root with a .git
// folder, tracked files and old outputs, and checks what Restore promises:
// it does not panic, writes nothing outside the outputs, leaves no
// staging folder, and on error leaves the outputs as they were; what it
// restores has no .git, no setuid, setgid or sticky bits, nothing more
// writable than the umask allows, and links that stay inside the outputs.
func FuzzRestore(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	outputs, err := outputNames(testOutputs)
	must(f, err)
	mask := umask()
	f.Fuzz(func(t *testing.T, data []byte) {
		root, outside := makeRoot(t)
		before := snapshot(t, root)
		_, err := Restore(context.Background(), bytes.NewReader(data), root, testOutputs,
			RestoreOptions{Limits: fuzzLimits(4 << 20)})
		modes := unlock(t, root)
		after := snapshot(t, root)
		noStaging(t, root)
		if left, _ := os.ReadDir(outside); len(left) != 0 {
			t.Errorf("written outside the root: %v", left)
		}
		if left, _ := os.ReadDir(filepath.Dir(root)); len(left) != 3 {
			t.Errorf("written next to the root: %v", left)
		}
		for name, desc := range after {
			if !outputs.contains(name) && before[name] != desc {
				t.Errorf("outside the outputs: %s: %s, was %q", name, desc, before[name])
			}
		}
		for name := range before {
			if _, ok := after[name]; !ok && !outputs.contains(name) {
				t.Errorf("outside the outputs: %s removed", name)
			}
		}
		if err != nil {
			sameSnapshot(t, before, after)
			return
		}
		for name, mode := range modes {
			if !outputs.contains(name) || before[name] == after[name] {
				continue
			}
			switch {
			case hasGit(name):
				t.Errorf("%s restored", name)
			case mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0:
				t.Errorf("%s: mode %v", name, mode)
			case mode&fs.ModeSymlink == 0 && mode.Perm()&mask != 0:
				t.Errorf("%s: mode %v, umask %03o", name, mode, mask)
			case mode&fs.ModeSymlink != 0:
				target, _ := os.Readlink(filepath.Join(root, name))
				if reason := outputs.checkLink(name, target); reason != "" {
					t.Errorf("%s: %s", name, reason)
				}
			}
		}
	})
}
