package sqldb

import (
	"testing"
	"time"
)

// TestNextCheckpoint: the checkpointer's schedule. A log the writer is filling is
// checkpointed at the usual period, back to back near the backstop, and with a pause past
// it (for the writer's own checkpoint); a log nobody appends to is left at the usual
// period, however large (an idle server does not spin).
func TestNextCheckpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		prevLog, log, copied int
		want                 time.Duration
	}{
		{"small log, growing", 100, 2000, 1500, checkpointEvery},
		{"small log, copied to a new end", 100, 2000, 2000, checkpointEvery},
		{"near the backstop, growing", sprintFromPages, sprintFromPages + 500, sprintFromPages + 200, sprintEvery},
		{"near the backstop, copied to a new end", sprintFromPages, sprintFromPages + 500, sprintFromPages + 500, sprintEvery},
		{"past the backstop, growing", autoCheckpointPages, autoCheckpointPages + 50, autoCheckpointPages, yieldToWriter},
		{"past the backstop, idle and copied", autoCheckpointPages + 50, autoCheckpointPages + 50, autoCheckpointPages + 50, checkpointEvery},
		{"near the backstop, idle and copied", sprintFromPages + 9, sprintFromPages + 9, sprintFromPages + 9, checkpointEvery},
		{"rewound", autoCheckpointPages + 50, 300, 0, checkpointEvery},
		{"failed", 5000, 0, 0, checkpointEvery},
	} {
		if got := nextCheckpoint(tc.prevLog, tc.log, tc.copied); got != tc.want {
			t.Errorf("%s: next checkpoint in %v, want %v", tc.name, got, tc.want)
		}
	}
}
