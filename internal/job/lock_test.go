package job

import (
	"testing"
	"time"

	"github.com/taskrunner/taskrunner/internal/state"
)

// TestHolderTexts: the holder of a lock as the wait's debug and warn lines
// name it, with the day only when it is not today's (UTC).
func TestHolderTexts(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name        string
		h           state.Holder
		ok          bool
		debug, warn string
	}{
		{
			name:  "today",
			h:     state.Holder{PID: 1234, Build: "2026-11-30T08:12:34.123456Z", Since: time.Date(2026, 11, 30, 8, 12, 34, 0, time.UTC)},
			ok:    true,
			debug: "pid 1234 of build 2026-11-30T08:12:34.123456Z since 08:12:34 UTC",
			warn:  "pid 1234 (build 2026-11-30T08:12:34.123456Z) since 08:12:34 UTC",
		},
		{
			name:  "yesterday",
			h:     state.Holder{PID: 1234, Build: "2026-11-29T23:59:59.000001Z", Since: time.Date(2026, 11, 29, 23, 59, 59, 0, time.UTC)},
			ok:    true,
			debug: "pid 1234 of build 2026-11-29T23:59:59.000001Z since 2026-11-29 23:59:59 UTC",
			warn:  "pid 1234 (build 2026-11-29T23:59:59.000001Z) since 2026-11-29 23:59:59 UTC",
		},
		{
			name:  "another zone",
			h:     state.Holder{PID: 7, Build: "b", Since: time.Date(2026, 11, 30, 10, 12, 34, 0, time.FixedZone("CET", 3600))},
			ok:    true,
			debug: "pid 7 of build b since 09:12:34 UTC",
			warn:  "pid 7 (build b) since 09:12:34 UTC",
		},
		{
			name:  "unknown",
			debug: "an unknown process",
			warn:  "an unknown process",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := holderText(tt.h, tt.ok, now); got != tt.debug {
				t.Errorf("holderText = %q, want %q", got, tt.debug)
			}
			if got := holderWarnText(tt.h, tt.ok, now); got != tt.warn {
				t.Errorf("holderWarnText = %q, want %q", got, tt.warn)
			}
		})
	}
}
