package cache

import (
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// transfer measures one transfer: a debug line at the end with bytes,
// seconds and MB/s, and an info line every few seconds while it lasts.
type transfer struct {
	r     *Remote
	verb  string // "Downloading" or "Uploading"
	key   string
	start time.Time
	bytes atomic.Int64
	stop  chan struct{}
	ended chan struct{}
}

func (r *Remote) track(verb, key string) *transfer {
	limitHeap.Do(setHeapLimit)
	t := &transfer{r: r, verb: verb, key: key, start: time.Now(), stop: make(chan struct{}), ended: make(chan struct{})}
	go t.progress()
	return t
}

// transferHeapLimit is the soft memory limit of a process that moves
// archives. An upload keeps about 60 MiB live (the archive writer's frames
// and the upload's parts) and makes garbage at the speed of the transfer;
// by default the GC lets the heap grow to twice the live size before it
// collects, and the process's peak memory passes 100 MiB. Under the limit
// the GC collects sooner, for a little more CPU; scripts/bench measures it.
const transferHeapLimit = 80 << 20

var limitHeap sync.Once

// setHeapLimit sets transferHeapLimit, unless GOMEMLIMIT already set a limit.
func setHeapLimit() {
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(transferHeapLimit)
	}
}

func (t *transfer) progress() {
	defer close(t.ended)
	tick := time.NewTicker(t.r.progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.r.report.Info(fmt.Sprintf("%s %s: %s so far", t.verb, t.key, t.rate()))
		}
	}
}

// rate describes the bytes moved so far and their speed.
func (t *transfer) rate() string {
	n := t.bytes.Load()
	secs := time.Since(t.start).Seconds()
	mbps := 0.0
	if secs > 0 {
		mbps = float64(n) / 1e6 / secs
	}
	return fmt.Sprintf("%d bytes in %.2f s (%.1f MB/s)", n, secs, mbps)
}

// done ends the transfer; ok says whether it succeeded.
func (t *transfer) done(ok bool) {
	close(t.stop)
	<-t.ended
	t.r.moved.Add(t.bytes.Load())
	if !ok {
		noun := map[string]string{"Downloading": "Download", "Uploading": "Upload"}[t.verb]
		t.r.report.Debug(fmt.Sprintf("%s of %s failed: %s", noun, t.key, t.rate()))
		return
	}
	past := map[string]string{"Downloading": "Downloaded", "Uploading": "Uploaded"}[t.verb]
	t.r.report.Debug(fmt.Sprintf("%s %s: %s", past, t.key, t.rate()))
}

func (t *transfer) reader(r io.Reader) io.Reader { return countingReader{r, &t.bytes} }
func (t *transfer) writer(w io.Writer) io.Writer { return countingWriter{w, &t.bytes} }

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
