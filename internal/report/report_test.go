package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taskrunner/taskrunner/internal/state"
	"github.com/taskrunner/taskrunner/internal/trace"
)

// job is a job event of a hand-made trace: times in ms since the build
// started.
type job struct {
	name, outcome string
	start, dur    int64
	exit          int
	args          map[string]any
}

// writeBuild makes build id in st with the job events given, in the order
// given, each after a phase event and its lane's metadata, as taskrunner
// writes them.
func writeBuild(t *testing.T, st state.Dir, id string, jobs ...job) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(st.Build(id), "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i, j := range jobs {
		tid := 100 + i
		args := map[string]any{"outcome": j.outcome, "exit": j.exit}
		for k, v := range j.args {
			args[k] = v
		}
		dur, phaseDur := j.dur*1000, int64(1)
		for _, e := range []trace.Event{
			{Name: "thread_name", Cat: trace.CatMeta, Ph: "M", PID: 1, TID: tid, Args: map[string]any{"name": j.name}},
			{Name: "lock wait", Cat: trace.CatPhase, Ph: "X", TS: j.start * 1000, Dur: &phaseDur, PID: 1, TID: tid},
			{Name: j.name, Cat: trace.CatJob, Ph: "X", TS: j.start * 1000, Dur: &dur, PID: 1, TID: tid, Args: args},
		} {
			if err := enc.Encode(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(st.Build(id), trace.EventsFile), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	build1 = "2026-11-29T16:40:00.000000Z"
	build2 = "2026-11-29T16:50:00.000000Z"
	build3 = "2026-11-29T17:00:00.000000Z"
	build4 = "2026-11-29T17:10:00.000000Z"
)

func TestSummarize(t *testing.T) {
	st := state.Dir{Root: t.TempDir()}
	writeBuild(t, st, build1,
		job{name: "build", outcome: "ran", start: 0, dur: 5000},
		job{name: "lint", outcome: "ran", start: 0, dur: 2000},
		job{name: "docs", outcome: "failed", start: 0, dur: 9000, exit: 1})
	writeBuild(t, st, build2,
		job{name: "build", outcome: "fuzzy", start: 0, dur: 3000},
		job{name: "lint", outcome: "skipped", start: 0, dur: 10})
	// A newer build does not count for build3.
	writeBuild(t, st, build4, job{name: "build", outcome: "ran", start: 0, dur: 100})

	// Written in the order the jobs ended: nested ones first.
	writeBuild(t, st, build3,
		job{name: "lint", outcome: "skipped", start: 20, dur: 10},
		job{name: "build", outcome: "restored", start: 10, dur: 500, args: map[string]any{"cacheBytes": 2048}},
		job{name: "docs", outcome: "skipped", start: 40, dur: 30},
		job{name: "test", outcome: "failed", start: 50, dur: 700, exit: 2, args: map[string]any{"reason": "modified a.txt"}},
		job{name: "fmt", outcome: "ran", start: 60, dur: 100, args: map[string]any{"reason": "no saved hash"}},
		job{name: "gen", outcome: "fuzzy", start: 70, dur: 100, args: map[string]any{"reason": "modified b.txt; main-branch commit changed (fuzzy)"}},
		job{name: "fmt", outcome: "already-done", start: 80, dur: 1},
		job{name: "top", outcome: "ran", start: 0, dur: 900, args: map[string]any{"reason": "forced"}})

	s, err := Summarize(st, build3)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, j := range s.Jobs {
		order = append(order, j.Name+":"+j.Outcome)
	}
	if got, want := strings.Join(order, " "), "top:ran build:restored lint:skipped docs:skipped test:failed fmt:ran gen:fuzzy fmt:already-done"; got != want {
		t.Errorf("jobs in start order:\n got %s\nwant %s", got, want)
	}
	byName := map[string]Job{}
	for _, j := range s.Jobs {
		if _, ok := byName[j.Name]; !ok {
			byName[j.Name] = j
		}
	}
	// build: its last real run before build3 took 3 s (the fuzzy one of
	// build2, not the ran of build1 nor of the newer build4); lint: 2 s in
	// build1, its skip in build2 does not count; docs never ran well, but
	// a failed run is no real run.
	if j := byName["build"]; j.Saved == nil || *j.Saved != 2.5 || j.CacheBytes == nil || *j.CacheBytes != 2048 || j.Duration != 0.5 || j.Start != 0.01 {
		t.Errorf("build = %+v, want 2.5 s saved, 2048 cache bytes, 0.5 s long from 0.01 s", j)
	}
	if j := byName["lint"]; j.Saved == nil || *j.Saved != 1.99 || j.CacheBytes != nil {
		t.Errorf("lint = %+v, want 1.99 s saved, no cache bytes", j)
	}
	if j := byName["docs"]; j.Saved != nil {
		t.Errorf("docs = %+v, want no saved time: it never ran successfully", j)
	}
	if j := byName["test"]; j.Exit == nil || *j.Exit != 2 || j.Reason != "modified a.txt" || j.Saved != nil {
		t.Errorf("test = %+v, want exit 2, reason modified a.txt", j)
	}
	want := Totals{Jobs: 8, Run: 3, Skipped: 2, Restored: 1, Failed: 1, AlreadyDone: 1, Saved: 4.49}
	if s.Totals != want {
		t.Errorf("totals = %+v, want %+v", s.Totals, want)
	}
	if s.Build != build3 {
		t.Errorf("build = %s, want %s", s.Build, build3)
	}
}

func TestSummarizeNoSuchBuild(t *testing.T) {
	st := state.Dir{Root: t.TempDir()}
	writeBuild(t, st, build1, job{name: "a", outcome: "ran"})
	for _, id := range []string{build2, "", ".", "..", "../builds", build1 + "/logs"} {
		if _, err := Summarize(st, id); !errors.Is(err, ErrNoBuild) {
			t.Errorf("Summarize(%q) = %v, want ErrNoBuild", id, err)
		}
	}
}

// A build whose processes have written no event yet has no jobs.
func TestSummarizeEmptyBuild(t *testing.T) {
	st := state.Dir{Root: t.TempDir()}
	if err := os.MkdirAll(st.Build(build1), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Summarize(st, build1)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := s.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"jobs": []`) {
		t.Errorf("JSON of a build with no jobs:\n%s\nwant \"jobs\": []", b.String())
	}
}

func TestLatest(t *testing.T) {
	st := state.Dir{Root: t.TempDir()}
	if _, err := Latest(st); err == nil {
		t.Error("Latest with no builds: no error")
	}
	writeBuild(t, st, build2)
	writeBuild(t, st, build1)
	if id, err := Latest(st); err != nil || id != build2 {
		t.Errorf("Latest = %q, %v; want %s", id, err, build2)
	}
}

func TestWriteText(t *testing.T) {
	saved, cache := 61.5, int64(3<<20)
	s := &Summary{
		Build: build1,
		Jobs: []Job{
			{Name: "top", Outcome: "ran", Duration: 75, Exit: exit(0), Reason: "no saved hash"},
			{Name: "build", Outcome: "restored", Duration: 1.25, Exit: exit(0), CacheBytes: &cache, Saved: &saved},
			{Name: "lint", Outcome: "failed", Duration: 0.012, Exit: exit(3), Reason: "modified a.txt, b.txt"},
			{Name: "docs", Outcome: "killed", Duration: 2.5},
		},
		Totals: Totals{Jobs: 4, Run: 1, Restored: 1, Failed: 1, Killed: 1, Saved: 61.5},
	}
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `build 2026-11-29T16:40:00.000000Z
JOB    OUTCOME            TIME  EXIT       CACHE  WHY IT RAN
top    ran               1m15s     0           -  no saved hash
build  restored           1.2s     0     3.0 MiB  -
lint   failed             12ms     3           -  modified a.txt, b.txt
docs   killed             2.5s     -           -  -
4 jobs: 1 run, 0 skipped, 1 restored, 1 failed, 1 killed; 1m2s saved by skips and restores
`
	if b.String() != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", b.String(), want)
	}

	one := &Summary{Build: build1, Jobs: []Job{{Name: "t", Outcome: "skipped", Exit: exit(0)}}, Totals: Totals{Jobs: 1, Skipped: 1}}
	b.Reset()
	if err := one.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), "\n1 job: 0 run, 1 skipped, 0 restored, 0 failed\n") {
		t.Errorf("summary of one job:\n%s\nwant its totals to read 1 job: 0 run, 1 skipped, 0 restored, 0 failed", b.String())
	}
}

func exit(n int) *int { return &n }

// TestSummarizeKilled: a job that began and never ended is killed once no
// process runs in its build any more; while one does, it is not listed.
func TestSummarizeKilled(t *testing.T) {
	st := state.Dir{Root: t.TempDir()}
	writeBuild(t, st, build1, job{name: "ci", outcome: "ran", start: 0, dur: 900})
	// ci's lane began ci, then a nested build began and was killed after a
	// phase that ended at 700 ms; a second "build" on another lane ended.
	dur := int64(200_000)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range []trace.Event{
		{Name: "ci", Cat: trace.CatJob, Ph: "i", Scope: "t", TS: 0, PID: 1, TID: 100},
		{Name: "build", Cat: trace.CatJob, Ph: "i", Scope: "t", TS: 300_000, PID: 1, TID: 200},
		{Name: "run", Cat: trace.CatPhase, Ph: "X", TS: 500_000, Dur: &dur, PID: 1, TID: 200},
		{Name: "build", Cat: trace.CatJob, Ph: "i", Scope: "t", TS: 800_000, PID: 1, TID: 300},
		{Name: "build", Cat: trace.CatJob, Ph: "X", TS: 800_000, Dur: &dur, PID: 1, TID: 300, Args: map[string]any{"outcome": "ran", "exit": 0}},
	} {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(st.Build(build1), trace.EventsFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	f.Close()

	release, err := st.MarkRunning(build1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Summarize(st, build1)
	release()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Jobs) != 2 || s.Totals.Killed != 0 {
		t.Errorf("while the build runs: %+v, want ci and build, none killed", s.Jobs)
	}

	s, err = Summarize(st, build1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range s.Jobs {
		names = append(names, j.Name+" "+j.Outcome)
	}
	if got, want := strings.Join(names, ", "), "ci ran, build killed, build ran"; got != want {
		t.Errorf("jobs %s, want %s", got, want)
	}
	if k := s.Jobs[1]; k.Exit != nil || k.Start != 0.3 || k.Duration != 0.4 || k.CacheBytes != nil {
		t.Errorf("killed job = %+v, want no exit status, from 0.3 s for 0.4 s", k)
	}
	if want := (Totals{Jobs: 3, Run: 2, Killed: 1}); s.Totals != want {
		t.Errorf("totals = %+v, want %+v", s.Totals, want)
	}
	b.Reset()
	if err := s.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"outcome": "killed",
      "startSeconds": 0.3,
      "durationSeconds": 0.4,
      "exitStatus": null,`) || !strings.Contains(b.String(), `"killed": 1,`) {
		t.Errorf("JSON:\n%s\nwant the killed job with exitStatus null, and 1 killed in the totals", b.String())
	}
}
