package trace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestRecorderFinishRead(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(-time.Second)
	r, err := Open(dir, start)
	if err != nil {
		t.Fatal(err)
	}
	if ts := r.micros(r.Start()); ts != 0 {
		t.Errorf("the build's start is at %d µs in the trace, want 0", ts)
	}
	r.Lane("build")
	r.Phase("lock wait")()
	r.Complete("build", CatJob, start.Add(10*time.Millisecond), start.Add(30*time.Millisecond), map[string]any{"outcome": "ran", "exit": 0})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	events, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("Read: %d events, want 3: %+v", len(events), events)
	}
	lane, phase, job := events[0], events[1], events[2]
	if lane.Ph != "M" || lane.Name != "thread_name" || lane.Args["name"] != "build" || lane.TID != os.Getpid() {
		t.Errorf("lane event = %+v, want thread_name build on this process's lane", lane)
	}
	if phase.Ph != "X" || phase.Cat != CatPhase || phase.Name != "lock wait" || phase.Dur == nil || *phase.Dur < 0 ||
		phase.TS < int64(time.Second/time.Microsecond) {
		t.Errorf("phase event = %+v, want a complete lock wait phase about a second into the build", phase)
	}
	if job.Ph != "X" || job.Cat != CatJob || job.TS != 10000 || job.Dur == nil || *job.Dur != 20000 ||
		job.Args["outcome"] != "ran" || job.Args["exit"] != float64(0) {
		t.Errorf("job event = %+v, want ts 10000 µs, dur 20000 µs, outcome ran, exit 0", job)
	}
	for _, e := range events {
		if e.PID != buildPID || e.TID != os.Getpid() {
			t.Errorf("event %s on pid %d tid %d, want pid %d tid %d", e.Name, e.PID, e.TID, buildPID, os.Getpid())
		}
	}

	if err := Finish(dir, "B1"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, TraceFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents []Event `json:"traceEvents"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("trace.json is not JSON: %v\n%s", err, b)
	}
	if len(doc.TraceEvents) != 4 {
		t.Fatalf("trace.json has %d events, want the process name and 3: %s", len(doc.TraceEvents), b)
	}
	if e := doc.TraceEvents[0]; e.Ph != "M" || e.Name != "process_name" || e.Args["name"] != "taskrunner build B1" {
		t.Errorf("first event = %+v, want the process_name metadata of build B1", e)
	}
	got, _ := json.Marshal(doc.TraceEvents[1:])
	want, _ := json.Marshal(events)
	if string(got) != string(want) {
		t.Errorf("trace.json events\n%s\nwant those of trace.events\n%s", got, want)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".*")); len(matches) > 0 {
		t.Errorf("Finish left temporary files: %v", matches)
	}
}

func TestFinishWithoutEvents(t *testing.T) {
	dir := t.TempDir()
	if err := Finish(dir, "B"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, TraceFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || len(doc["traceEvents"]) != 1 {
		t.Errorf("trace.json = %s (%v), want a traceEvents array holding the process name", b, err)
	}
	if events, err := Read(dir); err != nil || len(events) != 0 {
		t.Errorf("Read of a build with no events = %v, %v; want none, no error", events, err)
	}
}

// A process killed in the middle of a write leaves a line cut short: the
// events before it still count.
func TestReadSkipsTornLastLine(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.Lane("a")
	r.Phase("run")()
	r.Close()
	f, err := os.OpenFile(filepath.Join(dir, EventsFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"name":"a","cat":"job","ph":"X","ts":12,"du`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	events, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Name != "thread_name" || events[1].Name != "run" {
		t.Errorf("Read = %+v, want the lane and the run phase", events)
	}
	if err := Finish(dir, "B"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, TraceFile))
	if !json.Valid(b) {
		t.Errorf("trace.json is not JSON:\n%s", b)
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Lane("x")
	r.Phase("y")()
	r.Complete("z", CatJob, time.Now(), time.Now(), nil)
	if !r.Start().IsZero() {
		t.Errorf("Start of a nil recorder = %v, want the zero time", r.Start())
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close of a nil recorder: %v", err)
	}
}

// Recorders that share a build, each with its own file as separate
// processes have, write many events at once: none is lost or torn.
func TestConcurrentRecorders(t *testing.T) {
	dir := t.TempDir()
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := Open(dir, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			for i := range each {
				r.Complete(fmt.Sprintf("w%d-%d", w, i), CatPhase, time.Now(), time.Now(), map[string]any{"pad": string(make([]byte, 200))})
			}
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(filepath.Join(dir, EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		lines++
		if !json.Valid(line) {
			t.Fatalf("torn line: %q", line)
		}
	}
	events, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Name] = true
	}
	if lines != writers*each || len(seen) != writers*each {
		t.Errorf("%d lines, %d distinct events; want %d", lines, len(seen), writers*each)
	}
}

// TestBegin: a job's begin is an instant event on its lane at the job's
// start, which the viewer shows as a mark.
func TestBegin(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(-time.Second)
	r, err := Open(dir, start)
	if err != nil {
		t.Fatal(err)
	}
	r.Begin("build", start.Add(5*time.Millisecond))
	r.Close()
	b, err := os.ReadFile(filepath.Join(dir, EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"name":"build","cat":"job","ph":"i","ts":5000,"pid":1,"tid":%d,"s":"t"}`+"\n", os.Getpid())
	if string(b) != want {
		t.Errorf("trace.events holds\n%s\nwant\n%s", b, want)
	}
}
