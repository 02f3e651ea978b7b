// Package telemetrytest gives tests telemetry whose spans are kept in memory and whose
// metrics can be scraped and summed, without importing the OpenTelemetry SDK themselves.
//
//	tel, rec := telemetrytest.New(t)
//	... run traffic with tel's options (open databases after New) ...
//	root := rec.Find("SEND_CHAT_MESSAGE")[0]
//	for _, s := range rec.Trace(root.TraceID) { ... }
//	m := telemetrytest.Scrape(t, tel.MetricsHandler())
//	m.Sum("rpc_server_call_duration_seconds_count", `rpc_response_status_code="OK"`)
//
// New installs the telemetry as the OpenTelemetry globals for the test's duration; tests
// calling it take turns (see Setup).
package telemetrytest

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/charla/charla/shared/telemetry"
)

// Recorder holds the spans ended so far. It is safe for concurrent use.
type Recorder struct {
	exp *tracetest.InMemoryExporter
}

// New returns telemetry with tracing on, every span sampled and kept in the Recorder.
func New(tb testing.TB) (*telemetry.Telemetry, *Recorder) {
	tb.Helper()
	rec := &Recorder{exp: tracetest.NewInMemoryExporter()}
	tel := Setup(tb, rec.exp)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("recorded spans:\n%s", rec)
		}
	})
	return tel, rec
}

// Span is an ended span, reduced to what tests check.
type Span struct {
	Name string
	// Kind is "internal", "server", "client", "producer" or "consumer".
	Kind string
	// TraceID, SpanID and ParentID are hex; ParentID is "" for a root.
	TraceID, SpanID, ParentID string
	// Attrs are the attributes, values as text.
	Attrs map[string]string
	// EventAttrs are the attributes of the span's events, values as text.
	EventAttrs []map[string]string
	// Links are the span ids the span links to.
	Links []string
	// Error is true when the span's status is Error.
	Error bool
}

// Spans returns the spans ended so far, in the order they ended.
func (r *Recorder) Spans() []Span {
	stubs := r.exp.GetSpans()
	spans := make([]Span, 0, len(stubs))
	for _, s := range stubs {
		sp := Span{
			Name:    s.Name,
			Kind:    s.SpanKind.String(),
			TraceID: s.SpanContext.TraceID().String(),
			SpanID:  s.SpanContext.SpanID().String(),
			Attrs:   make(map[string]string, len(s.Attributes)),
			Error:   s.Status.Code.String() == "Error",
		}
		if s.Parent.IsValid() {
			sp.ParentID = s.Parent.SpanID().String()
		}
		for _, a := range s.Attributes {
			sp.Attrs[string(a.Key)] = a.Value.String()
		}
		for _, l := range s.Links {
			sp.Links = append(sp.Links, l.SpanContext.SpanID().String())
		}
		for _, ev := range s.Events {
			m := make(map[string]string, len(ev.Attributes))
			for _, a := range ev.Attributes {
				m[string(a.Key)] = a.Value.String()
			}
			sp.EventAttrs = append(sp.EventAttrs, m)
		}
		spans = append(spans, sp)
	}
	return spans
}

// Find returns the spans named name.
func (r *Recorder) Find(name string) []Span {
	var found []Span
	for _, s := range r.Spans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	return found
}

// Trace returns the spans of one trace.
func (r *Recorder) Trace(traceID string) []Span {
	var found []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			found = append(found, s)
		}
	}
	return found
}

// Reset forgets the spans recorded so far.
func (r *Recorder) Reset() { r.exp.Reset() }

// String lists the spans, one a line, for failure messages.
func (r *Recorder) String() string {
	var b strings.Builder
	for _, s := range r.Spans() {
		b.WriteString(s.TraceID[:8] + " " + s.SpanID + " <- " + s.ParentID + " " + s.Kind + " " + s.Name + "\n")
	}
	return b.String()
}

// Descends reports whether s is ancestor itself or below it, following parents among spans.
func Descends(spans []Span, s, ancestor Span) bool {
	byID := make(map[string]Span, len(spans))
	for _, sp := range spans {
		byID[sp.SpanID] = sp
	}
	for range len(spans) + 1 {
		if s.SpanID == ancestor.SpanID {
			return true
		}
		parent, ok := byID[s.ParentID]
		if !ok {
			return false
		}
		s = parent
	}
	return false
}
