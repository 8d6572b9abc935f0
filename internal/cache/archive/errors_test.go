package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sampleArchive is a small archive whose files hold both compressible and
// incompressible data, so damage hits compressed and raw zstd blocks.
func sampleArchive(t *testing.T) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 200<<10)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	return buildArchive(t,
		dir("out/"),
		file("out/text", strings.Repeat("the same line again\n", 20000)),
		file("out/noise", string(noise)),
		file("out/last", "end"),
	)
}

func TestRestoreCorrupt(t *testing.T) {
	good := sampleArchive(t)
	if _, err := restoreBytes(t, good, t.TempDir(), []string{"out"}, RestoreOptions{}); err != nil {
		t.Fatalf("the undamaged archive fails: %v", err)
	}
	cases := map[string][]byte{
		"empty":          {},
		"not zstd":       []byte(strings.Repeat("this is not an archive\n", 100)),
		"trailing junk":  append(bytes.Clone(good), "junk"...),
		"only the magic": good[:4],
	}
	for _, at := range []int{len(good) / 5, len(good) / 2, len(good) * 4 / 5, len(good) - 2} {
		damaged := bytes.Clone(good)
		damaged[at] ^= 0x5a
		cases["flipped byte at "+strconv.Itoa(at)] = damaged
	}
	for _, n := range []int{12, 600, len(good) / 3, len(good) / 2, len(good) - 1} {
		cases["truncated to "+strconv.Itoa(n)] = good[:n]
	}
	cases["stops between entries"] = cutBetweenEntries(t)
	cases["padded past 16 MiB"] = padded(t, maxPadding+1)
	if _, err := restoreBytes(t, padded(t, 1<<20), t.TempDir(), []string{"a"}, RestoreOptions{}); err != nil {
		t.Errorf("an archive padded with 1 MiB fails: %v", err)
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			_, err := restoreBytes(t, data, root, []string{"out", "a", "b"}, RestoreOptions{})
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want one wrapping ErrCorrupt", err)
			}
			if left, _ := os.ReadDir(root); len(left) != 0 {
				t.Errorf("left in the root: %v", left)
			}
		})
	}
}

// cutBetweenEntries makes a valid zstd stream of a tar stream that stops
// after an entry, as a stream of frames cut between two frames would.
func cutBetweenEntries(t *testing.T) []byte {
	var tarStream bytes.Buffer
	tw := tar.NewWriter(&tarStream)
	for _, name := range []string{"a", "b"} {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 3, Mode: 0o644}))
		_, err := tw.Write([]byte("abc"))
		must(t, err)
	}
	must(t, tw.Flush()) // pads b, writes no end-of-archive blocks
	var out bytes.Buffer
	fw, err := newFrameWriter(&out, WriteOptions{})
	must(t, err)
	_, err = fw.Write(tarStream.Bytes())
	must(t, err)
	must(t, fw.Close())
	return out.Bytes()
}

// padded makes an archive of one file followed by n zero bytes past the
// end-of-archive blocks: a few bytes of zstd.
func padded(t *testing.T, n int) []byte {
	var tarStream bytes.Buffer
	tw := tar.NewWriter(&tarStream)
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a", Size: 1, Mode: 0o644}))
	_, err := tw.Write([]byte("a"))
	must(t, err)
	must(t, tw.Close())
	tarStream.Write(make([]byte, n))
	return compress(t, tarStream.Bytes())
}

// TestRestoreSourceFailure checks that a broken connection is reported as
// itself, not as a corrupt archive.
func TestRestoreSourceFailure(t *testing.T) {
	good := sampleArchive(t)
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(good[:len(good)/2]), errReader{boom})
	_, err := Restore(context.Background(), r, t.TempDir(), []string{"out"}, RestoreOptions{})
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Errorf("err = %v, want the reader's own error, not ErrCorrupt", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestWriteStopsOnCancel(t *testing.T) {
	src := t.TempDir()
	makeBigTree(t, src, 32<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The encoder emits its first bytes once it has a few MiB of input.
	w := &cancelAfter{limit: 1, cancel: cancel}
	_, err := Write(ctx, w, src, []string{"."}, WriteOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	full, err := Write(context.Background(), io.Discard, src, []string{"."}, WriteOptions{})
	must(t, err)
	if w.n >= full.Compressed {
		t.Errorf("wrote %d bytes after cancel, the whole archive is %d", w.n, full.Compressed)
	}
}

func TestRestoreStopsOnCancel(t *testing.T) {
	src := t.TempDir()
	makeBigTree(t, src, 8<<20)
	var buf bytes.Buffer
	_, err := Write(context.Background(), &buf, src, []string{"."}, WriteOptions{})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancelAfterRead{r: &buf, limit: 64 << 10, cancel: cancel}
	dst := t.TempDir()
	st, err := Restore(ctx, r, dst, []string{"."}, RestoreOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st.Bytes >= 8<<20 {
		t.Errorf("extracted %d bytes after cancel, all of it", st.Bytes)
	}
	if left, _ := os.ReadDir(dst); len(left) != 0 {
		t.Errorf("left in the root: %v", left)
	}
}

// cancelAfter is a writer that cancels once limit bytes went through.
type cancelAfter struct {
	n, limit int64
	cancel   func()
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.n >= c.limit {
		c.cancel()
	}
	return len(p), nil
}

type cancelAfterRead struct {
	r        io.Reader
	n, limit int64
	cancel   func()
}

func (c *cancelAfterRead) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n += int64(n); c.n >= c.limit {
		c.cancel()
	}
	return n, err
}

// makeBigTree writes about size bytes of mixed data: large files made of
// 1 MiB stretches alternately of noise and of text drawn from a small
// vocabulary (about 3:1 under zstd -3, like source code), and many small
// text files.
func makeBigTree(t testing.TB, dir string, size int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	noise := rand.NewChaCha8([32]byte{7})
	chunk := make([]byte, 1<<20)
	large := size * 7 / 8
	for i := 0; large > 0; i++ {
		n := min(large, 16<<20)
		f, err := os.Create(filepath.Join(dir, "large-"+strconv.Itoa(i)+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		for left := n; left > 0; left -= int64(len(chunk)) {
			if (left/int64(len(chunk)))%2 == 0 {
				noise.Read(chunk)
			} else {
				fillText(rng, chunk)
			}
			if _, err := f.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		large -= n
	}
	small := size / 8
	for i := 0; small > 0; i++ {
		sub := filepath.Join(dir, "small", strconv.Itoa(i/100))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		n := min(small, int64(rng.IntN(16<<10)+1))
		fillText(rng, chunk[:n])
		if err := os.WriteFile(filepath.Join(sub, strconv.Itoa(i)+".txt"), chunk[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		small -= n
	}
}

var words = strings.Fields(`func return if else for range var const type struct interface
	map chan go defer select case default package import nil err error string int byte
	context ctx fmt Errorf Println os File Open Close Read Write buf len cap make append
	{ } ( ) := = == != && || + - * / ; , . "archive" "cache" "task" 0 1 2 42 1024 true false`)

// fillText fills b with random words and line breaks.
func fillText(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); {
		w := words[rng.IntN(len(words))]
		i += copy(b[i:], w)
		if i < len(b) {
			if rng.IntN(8) == 0 {
				b[i] = '\n'
			} else {
				b[i] = ' '
			}
			i++
		}
	}
}
