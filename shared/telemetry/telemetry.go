package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Telemetry holds a process's tracer and meter providers and its metrics registry.
type Telemetry struct {
	service  string
	tracing  bool
	tp       trace.TracerProvider
	sdkTP    *sdktrace.TracerProvider // nil when tracing is off
	mp       *sdkmetric.MeterProvider
	registry *prometheus.Registry

	interceptor *otelconnect.Interceptor

	shutdownOnce sync.Once
	shutdownErr  error
}

// Option changes how Setup builds a Telemetry; tests use them to capture spans.
type Option func(*options)

type options struct {
	exporter sdktrace.SpanExporter
	noGlobal bool
}

// WithSpanExporter turns tracing on and sends every span, synchronously as it ends, to exp
// instead of to the OTLP exporter the environment describes. It is meant for tests, with
// go.opentelemetry.io/otel/sdk/trace/tracetest.NewInMemoryExporter; the environment's
// sampler is ignored and every span is sampled.
func WithSpanExporter(exp sdktrace.SpanExporter) Option {
	return func(o *options) { o.exporter = exp }
}

// WithoutGlobals keeps Setup from installing its providers as the OpenTelemetry globals
// (the propagator is still installed). Code reaching the globals (sqldb.Open) then does not
// see this Telemetry; use it for a second Telemetry in one process.
func WithoutGlobals() Option {
	return func(o *options) { o.noGlobal = true }
}

// Setup builds the process's telemetry for serviceName (OTEL_SERVICE_NAME overrides it)
// and installs it as the OpenTelemetry globals. See the package documentation for the
// environment variables it reads. The error names the variable that is wrong.
func Setup(ctx context.Context, serviceName string, opts ...Option) (*Telemetry, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	// Always, so trace context crosses this process even when it records nothing itself.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{}))

	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	t := &Telemetry{service: serviceName, registry: prometheus.NewRegistry()}
	if v, ok := res.Set().Value(semconv.ServiceNameKey); ok && v.AsString() != "" {
		t.service = v.AsString()
	}

	// Metrics: always on, on this Telemetry's own registry.
	t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoCollector())
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(promExp), sdkmetric.WithResource(res))

	// Traces: the test exporter, the OTLP exporter, or nothing.
	var exp sdktrace.SpanExporter
	var tpOpts []sdktrace.TracerProviderOption
	switch {
	case o.exporter != nil:
		exp = o.exporter
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	default:
		protocol, on, err := tracingFromEnv()
		if err != nil {
			return nil, err
		}
		if on {
			exp, err = newOTLPExporter(ctx, protocol)
			if err != nil {
				return nil, err
			}
			tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		}
	}
	if exp != nil {
		t.tracing = true
		t.sdkTP = sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithResource(res))...)
		t.tp = t.sdkTP
	} else {
		t.tp = noop.NewTracerProvider()
	}

	t.interceptor, err = otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(t.tp),
		otelconnect.WithMeterProvider(t.mp),
		otelconnect.WithPropagator(otel.GetTextMapPropagator()),
		// Every Connect server in Charla is internal, reached only by the edge and the
		// services themselves: continue their traces instead of starting new roots.
		otelconnect.WithTrustRemote(),
		// An event stream lives as long as the edge's connection to the service: a span
		// for it would never end. Each event carries its own trace context instead.
		otelconnect.WithFilter(func(_ context.Context, spec connect.Spec) bool {
			return !strings.HasSuffix(spec.Procedure, "/StreamEvents")
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("otelconnect: %w", err)
	}

	if !o.noGlobal {
		otel.SetTracerProvider(t.tp)
		otel.SetMeterProvider(t.mp)
	}
	return t, nil
}

// tracingFromEnv tells whether the environment asks for traces and over which protocol.
func tracingFromEnv() (protocol string, on bool, err error) {
	if v := os.Getenv("OTEL_SDK_DISABLED"); v != "" {
		disabled, perr := strconv.ParseBool(v)
		if perr != nil {
			return "", false, fmt.Errorf("OTEL_SDK_DISABLED=%q: expected true or false", v)
		}
		if disabled {
			return "", false, nil
		}
	}
	switch v := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); v {
	case "", "otlp":
	case "none":
		return "", false, nil
	default:
		return "", false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: expected otlp or none", v)
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		return "", false, nil
	}
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	protocol = os.Getenv(name)
	if protocol == "" {
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
		protocol = os.Getenv(name)
	}
	switch protocol {
	case "":
		return "http/protobuf", true, nil
	case "http/protobuf", "grpc":
		return protocol, true, nil
	}
	return "", false, fmt.Errorf("%s=%q: expected http/protobuf or grpc", name, protocol)
}

// newOTLPExporter builds the exporter; both read the rest of OTEL_EXPORTER_OTLP_* (endpoint,
// headers, timeout, compression, certificates) themselves and connect lazily.
func newOTLPExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	if protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP %s trace exporter (check OTEL_EXPORTER_OTLP_*): %w", protocol, err)
	}
	return exp, nil
}

// ServiceName is the service name the telemetry reports (OTEL_SERVICE_NAME when set).
func (t *Telemetry) ServiceName() string { return t.service }

// TracingEnabled reports whether spans are recorded and exported.
func (t *Telemetry) TracingEnabled() bool { return t.tracing }

// TracerProvider is this Telemetry's tracer provider (a no-op one when tracing is off).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// MeterProvider is this Telemetry's meter provider, read by MetricsHandler.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }

// Registry is the Prometheus registry behind MetricsHandler, for collectors of one's own.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// MetricsHandler serves the metrics in the Prometheus text format, for GET /metrics.
// It is meant for the operators' network: it reveals counts and latencies, no user data.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ConnectHandlerOptions instrument a Connect handler: a server span per call continuing the
// caller's trace, and the rpc.server.* duration histograms. Put them before the auth
// interceptor so refused calls are counted too.
func (t *Telemetry) ConnectHandlerOptions() []connect.HandlerOption {
	return []connect.HandlerOption{connect.WithInterceptors(t.interceptor)}
}

// ConnectClientOptions instrument a Connect client: a client span per call, the trace
// context in the request headers, and the rpc.client.* duration histograms.
func (t *Telemetry) ConnectClientOptions() []connect.ClientOption {
	return []connect.ClientOption{connect.WithInterceptors(t.interceptor)}
}

// Shutdown flushes the spans not yet exported and stops the providers. Later calls return
// the first call's result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		var errs []error
		if t.sdkTP != nil {
			if err := t.sdkTP.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("shut down tracer provider: %w", err))
			}
		}
		if err := t.mp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down meter provider: %w", err))
		}
		t.shutdownErr = errors.Join(errs...)
	})
	return t.shutdownErr
}
