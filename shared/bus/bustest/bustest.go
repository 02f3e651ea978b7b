// Package bustest gives tests a NATS server: the one CI runs (NATS_TEST_URL) when set,
// otherwise an embedded github.com/nats-io/nats-server on a free loopback port, shut down
// when the test ends.
package bustest

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSURL returns the URL of a NATS server for tb.
func NATSURL(tb testing.TB) string {
	tb.Helper()
	if url := os.Getenv("NATS_TEST_URL"); url != "" {
		return url
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("bustest: embedded NATS: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("bustest: embedded NATS not ready")
	}
	tb.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}
