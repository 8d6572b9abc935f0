// Package trace records a build as a Chrome trace (the trace-event format
// that Perfetto and chrome://tracing open as is): one complete event per
// job run, on a lane per taskrunner process, with events for the phases
// inside it.
//
// Every process of a build appends its events to builds/<id>/trace.events,
// one JSON object a line, each written with a single write(2) to a file
// opened with O_APPEND, so concurrent processes neither lose nor tear
// events. When the toplevel ends it turns that file into
// builds/<id>/trace.json: {"traceEvents": [...]}.
package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/taskrunner/taskrunner/internal/state"
)

// File names in a build's folder.
const (
	EventsFile = "trace.events"
	TraceFile  = "trace.json"
)

// Event is one trace event of the Chrome trace-event format. Times are in
// microseconds since the build started.
type Event struct {
	Name string `json:"name"`
	Cat  string `json:"cat,omitempty"`
	Ph   string `json:"ph"`
	TS   int64  `json:"ts"`
	Dur  *int64 `json:"dur,omitempty"`
	PID  int    `json:"pid"`
	TID  int    `json:"tid"`
	// Scope is an instant event's scope: "t", its lane.
	Scope string         `json:"s,omitempty"`
	Args  map[string]any `json:"args,omitempty"`
}

// Categories of the events taskrunner writes.
const (
	CatJob   = "job"   // one per job run: the whole life of a taskrunner process
	CatPhase = "phase" // a phase inside a job: lock wait, hashing, run, ...
	CatMeta  = "__metadata"
)

// buildPID is the trace's process id: the whole build is one "process" in
// the viewer, and each taskrunner process is one of its threads (lanes).
const buildPID = 1

// Recorder appends one process's events to a build's trace. A nil
// *Recorder records nothing, so callers need not check.
type Recorder struct {
	mu sync.Mutex
	f  *os.File
	// opened is when the recorder was opened, offset how long after the
	// build's start that was. Times count from opened on the monotonic
	// clock, so that the events of one process line up to the microsecond
	// even if the wall clock moves while it runs.
	opened time.Time
	offset time.Duration
	tid    int
}

// Open returns a recorder for the build in buildDir, which started at
// start. A trace that cannot be opened is no reason to fail a job: the
// caller gets the error and may go on with a nil recorder.
func Open(buildDir string, start time.Time) (*Recorder, error) {
	f, err := os.OpenFile(filepath.Join(buildDir, EventsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the build trace: %w", err)
	}
	now := time.Now()
	return &Recorder{f: f, opened: now, offset: now.Sub(start), tid: os.Getpid()}, nil
}

// Close closes the recorder's file.
func (r *Recorder) Close() error {
	if r == nil {
		return nil
	}
	return r.f.Close()
}

// Start returns when the build started, on the clock of this recorder:
// an event that starts then is at 0 in the trace.
func (r *Recorder) Start() time.Time {
	if r == nil {
		return time.Time{}
	}
	return r.opened.Add(-r.offset)
}

// micros is the time of t in the trace: microseconds since the build started.
func (r *Recorder) micros(t time.Time) int64 {
	return max(0, (r.offset + t.Sub(r.opened)).Microseconds())
}

// Lane names this process's lane in the viewer.
func (r *Recorder) Lane(name string) {
	if r == nil {
		return
	}
	r.write(Event{Name: "thread_name", Ph: "M", Cat: CatMeta, PID: buildPID, TID: r.tid, Args: map[string]any{"name": name}})
}

// Complete records an event that lasted from start to end.
func (r *Recorder) Complete(name, cat string, start, end time.Time, args map[string]any) {
	if r == nil {
		return
	}
	dur := end.Sub(start).Microseconds()
	r.write(Event{Name: name, Cat: cat, Ph: "X", TS: r.micros(start), Dur: &dur, PID: buildPID, TID: r.tid, Args: args})
}

// Begin records that the job name, which started at start, got past its
// lock, as an instant event of category CatJob at start. Its complete event
// follows when it ends; a job whose process was killed has none, and the
// two together tell it.
func (r *Recorder) Begin(name string, start time.Time) {
	if r == nil {
		return
	}
	r.write(Event{Name: name, Cat: CatJob, Ph: "i", Scope: "t", TS: r.micros(start), PID: buildPID, TID: r.tid})
}

// Phase starts a phase of the job and returns the function that ends it.
func (r *Recorder) Phase(name string) func() {
	if r == nil {
		return func() {}
	}
	start := time.Now()
	return func() { r.Complete(name, CatPhase, start, time.Now(), nil) }
}

func (r *Recorder) write(e Event) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.f.Write(append(b, '\n')) // one write: O_APPEND keeps it whole
}

// Finish writes the build's trace.json from the events recorded so far,
// atomically, with the build named in the viewer.
func Finish(buildDir, buildID string) error {
	events, err := readEvents(filepath.Join(buildDir, EventsFile))
	if err != nil {
		return err
	}
	meta := Event{Name: "process_name", Ph: "M", Cat: CatMeta, PID: buildPID, Args: map[string]any{"name": "taskrunner build " + buildID}}
	var buf bytes.Buffer
	buf.WriteString(`{"traceEvents":[`)
	for i, e := range append([]Event{meta}, events...) {
		if i > 0 {
			buf.WriteString(",\n")
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	buf.WriteString("]}\n")
	return state.WriteAtomic(buildDir, filepath.Join(buildDir, TraceFile), buf.Bytes(), 0o644)
}

// Read returns the events of the build in buildDir, as recorded: from
// trace.events, which also holds events that a process still running
// wrote after the toplevel made trace.json.
func Read(buildDir string) ([]Event, error) {
	return readEvents(filepath.Join(buildDir, EventsFile))
}

// readEvents reads an events file. A last line cut short by a process
// killed while writing is left out.
func readEvents(path string) ([]Event, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			events = append(events, e)
		}
	}
	return events, sc.Err()
}
