package delivery

import (
	"context"
	"slices"
	"testing"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

// markerFunc is a Marker from a function.
type markerFunc func(context.Context, *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error)

func (f markerFunc) MarkDelivered(ctx context.Context, r *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error) {
	return f(ctx, r)
}

// TestReceiptJoinsTheSendTrace: the MarkDelivered call of two traced receipts runs under a
// "delivery receipts" span in the trace of the first message's delivery, linked to the
// second's; an untraced receipt adds nothing.
func TestReceiptJoinsTheSendTrace(t *testing.T) {
	tel, rec := telemetrytest.New(t)
	tracer := tel.TracerProvider().Tracer("test")
	_, first := tracer.Start(context.Background(), "deliver NEW_CHAT_MESSAGE")
	first.End()
	_, second := tracer.Start(context.Background(), "deliver NEW_CHAT_MESSAGE")
	second.End()

	called := make(chan trace.SpanContext, 1)
	b := New(markerFunc(func(ctx context.Context, _ *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error) {
		called <- trace.SpanContextFromContext(ctx)
		return connect.NewResponse(&chatv1.MarkDeliveredResponse{}), nil
	}), Options{})
	b.AddTraced(7, 1, first.SpanContext())
	b.AddTraced(7, 2, second.SpanContext())
	b.Add(7, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	call := <-called
	cancel()
	<-done

	spans := rec.Find("delivery receipts")
	if len(spans) != 1 {
		t.Fatalf("receipt spans: got %d, want 1\n%s", len(spans), rec)
	}
	s := spans[0]
	if s.TraceID != first.SpanContext().TraceID().String() || s.ParentID != first.SpanContext().SpanID().String() {
		t.Errorf("receipt span: trace %s parent %s, want the first delivery's trace %s and span %s",
			s.TraceID, s.ParentID, first.SpanContext().TraceID(), first.SpanContext().SpanID())
	}
	if !slices.Contains(s.Links, second.SpanContext().SpanID().String()) {
		t.Errorf("receipt span links: got %v, want the second delivery %s", s.Links, second.SpanContext().SpanID())
	}
	if call.SpanID().String() != s.SpanID {
		t.Errorf("MarkDelivered called under span %s, want the receipt span %s", call.SpanID(), s.SpanID)
	}
}
