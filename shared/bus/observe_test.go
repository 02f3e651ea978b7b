package bus_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/logging/logtest"
	"github.com/charla/charla/shared/waittest"
)

// startNATS starts an embedded NATS server on port (-1: any free port).
func startNATS(t *testing.T, port int) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("embedded NATS: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// sum reads the current value of an int64 counter or up-down counter.
func sum(t *testing.T, r *sdkmetric.ManualReader, name string) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			s, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want an int64 sum", name, m.Data)
			}
			var v int64
			for _, dp := range s.DataPoints {
				v += dp.Value
			}
			return v, true
		}
	}
	return 0, false
}

// TestNATSConnectionStateIsObserved loses the NATS server and brings it back: the bus logs
// the disconnect and the reconnect, counts both, reports the connection state, and its
// Ping fails while the server is away.
func TestNATSConnectionStateIsObserved(t *testing.T) {
	t.Parallel()
	srv := startNATS(t, -1)
	port := srv.Addr().(*net.TCPAddr).Port
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	log, rec := logtest.New(t)
	b, err := bus.Open(srv.ClientURL(), bus.WithLogger(log), bus.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string) int64 {
		v, ok := sum(t, reader, name)
		if !ok {
			t.Fatalf("metric %s is absent", name)
		}
		return v
	}
	ctx := context.Background()
	if got := value("charla.bus.nats.connected"); got != 1 {
		t.Errorf("connected = %d after Open, want 1", got)
	}
	for _, name := range []string{"charla.bus.nats.disconnects", "charla.bus.nats.reconnects"} {
		if got := value(name); got != 0 {
			t.Errorf("%s = %d after Open, want 0 (present before the first change)", name, got)
		}
	}
	if err := bus.Ping(ctx, b); err != nil {
		t.Fatalf("Ping with the server up: %v", err)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	waittest.Until(t, "the disconnect", func() bool { return value("charla.bus.nats.disconnects") == 1 })
	if got := value("charla.bus.nats.connected"); got != 0 {
		t.Errorf("connected = %d with the server down, want 0", got)
	}
	if err := bus.Ping(ctx, b); err == nil {
		t.Error("Ping with the server down succeeded")
	}

	startNATS(t, port)
	waittest.Until(t, "the reconnect", func() bool { return value("charla.bus.nats.reconnects") == 1 })
	if got := value("charla.bus.nats.connected"); got != 1 {
		t.Errorf("connected = %d after the reconnect, want 1", got)
	}
	if err := bus.Ping(ctx, b); err != nil {
		t.Errorf("Ping after the reconnect: %v", err)
	}
	if len(rec.Find(t, "NATS disconnected; reconnecting")) != 1 || len(rec.Find(t, "NATS reconnected")) != 1 {
		t.Errorf("want one disconnect and one reconnect logged, got:\n%s", rec)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waittest.Until(t, "connected to drop to 0 on Close", func() bool { return value("charla.bus.nats.connected") == 0 })
	if got := value("charla.bus.nats.disconnects"); got != 1 {
		t.Errorf("disconnects = %d after Close, want still 1 (a close is not a loss)", got)
	}
}

func TestInProcessPing(t *testing.T) {
	t.Parallel()
	if err := bus.Ping(context.Background(), bus.NewInProcess()); err != nil {
		t.Errorf("in-process Ping: %v", err)
	}
}
