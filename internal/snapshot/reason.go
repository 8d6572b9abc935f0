package snapshot

import (
	"fmt"
	"regexp"
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

// entryLine is one line of an input listing: "MODE TYPE SHA\tPATH".
var entryLine = regexp.MustCompile(`^[0-7]{6} [a-z]+ [0-9a-f]{40,64}\t(.*)$`)

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
	var old map[string]string
	rawChanged := true
	if prefix, ok := strings.CutSuffix(saved.HashInput, raw); ok && isListing(prefix) {
		old, rawChanged = parseListing(prefix), false
	} else {
		old = parseGlued(saved.HashInput, now)
	}

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

func isListing(s string) bool {
	if s == "" {
		return true
	}
	for _, line := range strings.Split(s, "\n") {
		if !entryLine.MatchString(line) {
			return false
		}
	}
	return true
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
	if !entryLine.MatchString(line) {
		return "", "", false
	}
	entry, path, _ = strings.Cut(line, "\t")
	return path, entry, true
}

// parseGlued reads the listing at the start of a saved hash input whose
// raw inputs changed: they follow the last entry with no separator, so
// that entry's path may carry raw text, which a path of now tells apart.
func parseGlued(input string, now map[string]string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(input, "\n") {
		path, entry, ok := splitEntry(line)
		if !ok {
			break
		}
		if _, known := now[path]; !known {
			for p := range now {
				if strings.HasPrefix(path, p) && len(p) < len(path) {
					path = p
					break
				}
			}
		}
		m[path] = entry
	}
	return m
}
