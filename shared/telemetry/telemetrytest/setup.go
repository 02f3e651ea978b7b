package telemetrytest

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/charla/charla/shared/telemetry"
)

// globalsMu is held by each test between Setup and its cleanup: such tests replace
// the OpenTelemetry globals, so they take turns instead of seeing each other's spans.
var globalsMu sync.Mutex

// Setup is telemetry.Setup for tests: tracing on, every span sent to exp as it ends (use
// tracetest.NewInMemoryExporter), the providers installed as the globals so databases
// opened afterwards with sqldb.Open report to them, and Shutdown at cleanup.
//
// Tests calling it (or New) take turns (a lock held until cleanup). A test that calls
// t.Parallel must do so before Setup: pausing while holding the lock would stall the tests
// that wait for it, and Setup fails the test after a minute of waiting.
//
// It lives here, not in package telemetry, so that no production binary links "testing".
func Setup(tb testing.TB, exp sdktrace.SpanExporter, opts ...telemetry.Option) *telemetry.Telemetry {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for !globalsMu.TryLock() {
		if time.Now().After(deadline) {
			tb.Fatal("telemetrytest.Setup: another test has held the telemetry globals for a minute; call t.Parallel before Setup")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tel, err := telemetry.Setup(context.Background(), "test", append([]telemetry.Option{telemetry.WithSpanExporter(exp)}, opts...)...)
	if err != nil {
		globalsMu.Unlock()
		tb.Fatalf("telemetrytest.Setup: %v", err)
	}
	tb.Cleanup(func() {
		defer globalsMu.Unlock()
		if err := tel.Shutdown(context.Background()); err != nil {
			tb.Errorf("telemetry shutdown: %v", err)
		}
	})
	return tel
}
