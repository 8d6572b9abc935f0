package cli

import "strings"

// longOptions are the options an unknown one may be a misspelling of.
var longOptions = []string{
	"--name", "--force", "--help", "--version", "--env",
	"--summary", "--github-token", "--git-credential",
}

// suggest returns the known option closest to the unknown opt, or "" when
// none is close: a transposition, a missing or an extra letter or two.
// One-letter options get no suggestion: any other letter is as close.
func suggest(opt string) string {
	opt, _, _ = strings.Cut(opt, "=")
	if len(opt) <= 2 {
		return ""
	}
	if !strings.HasPrefix(opt, "--") {
		opt = "-" + opt // -name for --name
	}
	best, bestDist := "", 3
	for _, known := range longOptions {
		if d := editDistance(opt, known); d < bestDist {
			best, bestDist = known, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent bytes.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// unknownOption is the error for an option taskrunner does not know.
func unknownOption(opt string) error {
	if s := suggest(opt); s != "" {
		return &UsageError{"unknown option " + opt + ", did you mean " + s + "?"}
	}
	return &UsageError{"unknown option " + opt}
}
