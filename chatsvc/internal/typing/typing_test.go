package typing

import (
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTracker(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	tr := New(c.now)
	if got := tr.On(1, 10, 20); !got {
		t.Fatalf("first ON relayed: got %v, want true", got)
	}
	c.add(2 * time.Second)
	if got := tr.On(1, 10, 20); got {
		t.Fatalf("ON inside window relayed: got %v, want false", got)
	}
	if got := tr.On(2, 10, 30); !got {
		t.Fatalf("ON in another chat relayed: got %v, want true", got)
	}
	c.add(1500 * time.Millisecond)
	if got := tr.On(1, 10, 20); !got {
		t.Fatalf("ON after window relayed: got %v, want true", got)
	}
	relay, other := tr.Off(1, 10)
	if !relay || other != 20 {
		t.Fatalf("OFF in force: got %v %d, want true 20", relay, other)
	}
	if relay, _ := tr.Off(1, 10); relay {
		t.Fatalf("second OFF relayed: got true, want false")
	}
	// The OFF reset the window: an immediate ON is relayed.
	if got := tr.On(1, 10, 20); !got {
		t.Fatalf("ON after OFF relayed: got %v, want true", got)
	}
	c.add(7 * time.Second) // both ONs expired
	if relay, _ := tr.Off(1, 10); relay {
		t.Fatalf("OFF after expiry relayed: got true, want false")
	}
	tr.On(3, 10, 40)
	ended := tr.StopUser(10)
	if len(ended) != 1 || ended[0] != (Ended{ChatID: 3, Other: 40}) {
		t.Fatalf("StopUser: got %v, want [{3 40}]", ended)
	}
	tr.On(4, 11, 12)
	c.add(10 * time.Second)
	tr.Sweep()
	if got := tr.Len(); got != 0 {
		t.Fatalf("after sweep: got %d states, want 0", got)
	}
}
