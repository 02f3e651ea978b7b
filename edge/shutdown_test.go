package edge

import (
	"context"
	"testing"
	"time"
)

// TestShutdownKeepsPresenceGrace: a draining edge reports its closed connections to
// presence only after the grace period (the clients are reconnecting to another edge
// meanwhile, and their users must not be shown offline), and Shutdown waits for it.
func TestShutdownKeepsPresenceGrace(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	te := startEdge(t, func(c *Config) { c.PresenceGrace = grace })
	te.dial(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := te.e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// A lower bound, which slowness cannot break: the grace was not skipped.
	if took := time.Since(start); took < grace {
		t.Errorf("Shutdown took %v, want at least the presence grace %v", took, grace)
	}
	te.f.presence.mu.Lock()
	left := len(te.f.presence.conns)
	te.f.presence.mu.Unlock()
	if left != 0 {
		t.Errorf("presence still holds %d connections after shutdown", left)
	}
}
