package telemetry

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// globalsMu is held by each test between SetupForTest and its cleanup: such tests replace
// the OpenTelemetry globals, so they take turns instead of seeing each other's spans.
var globalsMu sync.Mutex

// SetupForTest is Setup for tests: tracing on, every span sent to exp as it ends (use
// tracetest.NewInMemoryExporter), the providers installed as the globals so databases
// opened afterwards with sqldb.Open report to them, and Shutdown at cleanup.
//
// Tests calling it take turns (a lock held until cleanup). A test that calls t.Parallel
// must do so before SetupForTest: pausing while holding the lock would stall the tests
// that wait for it, and SetupForTest fails the test after a minute of waiting.
func SetupForTest(tb testing.TB, exp sdktrace.SpanExporter, opts ...Option) *Telemetry {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for !globalsMu.TryLock() {
		if time.Now().After(deadline) {
			tb.Fatal("telemetry.SetupForTest: another test has held the telemetry globals for a minute; call t.Parallel before SetupForTest")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tel, err := Setup(context.Background(), "test", append([]Option{WithSpanExporter(exp)}, opts...)...)
	if err != nil {
		globalsMu.Unlock()
		tb.Fatalf("telemetry.SetupForTest: %v", err)
	}
	tb.Cleanup(func() {
		defer globalsMu.Unlock()
		if err := tel.Shutdown(context.Background()); err != nil {
			tb.Errorf("telemetry shutdown: %v", err)
		}
	})
	return tel
}
