package bus_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/charla/charla/shared/bus"
)

// natsURL returns a NATS server for the test: NATS_TEST_URL when set (CI sets the machine's
// server), otherwise an embedded server on a free loopback port.
func natsURL(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("NATS_TEST_URL"); url != "" {
		return url
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("embedded NATS: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

func TestBuses(t *testing.T) {
	t.Parallel()
	buses := map[string]func(t *testing.T) bus.Bus{
		"inprocess": func(t *testing.T) bus.Bus { return bus.NewInProcess() },
		"nats": func(t *testing.T) bus.Bus {
			b, err := bus.Open(natsURL(t))
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
