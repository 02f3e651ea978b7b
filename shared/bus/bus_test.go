package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/bus/bustest"
)

func TestBuses(t *testing.T) {
	t.Parallel()
	buses := map[string]func(t *testing.T) bus.Bus{
		"inprocess": func(t *testing.T) bus.Bus { return bus.NewInProcess() },
		"nats": func(t *testing.T) bus.Bus {
			b, err := bus.Open(bustest.NATSURL(t))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
	for name, open := range buses {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := open(t)
			defer b.Close()
			// Unique subjects, so runs against a shared NATS server don't see each other.
			subject := "test." + name + "." + time.Now().Format("150405.000000000")
			var mu sync.Mutex
			var got []string
			done := make(chan struct{}, 10)
			sub, err := b.Subscribe(subject, func(data []byte) {
				mu.Lock()
				got = append(got, string(data))
				mu.Unlock()
				done <- struct{}{}
			})
			if err != nil {
				t.Fatal(err)
			}
			other, err := b.Subscribe(subject+".other", func([]byte) { t.Error("message on the wrong subject") })
			if err != nil {
				t.Fatal(err)
			}
			defer other.Unsubscribe()
			for _, m := range []string{"one", "two", "three"} {
				if err := b.Publish(context.Background(), subject, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("timed out waiting for messages")
				}
			}
			mu.Lock()
			if len(got) != 3 || got[0] != "one" || got[1] != "two" || got[2] != "three" {
				t.Errorf("got %q, want [one two three] in order", got)
			}
			mu.Unlock()
			if err := sub.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(context.Background(), subject, []byte("after")); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
				t.Error("message delivered after Unsubscribe")
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	t.Parallel()
	if _, err := bus.Open("redis://127.0.0.1:6379"); err == nil {
		t.Fatal("got nil error for redis://, want BUS_URL error")
	}
}
