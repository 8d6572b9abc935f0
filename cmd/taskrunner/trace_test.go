package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// The commands below look at the builds of a script's state directory
// ($TASKRUNNER_STATE_DIRECTORY/builds).

// cmdBuildIDs sets BUILD to the id of the newest build, and BUILD_1 …
// BUILD_N to the ids of all builds, oldest first:
//
//	buildids
func cmdBuildIDs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: buildids")
	}
	ids := buildIDs(ts)
	for i, id := range ids {
		ts.Setenv("BUILD_"+strconv.Itoa(i+1), id)
	}
	if len(ids) > 0 {
		ts.Setenv("BUILD", ids[len(ids)-1])
	}
}

func buildIDs(ts *testscript.TestScript) []string {
	entries, err := os.ReadDir(filepath.Join(ts.Getenv("TASKRUNNER_STATE_DIRECTORY"), "builds"))
	if err != nil {
		ts.Fatalf("%v", err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	sort.Strings(ids)
	return ids
}

// How far an event may seem to stick out of the one around it, in µs. On
// one lane, times are whole microseconds of one process's monotonic clock;
// across lanes, processes agree through the wall clock.
const (
	laneSlack  = 2
	traceSlack = 1000
)

// traceEvent is an event of trace.json, every field checked.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Ph   string         `json:"ph"`
	TS   *int64         `json:"ts"`
	Dur  *int64         `json:"dur"`
	PID  *int           `json:"pid"`
	TID  *int           `json:"tid"`
	S    string         `json:"s"`
	Args map[string]any `json:"args"`
}

func (e traceEvent) end() int64 { return *e.TS + *e.Dur }

// cmdTraceCheck checks the trace of the newest build, strictly, and prints
// its job events, one a line, sorted by name then start:
//
//	NAME OUTCOME exit=N [cacheBytes=N] [reason=REASON]
//
// builds/<id>/trace.json must be {"traceEvents": [...]} and nothing else;
// every event has a name, ph, ts, pid and tid, and no field beyond the
// format's; a complete event (ph X) has dur ≥ 0; the build is named by one
// process_name event; every lane (tid) has a thread_name event naming its
// job, one begin of the job (an instant event at the job event's start), one
// job event, and phases that lie inside that job's span; the
// outcome is one taskrunner writes. The events of a lane nest properly, as
// the viewer needs them to. Every line of trace.events is an event, and
// trace.json holds them all. With -nested CHILD:PARENT, the job CHILD is on
// another lane than PARENT and its span lies inside PARENT's. With -phases
// JOB, the phases of JOB follow its line, in the order they started, each
// after the phases it lies in: "  run/hash inputs".
//
//	tracecheck [-nested CHILD:PARENT]... [-phases JOB]...
func cmdTraceCheck(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: tracecheck [-nested CHILD:PARENT]... [-phases JOB]..."
	if neg {
		ts.Fatalf(usage)
	}
	var nested [][2]string
	showPhases := map[string]bool{}
	for ; len(args) > 0; args = args[2:] {
		switch {
		case len(args) < 2:
			ts.Fatalf(usage)
		case args[0] == "-nested" && strings.Contains(args[1], ":"):
			child, parent, _ := strings.Cut(args[1], ":")
			nested = append(nested, [2]string{child, parent})
		case args[0] == "-phases":
			showPhases[args[1]] = true
		default:
			ts.Fatalf(usage)
		}
	}
	ids := buildIDs(ts)
	if len(ids) == 0 {
		ts.Fatalf("tracecheck: no build")
	}
	dir := filepath.Join(ts.Getenv("TASKRUNNER_STATE_DIRECTORY"), "builds", ids[len(ids)-1])

	events := readTraceJSON(ts, filepath.Join(dir, "trace.json"))
	recorded := readTraceEvents(ts, filepath.Join(dir, "trace.events"))
	if len(events) != recorded+1 {
		ts.Fatalf("tracecheck: trace.json has %d events, want the process name and the %d of trace.events", len(events), recorded)
	}

	processNames := 0
	lanes := map[int]string{}        // tid → thread name
	jobs := map[int]traceEvent{}     // tid → job event
	begins := map[int]traceEvent{}   // tid → the job's begin
	phases := map[int][]traceEvent{} // tid → phase events
	for i, e := range events {
		where := fmt.Sprintf("tracecheck: event %d (%s)", i, e.Name)
		if e.Name == "" || e.TS == nil || e.PID == nil || e.TID == nil || *e.TS < 0 {
			ts.Fatalf("%s: needs a name, ts ≥ 0, pid and tid", where)
		}
		switch e.Ph {
		case "M":
			if e.Cat != "__metadata" || e.Dur != nil {
				ts.Fatalf("%s: metadata with cat %q, dur %v", where, e.Cat, e.Dur)
			}
			name, ok := e.Args["name"].(string)
			if !ok || name == "" || len(e.Args) != 1 {
				ts.Fatalf("%s: metadata args %v, want a name alone", where, e.Args)
			}
			switch e.Name {
			case "process_name":
				processNames++
			case "thread_name":
				if _, dup := lanes[*e.TID]; dup {
					ts.Fatalf("%s: lane %d named twice", where, *e.TID)
				}
				lanes[*e.TID] = name
			default:
				ts.Fatalf("%s: unknown metadata event", where)
			}
		case "X":
			if e.Dur == nil || *e.Dur < 0 {
				ts.Fatalf("%s: complete event without dur ≥ 0", where)
			}
			switch e.Cat {
			case "job":
				if _, dup := jobs[*e.TID]; dup {
					ts.Fatalf("%s: a second job event on lane %d", where, *e.TID)
				}
				jobs[*e.TID] = e
			case "phase":
				if len(e.Args) != 0 {
					ts.Fatalf("%s: phase with args %v", where, e.Args)
				}
				phases[*e.TID] = append(phases[*e.TID], e)
			default:
				ts.Fatalf("%s: unknown category %q", where, e.Cat)
			}
		case "i":
			if e.Cat != "job" || e.S != "t" || e.Dur != nil || len(e.Args) != 0 {
				ts.Fatalf("%s: instant event with cat %q, scope %q, dur %v, args %v; want a job's begin", where, e.Cat, e.S, e.Dur, e.Args)
			}
			if _, dup := begins[*e.TID]; dup {
				ts.Fatalf("%s: a second begin on lane %d", where, *e.TID)
			}
			begins[*e.TID] = e
		default:
			ts.Fatalf("%s: unexpected ph %q", where, e.Ph)
		}
	}
	if processNames != 1 || events[0].Name != "process_name" {
		ts.Fatalf("tracecheck: %d process_name events, want one, first", processNames)
	}
	phasePaths := map[int][]string{} // tid → phases, as paths
	for tid, ps := range phases {
		job, ok := jobs[tid]
		if !ok {
			ts.Fatalf("tracecheck: lane %d (%s) has phases but no job event", tid, lanes[tid])
		}
		phasePaths[tid] = nestPhases(ts, job, ps)
	}

	var lines []string
	byName := map[string][]traceEvent{}
	if len(begins) != len(jobs) {
		ts.Fatalf("tracecheck: %d begins of jobs, %d job events", len(begins), len(jobs))
	}
	for tid, job := range jobs {
		if lanes[tid] != job.Name {
			ts.Fatalf("tracecheck: job %s on lane %d named %q", job.Name, tid, lanes[tid])
		}
		if b, ok := begins[tid]; !ok || b.Name != job.Name || *b.TS != *job.TS {
			ts.Fatalf("tracecheck: job %s on lane %d begins with %+v, want its name at its start", job.Name, tid, b)
		}
		line := checkJobArgs(ts, job)
		if showPhases[job.Name] {
			for _, p := range phasePaths[tid] {
				line += "\n  " + p
			}
		}
		lines = append(lines, line)
		byName[job.Name] = append(byName[job.Name], job)
	}
	for _, n := range nested {
		if len(byName[n[0]]) != 1 || len(byName[n[1]]) != 1 {
			ts.Fatalf("tracecheck: -nested %s:%s: each must name exactly one job event", n[0], n[1])
		}
		child, parent := byName[n[0]][0], byName[n[1]][0]
		if *child.TID == *parent.TID {
			ts.Fatalf("tracecheck: %s and %s share lane %d", n[0], n[1], *child.TID)
		}
		if *child.TS < *parent.TS-traceSlack || child.end() > parent.end()+traceSlack {
			ts.Fatalf("tracecheck: %s [%d, %d] is not inside %s [%d, %d]",
				n[0], *child.TS, child.end(), n[1], *parent.TS, parent.end())
		}
	}
	sort.Strings(lines)
	for _, line := range lines {
		fmt.Fprintln(ts.Stdout(), line)
	}
}

// nestPhases checks that the phases of a job lie inside it and nest
// properly (two phases are disjoint or one holds the other), and returns
// them in the order they started, each as the path of the phases it lies
// in and its name.
func nestPhases(ts *testscript.TestScript, job traceEvent, phases []traceEvent) []string {
	sort.SliceStable(phases, func(i, j int) bool {
		if *phases[i].TS != *phases[j].TS {
			return *phases[i].TS < *phases[j].TS
		}
		return phases[i].end() > phases[j].end()
	})
	inside := func(in, out traceEvent) bool {
		return *in.TS >= *out.TS-laneSlack && in.end() <= out.end()+laneSlack
	}
	var paths []string
	stack := []traceEvent{job}
	names := []string{}
	for _, p := range phases {
		for len(stack) > 1 && !inside(p, stack[len(stack)-1]) {
			top := stack[len(stack)-1]
			if *p.TS < top.end()-laneSlack {
				ts.Fatalf("tracecheck: job %s: phases %s [%d, %d] and %s [%d, %d] overlap",
					job.Name, top.Name, *top.TS, top.end(), p.Name, *p.TS, p.end())
			}
			stack, names = stack[:len(stack)-1], names[:len(names)-1]
		}
		if !inside(p, stack[len(stack)-1]) {
			ts.Fatalf("tracecheck: phase %s [%d, %d] sticks out of its job %s [%d, %d]",
				p.Name, *p.TS, p.end(), job.Name, *job.TS, job.end())
		}
		stack, names = append(stack, p), append(names, p.Name)
		paths = append(paths, strings.Join(names, "/"))
	}
	return paths
}

// checkJobArgs checks the args of a job event and returns its line.
func checkJobArgs(ts *testscript.TestScript, job traceEvent) string {
	outcome, _ := job.Args["outcome"].(string)
	if !slices.Contains([]string{"ran", "skipped", "restored", "fuzzy", "failed", "already-done"}, outcome) {
		ts.Fatalf("tracecheck: job %s has outcome %v", job.Name, job.Args["outcome"])
	}
	exit, ok := job.Args["exit"].(float64)
	if !ok || exit != float64(int(exit)) || exit < 0 {
		ts.Fatalf("tracecheck: job %s has exit %v", job.Name, job.Args["exit"])
	}
	line := fmt.Sprintf("%s %s exit=%d", job.Name, outcome, int(exit))
	for k, v := range job.Args {
		switch k {
		case "outcome", "exit":
		case "cacheBytes":
			n, ok := v.(float64)
			if !ok || n < 0 {
				ts.Fatalf("tracecheck: job %s has cacheBytes %v", job.Name, v)
			}
			line += fmt.Sprintf(" cacheBytes=%d", int64(n))
		case "reason":
			s, ok := v.(string)
			if !ok || s == "" {
				ts.Fatalf("tracecheck: job %s has reason %v", job.Name, v)
			}
		default:
			ts.Fatalf("tracecheck: job %s has an unknown arg %s", job.Name, k)
		}
	}
	if r, ok := job.Args["reason"].(string); ok {
		line += " reason=" + r
	}
	return line
}

// readTraceJSON reads trace.json: an object holding traceEvents alone.
func readTraceJSON(ts *testscript.TestScript, path string) []traceEvent {
	b, err := os.ReadFile(path)
	if err != nil {
		ts.Fatalf("tracecheck: %v", err)
	}
	var doc struct {
		TraceEvents []json.RawMessage `json:"traceEvents"`
	}
	if err := decodeStrict(b, &doc); err != nil || doc.TraceEvents == nil {
		ts.Fatalf("tracecheck: trace.json is not {\"traceEvents\": [...]}: %v", err)
	}
	events := make([]traceEvent, len(doc.TraceEvents))
	for i, raw := range doc.TraceEvents {
		if err := decodeStrict(raw, &events[i]); err != nil {
			ts.Fatalf("tracecheck: event %d: %v: %s", i, err, raw)
		}
	}
	return events
}

// readTraceEvents checks that every line of trace.events is one event, and
// returns their number.
func readTraceEvents(ts *testscript.TestScript, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		ts.Fatalf("tracecheck: %v", err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		ts.Fatalf("tracecheck: trace.events does not end with a whole line")
	}
	lines := bytes.Split(b[:len(b)-1], []byte("\n"))
	for i, line := range lines {
		var e traceEvent
		if err := decodeStrict(line, &e); err != nil {
			ts.Fatalf("tracecheck: trace.events line %d: %v: %q", i+1, err, line)
		}
	}
	return len(lines)
}

// decodeStrict decodes one JSON value that has no field beyond v's.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("more after the value")
	}
	return nil
}

// cmdJSONLines prints a JSON file one value a line, as PATH: VALUE, in the
// order of the file, so that a script can compare it with cmp. A number
// under a key ending in "Seconds" must be ≥ 0 and prints as <seconds> (or
// 0 when it is 0): times vary from run to run.
//
//	jsonlines FILE
func cmdJSONLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jsonlines FILE")
	}
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(args[0])))
	dec.UseNumber()
	var out strings.Builder
	if err := jsonLines(dec, "", &out); err != nil {
		ts.Fatalf("jsonlines: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		ts.Fatalf("jsonlines: more than one value in %s", args[0])
	}
	fmt.Fprint(ts.Stdout(), out.String())
}

func jsonLines(dec *json.Decoder, path string, out *strings.Builder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			n := 0
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return err
				}
				if err := jsonLines(dec, path+"."+key.(string), out); err != nil {
					return err
				}
				n++
			}
			if n == 0 {
				fmt.Fprintf(out, "%s: {}\n", path)
			}
		case '[':
			n := 0
			for ; dec.More(); n++ {
				if err := jsonLines(dec, fmt.Sprintf("%s[%d]", path, n), out); err != nil {
					return err
				}
			}
			if n == 0 {
				fmt.Fprintf(out, "%s: []\n", path)
			}
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case json.Number:
		if strings.HasSuffix(path, "Seconds") {
			f, err := tok.Float64()
			if err != nil || f < 0 {
				return fmt.Errorf("%s: %s is not a number of seconds", path, tok)
			}
			if f > 0 {
				fmt.Fprintf(out, "%s: <seconds>\n", path)
				return nil
			}
		}
		fmt.Fprintf(out, "%s: %s\n", path, tok)
	case string:
		b, _ := json.Marshal(tok)
		fmt.Fprintf(out, "%s: %s\n", path, b)
	case nil:
		fmt.Fprintf(out, "%s: null\n", path)
	default:
		fmt.Fprintf(out, "%s: %v\n", path, tok) // true or false
	}
	return nil
}
