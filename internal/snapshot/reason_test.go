package snapshot

import (
	"fmt"
	"strings"
	"testing"

	"github.com/taskrunner/taskrunner/internal/state"
)

// entry is one line of an input listing, for a file whose content is
// named by n.
func entry(path string, n int) string {
	return fmt.Sprintf("100644 blob %040x\t%s", n, path)
}

func listing(entries ...string) string { return strings.Join(entries, "\n") }

func TestExplain(t *testing.T) {
	a1, a2 := entry("a.txt", 1), entry("a.txt", 2)
	b1, c1 := entry("b.txt", 3), entry("c.txt", 4)
	many := make([]string, 7)
	for i := range many {
		many[i] = entry(fmt.Sprintf("f%d.txt", i+1), 10+i)
	}
	tests := []struct {
		name string
		// saved is the saved hash input; nil for no saved hash.
		saved    *string
		now, raw string
		want     string
	}{
		{name: "no saved hash", now: listing(a1), want: ReasonNoSaved},
		{name: "modified", saved: ptr(listing(a1, b1)), now: listing(a2, b1), want: "modified a.txt"},
		{name: "added", saved: ptr(listing(a1)), now: listing(a1, b1), want: "added b.txt"},
		{name: "removed", saved: ptr(listing(a1, b1)), now: listing(a1), want: "removed b.txt"},
		{name: "added, removed and modified", saved: ptr(listing(a1, b1)), now: listing(a2, c1),
			want: "added c.txt; removed b.txt; modified a.txt"},
		{name: "mode changed", saved: ptr(listing(a1)), now: listing(strings.Replace(a1, "100644", "100755", 1)),
			want: "modified a.txt"},
		{name: "from no files to some", saved: ptr(""), now: listing(a1, b1), want: "added a.txt, b.txt"},
		{name: "to no files", saved: ptr(listing(a1)), now: "", want: "removed a.txt"},

		// Raw inputs follow the listing with no separator: glued to the
		// last path.
		{name: "raw changed", saved: ptr(listing(a1, b1) + "v1"), now: listing(a1, b1), raw: "v2",
			want: "raw inputs changed"},
		{name: "raw unchanged, glued path modified", saved: ptr(listing(a1) + "v1"), now: listing(a2), raw: "v1",
			want: "modified a.txt"},
		{name: "raw unchanged, glued path removed", saved: ptr(listing(a1, b1) + "v1"), now: listing(a1), raw: "v1",
			want: "removed b.txt"},
		{name: "raw unchanged, path added after the glued one", saved: ptr(listing(a1) + "v1"), now: listing(a1, b1), raw: "v1",
			want: "added b.txt"},
		{name: "raw and a file changed", saved: ptr(listing(a1, b1) + "v1"), now: listing(a2, b1), raw: "v2",
			want: "modified a.txt; raw inputs changed"},
		{name: "raw added", saved: ptr(listing(a1)), now: listing(a1), raw: "v1", want: "raw inputs changed"},
		{name: "raw removed", saved: ptr(listing(a1) + "v1"), now: listing(a1), raw: "", want: "raw inputs changed"},
		{name: "new raw is the end of the old last path", saved: ptr(listing(a1)), now: listing(a1), raw: "txt",
			want: "raw inputs changed"},
		{name: "multi-line raw changed", saved: ptr(listing(a1) + "x\ny"), now: listing(a1), raw: "x\nz",
			want: "raw inputs changed"},
		{name: "multi-line raw unchanged, file modified", saved: ptr(listing(a1) + "x\ny"), now: listing(a2), raw: "x\ny",
			want: "modified a.txt"},
		{name: "raw only", saved: ptr("v1"), now: "", raw: "v2", want: "raw inputs changed"},
		{name: "raw only, files added", saved: ptr("v1"), now: listing(a1), raw: "v1", want: "added a.txt"},

		{name: "and N more", saved: ptr(""), now: listing(many...),
			want: "added f1.txt, f2.txt, f3.txt, f4.txt, f5.txt and 2 more"},
		{name: "exactly five named", saved: ptr(""), now: listing(many[:5]...),
			want: "added f1.txt, f2.txt, f3.txt, f4.txt, f5.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var saved *state.SavedHash
			if tt.saved != nil {
				saved = &state.SavedHash{Hash: HashOf(*tt.saved), HashInput: *tt.saved}
			}
			if got := explain(saved, tt.now, tt.raw); got != tt.want {
				t.Errorf("explain(saved %q, listing %q, raw %q)\n got %q\nwant %q", deref(tt.saved), tt.now, tt.raw, got, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}
