package edgemetrics_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/charla/charla/edge/edgemetrics"
	"github.com/charla/charla/shared/telemetry"
)

// benchTelemetry returns telemetry with tracing off (no OTEL_* set) or on (every span
// sampled and handed to an exporter that discards it), not installed as the globals.
func benchTelemetry(b *testing.B, tracing bool) *telemetry.Telemetry {
	b.Helper()
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		b.Setenv(k, "")
	}
	opts := []telemetry.Option{telemetry.WithoutGlobals()}
	if tracing {
		opts = append(opts, telemetry.WithSpanExporter(tracetest.NewNoopExporter()))
	}
	tel, err := telemetry.Setup(context.Background(), "bench", opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tel.Shutdown(context.Background()) })
	if tel.TracingEnabled() != tracing {
		b.Fatalf("TracingEnabled: got %v, want %v", tel.TracingEnabled(), tracing)
	}
	return tel
}

var modes = []struct {
	name    string
	tracing bool
}{{"tracing=off", false}, {"tracing=on", true}}

// BenchmarkFramePath is what the edge adds to each client frame: the frame span, the
// frame counter, the result counter (an error here, so both result counters move).
func BenchmarkFramePath(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			e := edgemetrics.New(benchTelemetry(b, m.tracing))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				fctx, end := e.StartFrameSpan(ctx, "SEND_CHAT_MESSAGE", 42, "c-17")
				e.FrameReceived(fctx, "SEND_CHAT_MESSAGE")
				e.FrameResult(fctx, "SEND_CHAT_MESSAGE", 404)
				end(404)
			}
		})
	}
}

// BenchmarkStartFrameSpan is the span alone: start, then end with a result code.
func BenchmarkStartFrameSpan(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			e := edgemetrics.New(benchTelemetry(b, m.tracing))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, end := e.StartFrameSpan(ctx, "SEND_CHAT_MESSAGE", 42, "c-17")
				end(200)
			}
		})
	}
}

// BenchmarkFrameResult is the result counter alone (metrics are on in both modes).
func BenchmarkFrameResult(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			e := edgemetrics.New(benchTelemetry(b, m.tracing))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				e.FrameResult(ctx, "SEND_CHAT_MESSAGE", 200)
			}
		})
	}
}

// BenchmarkFramePathParallel is the frame path from many goroutines, as many connections
// run it at once: it shows whether the type and result caches contend.
func BenchmarkFramePathParallel(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			e := edgemetrics.New(benchTelemetry(b, m.tracing))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					fctx, end := e.StartFrameSpan(ctx, "GET_CHAT_HISTORY", 42, "c-17")
					e.FrameReceived(fctx, "GET_CHAT_HISTORY")
					e.FrameResult(fctx, "GET_CHAT_HISTORY", 200)
					end(200)
				}
			})
		})
	}
}
