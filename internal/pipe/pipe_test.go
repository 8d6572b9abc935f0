package pipe

import (
	"io"
	"os"
	"testing"
	"time"
)

// TestReadsToEndOfFile reads everything when the writers close the pipe.
func TestReadsToEndOfFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr := NewReader(r)
	defer pr.Close()
	go func() { w.WriteString("hello\nworld\n"); w.Close() }()
	b, err := io.ReadAll(pr)
	if err != nil || string(b) != "hello\nworld\n" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if !pr.Closed() {
		t.Error("Closed() = false after end of file")
	}
}

// TestStopPassesOnWhatThePipeHolds stops a reader whose writer stays open:
// what was written before is still read, then the reader ends without
// waiting, and Closed says the pipe was not closed.
func TestStopPassesOnWhatThePipeHolds(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close() // held open, as by a background process
	pr := NewReader(r)
	defer pr.Close()

	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(pr)
		got <- b
	}()
	if _, err := w.WriteString("first\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the reader block in Read
	if _, err := w.WriteString("second\n"); err != nil {
		t.Fatal(err)
	}
	pr.Stop()
	select {
	case b := <-got:
		if string(b) != "first\nsecond\n" {
			t.Errorf("read %q, want both lines", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the reader while the writer was open")
	}
	if pr.Closed() {
		t.Error("Closed() = true although the writer is open")
	}
}

// TestStopBeforeRead drains data written before the first Read.
func TestStopBeforeRead(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pr := NewReader(r)
	defer pr.Close()
	if _, err := w.WriteString("early\n"); err != nil {
		t.Fatal(err)
	}
	pr.Stop()
	b, _ := io.ReadAll(pr)
	if string(b) != "early\n" {
		t.Errorf("read %q, want %q", b, "early\n")
	}
}
