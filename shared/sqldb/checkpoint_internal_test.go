package sqldb

import (
	"testing"
	"time"
)

// TestNextCheckpoint: the checkpointer's schedule. A log the writer is filling is
// checkpointed at the usual period, back to back near the backstop, and with a pause past
// it (for the writer's own checkpoint); a log nobody appends to, or one a reader holds
// back, is left at the usual period, however large (an idle server does not spin).
func TestNextCheckpoint(t *testing.T) {
	t.Parallel()
	const near, past = sprintFromPages, autoCheckpointPages
	for _, tc := range []struct {
		name      string
		last, now walState
		want      time.Duration
	}{
		{"small log, growing", walState{100, 100}, walState{2000, 1500}, checkpointEvery},
		{"small log, copied to a new end", walState{100, 100}, walState{2000, 2000}, checkpointEvery},
		{"near the backstop, growing", walState{near, near}, walState{near + 500, near + 200}, sprintEvery},
		{"near the backstop, copied to a new end", walState{near, near - 10}, walState{near + 500, near + 500}, sprintEvery},
		{"past the backstop, growing", walState{past, past - 20}, walState{past + 50, past}, yieldToWriter},
		{"past the backstop, idle and copied", walState{past + 50, past}, walState{past + 50, past + 50}, checkpointEvery},
		{"near the backstop, idle and copied", walState{near + 9, near + 9}, walState{near + 9, near + 9}, checkpointEvery},
		{"near the backstop, a reader holds it back", walState{near, near - 300}, walState{near + 400, near - 300}, checkpointEvery},
		{"past the backstop, a reader holds it back", walState{past, past - 300}, walState{past + 400, past - 300}, checkpointEvery},
		{"rewound", walState{past + 50, past + 50}, walState{300, 0}, checkpointEvery},
		{"failed", walState{5000, 5000}, walState{}, checkpointEvery},
	} {
		if got := nextCheckpoint(tc.last, tc.now); got != tc.want {
			t.Errorf("%s: next checkpoint in %v, want %v", tc.name, got, tc.want)
		}
	}
}
