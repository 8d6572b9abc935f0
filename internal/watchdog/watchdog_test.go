package watchdog

import "testing"

func TestParseGuard(t *testing.T) {
	for _, tt := range []struct {
		line string
		want guard
		ok   bool
	}{
		{"guard 1234 5678", guard{1234, 5678}, true},
		{"guard 1234 0", guard{1234, 0}, true},
		{"guard 1 5678", guard{}, false}, // init's group, or all processes
		{"guard 0 5678", guard{}, false},
		{"guard -5 5678", guard{}, false},
		{"guard 1234", guard{}, false},
		{"guard 1234 5678 9", guard{}, false},
		{"guard x 5678", guard{}, false},
		{"done", guard{}, false},
		{"", guard{}, false},
	} {
		g, ok := parseGuard(tt.line)
		if g != tt.want || ok != tt.ok {
			t.Errorf("parseGuard(%q) = %+v, %v; want %+v, %v", tt.line, g, ok, tt.want, tt.ok)
		}
	}
}

func TestStartTime(t *testing.T) {
	const rest = " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21"
	for _, tt := range []struct {
		stat string
		want uint64
		ok   bool
	}{
		{"123 (bash)" + rest, 424242, true},
		// The command name may hold spaces and parentheses.
		{"123 (a) b (c))" + rest, 424242, true},
		{"123 (bash) S 1 2", 0, false},
		{"no parenthesis", 0, false},
	} {
		got, ok := startTime(tt.stat)
		if got != tt.want || ok != tt.ok {
			t.Errorf("startTime(%q) = %d, %v; want %d, %v", tt.stat, got, ok, tt.want, tt.ok)
		}
	}
}
