// Package telemetry is Charla's observability: OpenTelemetry traces exported over OTLP,
// metrics exposed in Prometheus text format, and the instruments the edge records
// (seed §11.6: active connections, frames by type, errors by code, event delivery lag,
// send-buffer drops).
//
// A process calls Setup once, early, and Shutdown on the way out:
//
//	tel, err := telemetry.Setup(ctx, "edge")
//	if err != nil { ... }
//	defer tel.Shutdown(context.Background())
//	mux.Handle("GET /metrics", tel.MetricsHandler())
//	handlerOpts := append(tel.ConnectHandlerOptions(), connect.WithInterceptors(auth))
//	clients := peers.New(urls, token, nil, tel.ConnectClientOptions()...)
//
// Tracing is configured by the standard OTEL_* environment variables and is off unless
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and
// OTEL_SDK_DISABLED is not true). Off means a no-op tracer provider: the frame path then
// starts no span and allocates nothing for tracing. Metrics are always collected, on a
// Prometheus registry of the Telemetry's own, so two Telemetry values never share series.
//
// Setup installs its providers and the W3C tracecontext+baggage propagator as the OpenTelemetry
// globals, which is how code that cannot be handed a Telemetry (sqldb.Open, fanout) reaches
// them. The global propagator is installed even with tracing off, so a process without an
// exporter still passes the trace context of its callers on to its callees and its events.
//
// Concurrency: a Telemetry and an EdgeMetrics are safe for concurrent use.
package telemetry
