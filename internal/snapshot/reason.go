package snapshot

import (
	"fmt"
	"sort"
	"strings"

	"github.com/taskrunner/taskrunner/internal/state"
)

// Reasons that need no comparison.
const (
	ReasonNoSnapshot = "no snapshot: the task declares no inputs"
	ReasonNoInputs   = "no inputs declared"
	ReasonNoSaved    = "no saved hash"
	ReasonForced     = "forced"
	ReasonFuzzy      = "main-branch commit changed (fuzzy)"
)

// isEntry reports whether line is one line of an input listing,
// "MODE TYPE SHA\tPATH": six octal digits, a lowercase word, 40 to 64 hex
// digits. (Written out rather than as a regular expression, whose
// compilation every taskrunner would pay for at start.)
func isEntry(line string) bool {
	mode, rest, ok := strings.Cut(line, " ")
	if !ok || len(mode) != 6 || strings.Trim(mode, "01234567") != "" {
		return false
	}
	typ, rest, ok := strings.Cut(rest, " ")
	if !ok || typ == "" || strings.Trim(typ, "abcdefghijklmnopqrstuvwxyz") != "" {
		return false
	}
	sha, _, ok := strings.Cut(rest, "\t")
	return ok && len(sha) >= 40 && len(sha) <= 64 && strings.Trim(sha, "0123456789abcdef") == ""
}

// maxNamed is how many paths of each kind a reason names.
const maxNamed = 5

// explain says why inputs whose listing and raw part (joined raw inputs)
// hash differently from saved count as changed: the paths added, removed
// or modified, and whether the raw inputs changed.
func explain(saved *state.SavedHash, listing, raw string) string {
	if saved == nil {
		return ReasonNoSaved
	}
	now := parseListing(listing)
	old, oldRaw := splitSaved(saved.HashInput, now, raw)
	rawChanged := oldRaw != raw

	var added, removed, modified []string
	for p, e := range now {
		switch o, ok := old[p]; {
		case !ok:
			added = append(added, p)
		case o != e:
			modified = append(modified, p)
		}
	}
	for p := range old {
		if _, ok := now[p]; !ok {
			removed = append(removed, p)
		}
	}
	var parts []string
	for _, kind := range []struct {
		verb  string
		paths []string
	}{{"added", added}, {"removed", removed}, {"modified", modified}} {
		if len(kind.paths) > 0 {
			parts = append(parts, kind.verb+" "+names(kind.paths))
		}
	}
	if rawChanged {
		parts = append(parts, "raw inputs changed")
	}
	if len(parts) == 0 {
		return "saved hash differs"
	}
	return strings.Join(parts, "; ")
}

func names(paths []string) string {
	sort.Strings(paths)
	if len(paths) <= maxNamed {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:maxNamed], ", "), len(paths)-maxNamed)
}

// parseListing maps each path of a listing to the rest of its line.
func parseListing(s string) map[string]string {
	m := map[string]string{}
	if s == "" {
		return m
	}
	for _, line := range strings.Split(s, "\n") {
		if path, entry, ok := splitEntry(line); ok {
			m[path] = entry
		}
	}
	return m
}

func splitEntry(line string) (path, entry string, ok bool) {
	if !isEntry(line) {
		return "", "", false
	}
	entry, path, _ = strings.Cut(line, "\t")
	return path, entry, true
}

// splitSaved splits a saved hash input into its listing (path → rest of
// the line) and its raw part. The raw inputs follow the listing with no
// separator, so raw text may be glued to the path of the last entry (an
// input with no entry at all is raw text alone). Where the path ends is
// the first cut that holds of
//
//  1. the path is an input now and the raw part is the raw inputs of now,
//  2. the path is an input now,
//  3. the raw part is the raw inputs of now (the path was removed),
//
// else the whole text is the path.
func splitSaved(input string, now map[string]string, raw string) (map[string]string, string) {
	old := map[string]string{}
	lines := strings.Split(input, "\n")
	k := 0
	for k < len(lines) && isEntry(lines[k]) {
		k++
	}
	if k == 0 {
		return old, input
	}
	for _, line := range lines[:k-1] {
		path, entry, _ := splitEntry(line)
		old[path] = entry
	}
	entry, last, _ := strings.Cut(lines[k-1], "\t")
	rest := ""
	if k < len(lines) {
		rest = "\n" + strings.Join(lines[k:], "\n")
	}
	isInput := func(path string) bool { _, ok := now[path]; return ok }
	rules := []func(path, rawPart string) bool{
		func(path, rawPart string) bool { return isInput(path) && rawPart == raw },
		func(path, _ string) bool { return isInput(path) },
		func(_, rawPart string) bool { return rawPart == raw },
	}
	cut := len(last)
found:
	for _, holds := range rules {
		for c := len(last); c > 0; c-- {
			if holds(last[:c], last[c:]+rest) {
				cut = c
				break found
			}
		}
	}
	old[last[:cut]] = entry
	return old, last[cut:] + rest
}
