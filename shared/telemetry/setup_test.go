package telemetry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/charla/charla/shared/telemetry"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER",
}

// TestSetupFromEnv covers when tracing is on, and the errors naming the bad variable.
// The endpoints point at a closed port: exporters connect lazily, and no span is made.
func TestSetupFromEnv(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantTracing bool
		wantService string
		wantErr     string
	}{
		{"nothing set", nil, false, "chat", ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, true, "chat", ""},
		{"traces endpoint, grpc", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, "chat", ""},
		{"traces protocol wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": "bogus", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, "chat", ""},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}, false, "chat", ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "none"}, false, "chat", ""},
		{"service name", map[string]string{"OTEL_SERVICE_NAME": "chat-eu-1"}, false, "chat-eu-1", ""},
		{"sampler", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, true, "chat", ""},
		{"bad protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, "", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"bad disabled", map[string]string{"OTEL_SDK_DISABLED": "maybe"}, false, "", "OTEL_SDK_DISABLED"},
		{"bad exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "", "OTEL_TRACES_EXPORTER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range otelVars {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			tel, err := telemetry.Setup(context.Background(), "chat", telemetry.WithoutGlobals())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Setup: got %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			defer func() {
				// Nothing to flush; a short deadline keeps the gRPC exporter from waiting
				// for the closed port.
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				tel.Shutdown(ctx) //nolint:errcheck // the collector is not there
			}()
			if got := tel.TracingEnabled(); got != tt.wantTracing {
				t.Errorf("TracingEnabled: got %v, want %v", got, tt.wantTracing)
			}
			if got := tel.ServiceName(); got != tt.wantService {
				t.Errorf("ServiceName: got %q, want %q", got, tt.wantService)
			}
			// The propagator is installed whatever the tracing.
			if got := strings.Join(otel.GetTextMapPropagator().Fields(), ","); !strings.Contains(got, "traceparent") || !strings.Contains(got, "baggage") {
				t.Errorf("global propagator fields: got %s, want traceparent and baggage", got)
			}
		})
	}
}

func TestShutdownTwice(t *testing.T) {
	tel := telemetrytest.Setup(t, tracetest.NewNoopExporter())
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}
