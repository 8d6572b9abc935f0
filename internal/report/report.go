// Package report summarises a build from its trace: one line per job, in
// the order the jobs started, with how each ended and why it ran, and the
// totals of the build.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/taskrunner/taskrunner/internal/state"
	"github.com/taskrunner/taskrunner/internal/trace"
)

// Job is one job run of a build.
type Job struct {
	Name     string  `json:"name"`
	Outcome  string  `json:"outcome"`
	Start    float64 `json:"startSeconds"` // since the build started
	Duration float64 `json:"durationSeconds"`
	// Exit is the job's exit status; nil for a job that was killed.
	Exit *int `json:"exitStatus"`
	// CacheBytes are the bytes of archives moved; nil when the job had no
	// remote cache.
	CacheBytes *int64 `json:"cacheBytes"`
	Reason     string `json:"reason,omitempty"`
	// Saved is how long the job's last real run took, for a job skipped or
	// restored here; nil when unknown.
	Saved *float64 `json:"savedSeconds,omitempty"`
}

// Totals count the jobs of a build by outcome.
type Totals struct {
	Jobs        int `json:"jobs"`
	Run         int `json:"run"`
	Skipped     int `json:"skipped"`
	Restored    int `json:"restored"`
	Failed      int `json:"failed"`
	AlreadyDone int `json:"alreadyDone"`
	// Killed counts the jobs that began and never ended.
	Killed int     `json:"killed,omitempty"`
	Saved  float64 `json:"savedSeconds"`
}

// OutcomeKilled is the outcome of a job that began and never ended, in a
// build that no process runs in any more: its taskrunner was killed
// (SIGKILL, or the machine went down) and recorded no end.
const OutcomeKilled = "killed"

// Summary is the summary of one build.
type Summary struct {
	Build  string `json:"build"`
	Jobs   []Job  `json:"jobs"`
	Totals Totals `json:"totals"`
}

// ErrNoBuild is a build id that names no build.
var ErrNoBuild = errors.New("no such build")

// Latest returns the id of the newest build in the state directory.
func Latest(st state.Dir) (string, error) {
	ids, err := st.Builds()
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("no build in %s yet: run a task first", filepath.Join(st.Root, "builds"))
	}
	return ids[len(ids)-1], nil
}

// Summarize reads the build id of st.
func Summarize(st state.Dir, id string) (*Summary, error) {
	if !st.IsBuild(id) {
		return nil, fmt.Errorf("%w %q in %s: see the ids with ls %s", ErrNoBuild, id, filepath.Join(st.Root, "builds"), filepath.Join(st.Root, "builds"))
	}
	jobs, err := readJobs(st, id, !st.IsRunning(id))
	if err != nil {
		return nil, err
	}
	s := &Summary{Build: id, Jobs: jobs}
	var lastRun map[string]float64
	for i := range s.Jobs {
		j := &s.Jobs[i]
		s.Totals.Jobs++
		switch j.Outcome {
		case "ran", "fuzzy":
			s.Totals.Run++
		case "failed":
			s.Totals.Failed++
		case "skipped":
			s.Totals.Skipped++
		case "restored":
			s.Totals.Restored++
		case "already-done":
			s.Totals.AlreadyDone++
		case OutcomeKilled:
			s.Totals.Killed++
		}
		if j.Outcome == "skipped" || j.Outcome == "restored" {
			if lastRun == nil {
				lastRun = lastRuns(st, id)
			}
			if d, ok := lastRun[j.Name]; ok {
				saved := max(round(d-j.Duration), 0)
				j.Saved = &saved
				s.Totals.Saved = round(s.Totals.Saved + saved)
			}
		}
	}
	return s, nil
}

// readJobs returns the job events of a build, in start order. With
// finished, the build runs no more, and a job that began without an end
// was killed: it comes as a job with outcome killed, which lasted until the
// last event of its lane.
func readJobs(st state.Dir, id string, finished bool) ([]Job, error) {
	events, err := trace.Read(st.Build(id))
	if err != nil {
		return nil, fmt.Errorf("cannot read the trace of build %s: %w", id, err)
	}
	jobs := []Job{}
	type lane struct {
		tid  int
		name string
	}
	var begun []trace.Event
	ended := map[lane]int{}
	laneEnd := map[int]int64{}
	for _, e := range events {
		end := e.TS
		if e.Dur != nil {
			end += *e.Dur
		}
		laneEnd[e.TID] = max(laneEnd[e.TID], end)
		if e.Cat == trace.CatJob && e.Ph == "i" {
			begun = append(begun, e)
		}
		if e.Cat != trace.CatJob || e.Ph != "X" {
			continue
		}
		ended[lane{e.TID, e.Name}]++
		j := Job{Name: e.Name, Start: seconds(e.TS)}
		if e.Dur != nil {
			j.Duration = seconds(*e.Dur)
		}
		if v, ok := e.Args["outcome"].(string); ok {
			j.Outcome = v
		}
		exit := 0
		if v, ok := e.Args["exit"].(float64); ok {
			exit = int(v)
		}
		j.Exit = &exit
		if v, ok := e.Args["cacheBytes"].(float64); ok {
			n := int64(v)
			j.CacheBytes = &n
		}
		if v, ok := e.Args["reason"].(string); ok {
			j.Reason = v
		}
		jobs = append(jobs, j)
	}
	for _, b := range begun {
		if l := (lane{b.TID, b.Name}); ended[l] > 0 {
			ended[l]--
			continue
		}
		if finished {
			jobs = append(jobs, Job{Name: b.Name, Outcome: OutcomeKilled, Start: seconds(b.TS), Duration: seconds(laneEnd[b.TID] - b.TS)})
		}
	}
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].Start < jobs[b].Start })
	return jobs, nil
}

// lastRuns finds, for each job, how long its newest real run before build
// id took, looking back through the builds still in the state directory.
func lastRuns(st state.Dir, id string) map[string]float64 {
	ids, _ := st.Builds()
	found := map[string]float64{}
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] >= id {
			continue
		}
		jobs, err := readJobs(st, ids[i], false)
		if err != nil {
			continue
		}
		for _, j := range jobs {
			if _, ok := found[j.Name]; !ok && (j.Outcome == "ran" || j.Outcome == "fuzzy") {
				found[j.Name] = j.Duration
			}
		}
	}
	return found
}

func seconds(micros int64) float64 { return float64(micros) / 1e6 }

// round rounds seconds to microseconds, the trace's precision.
func round(secs float64) float64 { return math.Round(secs*1e6) / 1e6 }

// WriteJSON writes the summary as JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(s)
}

// WriteText writes the summary as a table.
func (s *Summary) WriteText(w io.Writer) error {
	width := len("JOB")
	for _, j := range s.Jobs {
		width = max(width, len(j.Name))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "build %s\n", s.Build)
	fmt.Fprintf(&b, "%-*s  %-12s  %9s  %4s  %10s  %s\n", width, "JOB", "OUTCOME", "TIME", "EXIT", "CACHE", "WHY IT RAN")
	for _, j := range s.Jobs {
		cache, reason, exit := "-", "-", "-"
		if j.CacheBytes != nil {
			cache = bytesText(*j.CacheBytes)
		}
		if j.Reason != "" {
			reason = j.Reason
		}
		if j.Exit != nil {
			exit = strconv.Itoa(*j.Exit)
		}
		fmt.Fprintf(&b, "%-*s  %-12s  %9s  %4s  %10s  %s\n", width, j.Name, j.Outcome, durationText(j.Duration), exit, cache, reason)
	}
	t := s.Totals
	jobs := "jobs"
	if t.Jobs == 1 {
		jobs = "job"
	}
	fmt.Fprintf(&b, "%d %s: %d run, %d skipped, %d restored, %d failed", t.Jobs, jobs, t.Run, t.Skipped, t.Restored, t.Failed)
	if t.AlreadyDone > 0 {
		fmt.Fprintf(&b, ", %d already done", t.AlreadyDone)
	}
	if t.Killed > 0 {
		fmt.Fprintf(&b, ", %d killed", t.Killed)
	}
	if t.Saved > 0 {
		fmt.Fprintf(&b, "; %s saved by skips and restores", durationText(t.Saved))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func durationText(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func bytesText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// WriteMarkdown writes the summary as a short markdown table, for a GitHub
// Actions step summary.
func (s *Summary) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### taskrunner build %s\n\n", s.Build)
	b.WriteString("| Task | Outcome | Time | Why it ran | Cache |\n|---|---|--:|---|--:|\n")
	cell := func(s string) string {
		if s == "" {
			return "-"
		}
		return strings.NewReplacer("|", "\\|", "\n", " ", "\r", " ").Replace(s)
	}
	for _, j := range s.Jobs {
		cache := ""
		if j.CacheBytes != nil {
			cache = bytesText(*j.CacheBytes)
		}
		outcome := j.Outcome
		if j.Exit != nil && *j.Exit != 0 {
			outcome += fmt.Sprintf(" (exit %d)", *j.Exit)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(j.Name), cell(outcome), durationText(j.Duration), cell(j.Reason), cell(cache))
	}
	t := s.Totals
	fmt.Fprintf(&b, "\n%d run, %d skipped, %d restored, %d failed", t.Run, t.Skipped, t.Restored, t.Failed)
	if t.Saved > 0 {
		fmt.Fprintf(&b, "; %s saved", durationText(t.Saved))
	}
	b.WriteString("\n\n")
	_, err := io.WriteString(w, b.String())
	return err
}
