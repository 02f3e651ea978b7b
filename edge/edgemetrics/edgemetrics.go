// Package edgemetrics is the edge's part of Charla's telemetry (package shared/telemetry
// holds the process-wide part): the instruments the edge records (active connections,
// frames by type, results and errors by code, refused handshakes by reason, event delivery
// lag by service and type, send-buffer drops) and its spans (one per client frame, one per
// event written to a connection).
//
// The edge builds it from the process's Telemetry:
//
//	em := edgemetrics.New(tel)
//	ctx, end := em.StartFrameSpan(conn.Context(), frameType, userID, pid)
//	em.FrameReceived(ctx, frameType)
//	... call the services with ctx ...
//	em.FrameResult(ctx, frameType, code) // 200, or the ERROR_NOTIFICATION code
//	end(code)
//
// and for each event written to a connection:
//
//	ctx, done := em.StartDeliverySpan(ctx, ev.GetTraceContext(), "NEW_CHAT_MESSAGE", userID, connID)
//	... write it ...
//	em.EventDelivered(ctx, "chat", "NEW_CHAT_MESSAGE", time.Since(created))
//	done()
//
// plus ConnectionOpened/ConnectionClosed, HandshakeRefused and SendDropped. The edge also
// hands it a count of its parked connections (WatchParked), read at each scrape.
//
// Metric names in /metrics: charla_edge_connections_active, charla_edge_connections_parked,
// charla_edge_frames_total{type},
// charla_edge_frame_results_total{type,code}, charla_edge_errors_total{type,code},
// charla_edge_handshakes_refused_total{reason}, charla_edge_send_dropped_total and
// charla_event_delivery_lag_seconds{service,type} (histogram), where type is the
// charla_message_type label. Counters without labels, and the refusals of every reason
// declared with DeclareRefusalReasons, are exported at 0 from the start.
//
// A nil *Metrics is valid and records nothing, so the edge's unit tests need no
// Telemetry. A Metrics is safe for concurrent use.
package edgemetrics

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/charla/charla/shared/telemetry"
)

// Attribute keys of the frame and delivery spans and of the edge's metrics.
const (
	// AttrUserID is the authenticated user of the connection.
	AttrUserID = attribute.Key("user.id")
	// AttrPID is the client's request id (the frame's pid, docs/protocol.md §3.2).
	AttrPID = attribute.Key("charla.pid")
	// AttrType is the frame's or event's message type (docs/protocol.md §4.1, §5.1).
	AttrType = attribute.Key("charla.message.type")
	// AttrCode is the result code of a frame: 200, or the code of its ERROR_NOTIFICATION.
	AttrCode = attribute.Key("charla.result.code")
	// AttrService is the service an event came from ("chat", "profile", ...).
	AttrService = attribute.Key("charla.service")
	// AttrConnectionID is the connection an event was written to.
	AttrConnectionID = attribute.Key("charla.connection.id")
	// AttrReason is why a handshake was refused (a short code such as "invalid_token").
	AttrReason = attribute.Key("reason")
)

// maxTypes bounds the distinct message types kept as label values and span names, so a
// client sending made-up types cannot grow the metrics without end. docs/protocol.md has far
// fewer types than this; the rest are reported as OtherType.
const maxTypes = 64

// OtherType stands for message types past the first maxTypes seen.
const OtherType = "other"

// Metrics are the instruments and spans of the WebSocket edge. A nil *Metrics is valid and
// records nothing.
type Metrics struct {
	tracing bool
	tracer  trace.Tracer

	connections metric.Int64UpDownCounter
	frames      metric.Int64Counter
	results     metric.Int64Counter
	errors      metric.Int64Counter
	drops       metric.Int64Counter
	refused     metric.Int64Counter
	lag         metric.Float64Histogram

	// parked counts, read at each collection and summed: one per edge that called
	// WatchParked, keyed by a number of its own so that its stop removes it.
	parkedMu     sync.Mutex
	parkedCounts map[int]func() int64
	parkedNext   int

	// Label sets are built once per type, (type, code) and service; the frame path then
	// only reads them, without a lock.
	types     cowMap[string, *typeEntry]
	resultMap cowMap[resultKey, *resultEntry]
	lagOpts   cowMap[lagKey, []metric.RecordOption]
	reasons   cowMap[string, []metric.AddOption]
}

type lagKey struct{ service, typ string }

// cowMap is a copy-on-write map for a few keys read very often from many goroutines:
// reads are one atomic load, writes copy the map under a lock.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

// get returns the value of k, building it on first use. build is given the number of
// keys so far and may substitute another key (an overflow bucket); the value stored under
// that key is returned if it is already there.
func (c *cowMap[K, V]) get(k K, build func(n int) (K, V)) V {
	if p := c.m.Load(); p != nil {
		if v, ok := (*p)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]V
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if v, ok := old[k]; ok {
		return v
	}
	key, v := build(len(old))
	if existing, ok := old[key]; ok {
		return existing
	}
	next := make(map[K]V, len(old)+1)
	for ok, ov := range old {
		next[ok] = ov
	}
	next[key] = v
	c.m.Store(&next)
	return v
}

// typeEntry holds what is precomputed for one message type, so the hot path allocates
// nothing for attributes.
type typeEntry struct {
	name     string // the type, or OtherType
	attr     attribute.KeyValue
	frameOpt []metric.AddOption
}

type resultKey struct {
	typ  string
	code int
}

type resultEntry struct {
	resultOpt []metric.AddOption
	errorOpt  []metric.AddOption // nil for success codes
}

var (
	noAddOpts      []metric.AddOption
	endNothing     = func(int) {}
	endNothingNone = func() {}
)

// New returns the edge's instruments on tel's meter provider and its spans on tel's tracer
// provider; a nil tel gives a nil *Metrics, which records nothing. Two calls on one
// Telemetry (two edges in one process) report to the same series.
func New(tel *telemetry.Telemetry) *Metrics {
	if tel == nil {
		return nil
	}
	return NewWith(tel.MeterProvider(), tel.TracerProvider(), tel.TracingEnabled())
}

// NewWith builds the edge's instruments on mp and its spans on tp; tracing false skips
// spans entirely (cheaper than a no-op tracer). Most callers want New.
func NewWith(mp metric.MeterProvider, tp trace.TracerProvider, tracing bool) *Metrics {
	m := mp.Meter("github.com/charla/charla/edge")
	e := &Metrics{
		tracing: tracing,
		tracer:  tp.Tracer("github.com/charla/charla/edge"),
	}
	// Instrument creation only fails on invalid names, which these are not; a failed one
	// is a no-op instrument, so the edge never stops for its metrics.
	e.connections, _ = m.Int64UpDownCounter("charla.edge.connections.active",
		metric.WithDescription("WebSocket connections currently open."), metric.WithUnit("{connection}"))
	e.frames, _ = m.Int64Counter("charla.edge.frames",
		metric.WithDescription("Client frames received, by message type."), metric.WithUnit("{frame}"))
	e.results, _ = m.Int64Counter("charla.edge.frame.results",
		metric.WithDescription("Client frames answered, by message type and result code."), metric.WithUnit("{frame}"))
	e.errors, _ = m.Int64Counter("charla.edge.errors",
		metric.WithDescription("Client frames answered with an ERROR_NOTIFICATION, by code and message type."), metric.WithUnit("{error}"))
	e.drops, _ = m.Int64Counter("charla.edge.send.dropped",
		metric.WithDescription("Outgoing frames dropped because a connection's send buffer was full."), metric.WithUnit("{frame}"))
	e.refused, _ = m.Int64Counter("charla.edge.handshakes.refused",
		metric.WithDescription("WebSocket handshakes refused before the upgrade, by reason."), metric.WithUnit("{handshake}"))
	e.lag, _ = m.Float64Histogram("charla.event.delivery.lag",
		metric.WithDescription("Time from an event's creation to its live write to a connection, by service and event type."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	parked, err := m.Int64ObservableGauge("charla.edge.connections.parked",
		metric.WithDescription("Open WebSocket connections that are parked: idle, read by no goroutine until their socket is readable."),
		metric.WithUnit("{connection}"))
	if err == nil {
		_, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			o.ObserveInt64(parked, e.parkedNow())
			return nil
		}, parked)
	}
	// Unlabelled series exist from the start at 0, so that rate() and alerts see a counter
	// that has not moved yet rather than no series at all.
	e.connections.Add(context.Background(), 0)
	e.drops.Add(context.Background(), 0)
	return e
}

// typ returns the precomputed entry of a message type.
func (e *Metrics) typ(name string) *typeEntry {
	return e.types.get(name, func(n int) (string, *typeEntry) {
		key := name
		if n >= maxTypes {
			key = OtherType
		}
		attr := AttrType.String(key)
		return key, &typeEntry{
			name:     key,
			attr:     attr,
			frameOpt: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attr))},
		}
	})
}

func (e *Metrics) result(te *typeEntry, code int) *resultEntry {
	k := resultKey{te.name, code}
	return e.resultMap.get(k, func(int) (resultKey, *resultEntry) {
		set := attribute.NewSet(te.attr, AttrCode.Int(code))
		re := &resultEntry{resultOpt: []metric.AddOption{metric.WithAttributeSet(set)}}
		if code >= 400 {
			re.errorOpt = re.resultOpt
		}
		return k, re
	})
}

// WatchParked adds count, the number of an edge's parked connections, to
// charla_edge_connections_parked (the sum over the edges watched) until stop is called.
func (e *Metrics) WatchParked(count func() int64) (stop func()) {
	if e == nil {
		return endNothingNone
	}
	e.parkedMu.Lock()
	defer e.parkedMu.Unlock()
	if e.parkedCounts == nil {
		e.parkedCounts = make(map[int]func() int64)
	}
	id := e.parkedNext
	e.parkedNext++
	e.parkedCounts[id] = count
	return func() {
		e.parkedMu.Lock()
		defer e.parkedMu.Unlock()
		delete(e.parkedCounts, id)
	}
}

// parkedNow sums the watched parked counts.
func (e *Metrics) parkedNow() int64 {
	e.parkedMu.Lock()
	defer e.parkedMu.Unlock()
	var n int64
	for _, count := range e.parkedCounts {
		n += count()
	}
	return n
}

// ConnectionOpened counts a WebSocket connection that completed its handshake.
func (e *Metrics) ConnectionOpened(ctx context.Context) {
	if e == nil {
		return
	}
	e.connections.Add(ctx, 1, noAddOpts...)
}

// ConnectionClosed counts a connection that ended; call it once per ConnectionOpened.
func (e *Metrics) ConnectionClosed(ctx context.Context) {
	if e == nil {
		return
	}
	e.connections.Add(ctx, -1, noAddOpts...)
}

// FrameReceived counts a client frame of msgType. Pass the type only once it is known to
// be one of docs/protocol.md §4.1 (else "unknown"): it becomes a label value.
func (e *Metrics) FrameReceived(ctx context.Context, msgType string) {
	if e == nil {
		return
	}
	e.frames.Add(ctx, 1, e.typ(msgType).frameOpt...)
}

// FrameResult counts the reply to a frame of msgType: code 200 for the typed reply, or the
// code of its ERROR_NOTIFICATION, which is also counted as an error.
func (e *Metrics) FrameResult(ctx context.Context, msgType string, code int) {
	if e == nil {
		return
	}
	re := e.result(e.typ(msgType), code)
	e.results.Add(ctx, 1, re.resultOpt...)
	if re.errorOpt != nil {
		e.errors.Add(ctx, 1, re.errorOpt...)
	}
}

// SendDropped counts an outgoing frame dropped because the connection's send buffer was
// full (the connection is then closed, docs/protocol.md §3.8).
func (e *Metrics) SendDropped(ctx context.Context) {
	if e == nil {
		return
	}
	e.drops.Add(ctx, 1, noAddOpts...)
}

// EventDelivered records the lag of one event written to a connection: now minus the
// event's creation time. service is the short name of the service that raised it,
// eventType its frame type (docs/protocol.md §5.1).
func (e *Metrics) EventDelivered(ctx context.Context, service, eventType string, lag time.Duration) {
	if e == nil {
		return
	}
	opts := e.lagOpts.get(lagKey{service, eventType}, func(n int) (lagKey, []metric.RecordOption) {
		key := lagKey{service, eventType}
		if n >= maxTypes {
			key = lagKey{OtherType, OtherType}
		}
		set := attribute.NewSet(AttrService.String(key.service), AttrType.String(key.typ))
		return key, []metric.RecordOption{metric.WithAttributeSet(set)}
	})
	e.lag.Record(ctx, lag.Seconds(), opts...)
}

// DeclareRefusalReasons exports the refused-handshake counter of each reason at 0, so that
// rate() and alerts see every reason before its first refusal. The edge calls it once
// with every reason it can refuse for.
func (e *Metrics) DeclareRefusalReasons(reasons ...string) {
	if e == nil {
		return
	}
	for _, r := range reasons {
		e.refused.Add(context.Background(), 0, e.reason(r)...)
	}
}

// HandshakeRefused counts a handshake refused before the upgrade. reason is one of a
// fixed set of codes (never client input); past maxTypes distinct ones it is counted as
// OtherType.
func (e *Metrics) HandshakeRefused(ctx context.Context, reason string) {
	if e == nil {
		return
	}
	e.refused.Add(ctx, 1, e.reason(reason)...)
}

func (e *Metrics) reason(r string) []metric.AddOption {
	return e.reasons.get(r, func(n int) (string, []metric.AddOption) {
		key := r
		if n >= maxTypes {
			key = OtherType
		}
		return key, []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrReason.String(key)))}
	})
}

// StartFrameSpan starts the span of one client frame, named by its message type, with the
// user id, the pid and the type; the returned end records the result code and ends it.
// Call the Connect clients with the returned context so the services' spans join the trace.
// With tracing off it returns ctx itself and an end that does nothing, allocating nothing.
func (e *Metrics) StartFrameSpan(ctx context.Context, msgType string, userID int64, pid string) (context.Context, func(code int)) {
	if e == nil || !e.tracing {
		return ctx, endNothing
	}
	te := e.typ(msgType)
	ctx, span := e.tracer.Start(ctx, te.name,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(te.attr, AttrUserID.Int64(userID), AttrPID.String(pid)))
	return ctx, func(code int) {
		span.SetAttributes(AttrCode.Int(code))
		if code >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(code))
		}
		span.End()
	}
}

// StartDeliverySpan starts the span of writing one event to one connection, as a child of
// the operation that raised the event: traceContext is the event's trace_context field,
// so the delivery of a NEW_CHAT_MESSAGE sits in the trace of the SEND_CHAT_MESSAGE that
// caused it. With tracing off, or an event without trace context, it records nothing.
func (e *Metrics) StartDeliverySpan(ctx context.Context, traceContext map[string]string, eventType string, userID int64, connectionID string) (context.Context, func()) {
	if e == nil || !e.tracing || len(traceContext) == 0 {
		return ctx, endNothingNone
	}
	ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(traceContext))
	te := e.typ(eventType)
	ctx, span := e.tracer.Start(ctx, "deliver "+te.name,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(te.attr, AttrUserID.Int64(userID), AttrConnectionID.String(connectionID)))
	return ctx, func() { span.End() }
}
