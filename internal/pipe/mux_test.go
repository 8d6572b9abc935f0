package pipe

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// record is a writer that keeps, in one shared list, what each of its
// names was given, in the order of the calls.
type record struct {
	mu    *sync.Mutex
	calls *[]string
	name  string
}

func (r record) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.calls = append(*r.calls, r.name+":"+string(p))
	return len(p), nil
}

func pipes(t *testing.T, n int) (rs, ws []*os.File) {
	t.Helper()
	for range n {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		rs, ws = append(rs, r), append(ws, w)
	}
	return rs, ws
}

func waitDone(t *testing.T, s *Stream) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the stream's copy did not end")
	}
}

// TestMuxReadsInOrderAdded reads two pipes that both hold data in the order
// they were added, whichever was written first: the kernel cannot tell.
func TestMuxReadsInOrderAdded(t *testing.T) {
	for _, first := range []int{0, 1} {
		rs, ws := pipes(t, 2)
		var mu sync.Mutex
		var calls []string
		names := []string{"a", "b"}
		second := 1 - first
		var m Mux
		s1 := m.Add(rs[first], record{&mu, &calls, names[first]})
		s2 := m.Add(rs[second], record{&mu, &calls, names[second]})
		ws[1].WriteString("B")
		ws[0].WriteString("A")
		ws[0].Close()
		ws[1].Close()
		m.Start()
		waitDone(t, s1)
		waitDone(t, s2)
		want := []string{"a:A", "b:B"}
		if first == 1 {
			want = []string{"b:B", "a:A"}
		}
		if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
			t.Errorf("added %s first: writes %q, want %q", names[first], calls, want)
		}
		if !s1.Closed() || !s2.Closed() {
			t.Error("Closed() = false after end of file")
		}
	}
}

// TestMuxWriteOrder passes on a write to the first pipe and then one to the
// second in that order, however the goroutines are scheduled: a task's
// line on stdout and then one on stderr. (Two readers, one per pipe, get
// this wrong now and then.)
func TestMuxWriteOrder(t *testing.T) {
	for i := range 200 {
		rs, ws := pipes(t, 2)
		var mu sync.Mutex
		var calls []string
		var m Mux
		out := m.Add(rs[0], record{&mu, &calls, "out"})
		errs := m.Add(rs[1], record{&mu, &calls, "err"})
		m.Start()
		ws[0].WriteString("1")
		ws[1].WriteString("2")
		ws[0].Close()
		ws[1].Close()
		waitDone(t, out)
		waitDone(t, errs)
		if len(calls) != 2 || calls[0] != "out:1" || calls[1] != "err:2" {
			t.Fatalf("run %d: writes %q, want out then err", i, calls)
		}
	}
}

// TestMuxStopOne stops one pipe whose writer stays open: what it held is
// passed on and its copy ends without end of file, while the other pipe
// is still copied to its end.
func TestMuxStopOne(t *testing.T) {
	rs, ws := pipes(t, 2)
	var mu sync.Mutex
	var calls []string
	var m Mux
	held := m.Add(rs[0], record{&mu, &calls, "held"})
	other := m.Add(rs[1], record{&mu, &calls, "other"})
	m.Start()
	ws[0].WriteString("first\n")
	time.Sleep(20 * time.Millisecond) // let the Mux wait in poll
	ws[0].WriteString("second\n")
	held.Stop()
	waitDone(t, held)
	if held.Closed() || held.Err() != nil {
		t.Errorf("held pipe: Closed() = %v, Err() = %v; want false, nil", held.Closed(), held.Err())
	}
	ws[1].WriteString("later\n")
	ws[1].Close()
	waitDone(t, other)
	if !other.Closed() {
		t.Error("other pipe: Closed() = false after end of file")
	}
	mu.Lock()
	defer mu.Unlock()
	var got string
	for _, c := range calls {
		got += c
	}
	if got != "held:first\nheld:second\nother:later\n" && got != "held:first\nsecond\nother:later\n" {
		t.Errorf("writes %q", calls)
	}
}

// failing is a writer whose reader went away.
type failing struct{}

var errGone = errors.New("gone")

func (failing) Write(p []byte) (int, error) { return len(p), errGone }

// TestMuxWriterError closes a pipe whose writer fails, so that the task
// writing to it gets EPIPE (SIGPIPE), and reports the writer's error.
func TestMuxWriterError(t *testing.T) {
	rs, ws := pipes(t, 1)
	var m Mux
	s := m.Add(rs[0], failing{})
	m.Start()
	ws[0].WriteString("x\n")
	waitDone(t, s)
	if !errors.Is(s.Err(), errGone) {
		t.Errorf("Err() = %v, want %v", s.Err(), errGone)
	}
	if _, err := ws[0].WriteString("y\n"); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("write after the writer failed: %v, want EPIPE", err)
	}
}
