package edgemetrics_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/charla/charla/edge/edgemetrics"
	"github.com/charla/charla/shared/telemetry"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

// newLocal is telemetry of the test's own, not installed as the globals, with tracing off.
func newLocal(t *testing.T) *telemetry.Telemetry {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tel, err := telemetry.Setup(context.Background(), "test", telemetry.WithoutGlobals())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// TestSeriesFromTheStart: before any traffic the unlabelled counters and the refusals of
// every declared reason are exported at 0.
func TestSeriesFromTheStart(t *testing.T) {
	tel := newLocal(t)
	em := edgemetrics.New(tel)
	em.DeclareRefusalReasons("invalid_token", "origin", "starting")
	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	for _, name := range []string{"charla_edge_send_dropped_total", "charla_edge_connections_active"} {
		if !m.Has(name) {
			t.Errorf("%s is absent before its first change, want it at 0", name)
		} else if got := m.Sum(name); got != 0 {
			t.Errorf("%s = %v, want 0", name, got)
		}
	}
	for _, r := range []string{"invalid_token", "origin", "starting"} {
		label := `reason="` + r + `"`
		if !m.Has("charla_edge_handshakes_refused_total", label) {
			t.Errorf("charla_edge_handshakes_refused_total{%s} absent before the first refusal\n%s", label, m.Grep("charla_edge_handshakes_refused_total"))
		}
	}
	if got := m.Sum("charla_edge_handshakes_refused_total"); got != 0 {
		t.Errorf("refusals before any: got %v, want 0", got)
	}
}

// TestMetricsMove records each instrument and reads it back from /metrics.
func TestMetricsMove(t *testing.T) {
	tel := newLocal(t)
	em := edgemetrics.New(tel)
	ctx := context.Background()
	em.ConnectionOpened(ctx)
	em.ConnectionOpened(ctx)
	em.ConnectionClosed(ctx)
	for _, code := range []int{200, 200, 404} {
		em.FrameReceived(ctx, "GET_CHAT_HISTORY")
		em.FrameResult(ctx, "GET_CHAT_HISTORY", code)
	}
	em.SendDropped(ctx)
	em.HandshakeRefused(ctx, "invalid_token")
	em.HandshakeRefused(ctx, "invalid_token")
	em.HandshakeRefused(ctx, "origin")
	em.EventDelivered(ctx, "chat", "NEW_CHAT_MESSAGE", 3*time.Millisecond)
	em.EventDelivered(ctx, "chat", "MESSAGE_STATUS_UPDATE", time.Millisecond)
	em.EventDelivered(ctx, "notify", "NEW_NOTIFICATION", time.Millisecond)
	em.EventDelivered(ctx, "notify", "NEW_NOTIFICATION", time.Millisecond)

	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"charla_edge_connections_active", nil, 1},
		{"charla_edge_frames_total", []string{`charla_message_type="GET_CHAT_HISTORY"`}, 3},
		{"charla_edge_frame_results_total", []string{`charla_message_type="GET_CHAT_HISTORY"`, `charla_result_code="200"`}, 2},
		{"charla_edge_errors_total", []string{`charla_message_type="GET_CHAT_HISTORY"`, `charla_result_code="404"`}, 1},
		{"charla_edge_errors_total", []string{`charla_result_code="200"`}, 0},
		{"charla_edge_send_dropped_total", nil, 1},
		{"charla_edge_handshakes_refused_total", []string{`reason="invalid_token"`}, 2},
		{"charla_edge_handshakes_refused_total", []string{`reason="origin"`}, 1},
		{"charla_event_delivery_lag_seconds_count", []string{`charla_service="chat"`, `charla_message_type="NEW_CHAT_MESSAGE"`}, 1},
		{"charla_event_delivery_lag_seconds_count", []string{`charla_service="chat"`, `charla_message_type="MESSAGE_STATUS_UPDATE"`}, 1},
		{"charla_event_delivery_lag_seconds_count", []string{`charla_service="notify"`, `charla_message_type="NEW_NOTIFICATION"`}, 2},
	}
	for _, tt := range tests {
		if got := m.Sum(tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v: got %v, want %v\n%s", tt.name, tt.labels, got, tt.want, m.Grep(tt.name))
		}
	}
}

// TestParkedGauge: charla_edge_connections_parked is the sum of the watched counts at the
// scrape, 0 before any, and a stopped watch no longer counts.
func TestParkedGauge(t *testing.T) {
	tel := newLocal(t)
	em := edgemetrics.New(tel)
	if got := telemetrytest.Scrape(t, tel.MetricsHandler()).Sum("charla_edge_connections_parked"); got != 0 {
		t.Fatalf("parked before any edge: %v, want 0", got)
	}
	var a, b atomic.Int64
	stopA := em.WatchParked(a.Load)
	em.WatchParked(b.Load)
	a.Store(3)
	b.Store(4)
	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	if got := m.Sum("charla_edge_connections_parked"); got != 7 {
		t.Fatalf("parked with two edges at 3 and 4: %v, want 7\n%s", got, m.Grep("parked"))
	}
	stopA()
	b.Store(5)
	if got := telemetrytest.Scrape(t, tel.MetricsHandler()).Sum("charla_edge_connections_parked"); got != 5 {
		t.Fatalf("parked after the first edge stopped: %v, want 5", got)
	}
	var none *edgemetrics.Metrics
	none.WatchParked(a.Load)() // a nil Metrics watches nothing
}

// A nil Metrics records nothing and does not panic, for the edge's unit tests.
func TestNilMetrics(t *testing.T) {
	t.Parallel()
	var e *edgemetrics.Metrics
	if edgemetrics.New(nil) != nil {
		t.Error("New(nil): got metrics, want nil")
	}
	ctx := context.Background()
	e.ConnectionOpened(ctx)
	e.ConnectionClosed(ctx)
	e.FrameReceived(ctx, "PING")
	e.FrameResult(ctx, "PING", 500)
	e.SendDropped(ctx)
	e.DeclareRefusalReasons("origin")
	e.HandshakeRefused(ctx, "origin")
	e.EventDelivered(ctx, "chat", "NEW_CHAT_MESSAGE", 0)
	c, end := e.StartFrameSpan(ctx, "PING", 1, "p")
	end(200)
	_, done := e.StartDeliverySpan(c, map[string]string{"traceparent": "x"}, "NEW_CHAT_MESSAGE", 1, "c")
	done()
}

// With tracing off the frame path returns the context untouched.
func TestNoSpansWithTracingOff(t *testing.T) {
	em := edgemetrics.New(newLocal(t))
	ctx := context.Background()
	got, end := em.StartFrameSpan(ctx, "PING", 1, "p")
	end(200)
	if got != ctx {
		t.Errorf("StartFrameSpan with tracing off returned a new context")
	}
}

// Past 64 distinct types, new ones are counted as "other": a client sending made-up types
// cannot grow the series without end.
func TestTypesBounded(t *testing.T) {
	tel, _ := telemetrytest.New(t)
	e := edgemetrics.New(tel)
	ctx := context.Background()
	for i := range 200 {
		e.FrameReceived(ctx, fmt.Sprintf("T%d", i))
		e.FrameResult(ctx, fmt.Sprintf("T%d", i), 400)
	}
	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	if got := m.Count("charla_edge_frames_total"); got > 65 {
		t.Errorf("frame series: got %d, want at most 65", got)
	}
	if got := m.Sum("charla_edge_frames_total"); got != 200 {
		t.Errorf("frames counted: got %v, want 200", got)
	}
	if got := m.Sum("charla_edge_frames_total", `charla_message_type="other"`); got != 200-64 {
		t.Errorf("frames counted as other: got %v, want %d", got, 200-64)
	}
}

// TestSpans: the frame span carries the user, the pid, the type and the result code; the
// delivery span of an event carrying a trace context (as fanout fills it) is a child of
// the operation that raised the event; an event without trace context makes no span.
func TestSpans(t *testing.T) {
	tel, rec := telemetrytest.New(t)
	em := edgemetrics.New(tel)
	ctx, end := em.StartFrameSpan(context.Background(), "SEND_CHAT_MESSAGE", 42, "c-17")
	carrier := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(carrier))
	end(200)

	_, done := em.StartDeliverySpan(context.Background(), carrier, "NEW_CHAT_MESSAGE", 2, "conn-9")
	done()
	spans := rec.Spans()
	if len(spans) != 2 {
		t.Fatalf("spans: got %v, want the frame and the delivery", rec)
	}
	send, deliver := spans[0], spans[1]
	for k, want := range map[string]string{"user.id": "42", "charla.pid": "c-17", "charla.message.type": "SEND_CHAT_MESSAGE", "charla.result.code": "200"} {
		if got := send.Attrs[k]; got != want {
			t.Errorf("frame attribute %s: got %q, want %q", k, got, want)
		}
	}
	if send.ParentID != "" || send.Kind != "server" {
		t.Errorf("frame span: parent %q kind %s, want a server root", send.ParentID, send.Kind)
	}
	if got, want := deliver.Name, "deliver NEW_CHAT_MESSAGE"; got != want {
		t.Errorf("delivery span name: got %q, want %q", got, want)
	}
	if deliver.TraceID != send.TraceID || deliver.ParentID != send.SpanID {
		t.Errorf("delivery span: trace %s parent %s, want trace %s parent %s", deliver.TraceID, deliver.ParentID, send.TraceID, send.SpanID)
	}

	_, done = em.StartDeliverySpan(context.Background(), nil, "NEW_CHAT_MESSAGE", 2, "conn-9")
	done()
	if got := len(rec.Spans()); got != 2 {
		t.Errorf("spans after a delivery without trace context: got %d, want 2", got)
	}
}
