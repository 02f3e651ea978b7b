// Package telemetry is Charla's observability: OpenTelemetry traces exported over OTLP,
// metrics exposed in Prometheus text format, and the instruments the edge records
// (active connections, frames by type, errors by code, event delivery lag,
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
// The edge records its part through EdgeMetrics (tel.EdgeMetrics()):
//
//	ctx, end := em.StartFrameSpan(conn.Context(), frameType, userID, pid)
//	em.FrameReceived(ctx, frameType)
//	... call the services with ctx ...
//	em.FrameResult(ctx, frameType, code) // 200, or the ERROR_NOTIFICATION code
//	end(code)
//
// and for each event written to a connection:
//
//	ctx, done := em.StartDeliverySpan(ctx, ev.GetTraceContext(), "NEW_CHAT_MESSAGE", userID, connID)
//	... write it; call MarkDelivered with ctx ...
//	em.EventDelivered(ctx, "chat", time.Since(created))
//	done()
//
// plus ConnectionOpened/ConnectionClosed and SendDropped. A service doing work once for
// many requests (a group commit) runs it under StartBatchSpan so each request's trace
// reaches the statements.
//
// Metric names in /metrics: charla_edge_connections_active, charla_edge_frames_total{type},
// charla_edge_frame_results_total{type,code}, charla_edge_errors_total{type,code},
// charla_edge_send_dropped_total, charla_event_delivery_lag_seconds{service} (histogram),
// rpc_server_call_duration_seconds and rpc_client_call_duration_seconds (otelconnect,
// by rpc_method and rpc_response_status_code), db_client_operation_duration_seconds
// (otelsql, by db_operation_name: sql.conn.query/exec and sql.stmt.query/exec are the
// statements; sql.rows is the time spent reading results), charla_build_info{version,
// revision,go_version} (always 1), go_sql_*{db_name} (each service's connection pool, from
// RegisterDB), charla_bus_nats_connected and charla_bus_nats_{disconnects,reconnects}_total
// (shared/bus, with NATS), and the Go runtime and process collectors. Unlabelled counters
// are exported at 0 from the start. deploy/observability alerts on them.
//
// Call Setup once per process. Concurrency: a Telemetry and an EdgeMetrics are safe for
// concurrent use.
package telemetry
