// Package telemetry is Charla's observability: OpenTelemetry traces exported over OTLP,
// metrics exposed in Prometheus text format, the RPC and database instruments, and the
// process's own series (build info, connection pools).
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
// The edge's own instruments and spans (frames, connections, refused handshakes, delivery
// lag) are in package edge/edgemetrics, built on a Telemetry. A service doing work once for
// many requests (a group commit) runs it under StartBatchSpan so each request's trace
// reaches the statements.
//
// Metric names in /metrics (the edge's are listed in edge/edgemetrics):
// rpc_server_call_duration_seconds and rpc_client_call_duration_seconds (otelconnect,
// by rpc_method and rpc_response_status_code), db_client_operation_duration_seconds
// (otelsql, by db_operation_name: sql.conn.query/exec and sql.stmt.query/exec are the
// statements; sql.rows is the time spent reading results), charla_build_info{version,
// revision,go_version} (always 1), go_sql_*{db_name} (each service's connection pool, from
// RegisterDB), charla_bus_nats_connected and charla_bus_nats_{disconnects,reconnects}_total
// (shared/bus, with NATS), and the Go runtime and process collectors. deploy/observability
// alerts on them.
//
// Call Setup once per process. Concurrency: a Telemetry is safe for concurrent use.
package telemetry
