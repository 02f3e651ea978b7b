package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// AttrBatchSize is the number of requests a batch span serves.
const AttrBatchSize = attribute.Key("charla.batch.size")

var endBatchNothing = func(error) {}

// StartBatchSpan starts the span of work done once for several requests, such as a group
// commit storing the messages of many SendMessage calls in one transaction. The span is a
// child of the first member whose context carries a span, and links to the others, so
// every request's trace leads to the batch and to the statements run in the returned
// context. ctx supplies cancellation and values; members are the requests' contexts. With
// no traced member it returns ctx and an end that does nothing, allocating nothing. end
// records err, if any, and ends the span. It uses the global tracer provider, so a service
// needs no Telemetry to call it.
func StartBatchSpan(ctx context.Context, name string, members ...context.Context) (context.Context, func(err error)) {
	first := -1
	for i, m := range members {
		if trace.SpanContextFromContext(m).IsSampled() {
			first = i
			break
		}
	}
	if first < 0 {
		return ctx, endBatchNothing
	}
	var links []trace.Link
	for _, m := range members[first+1:] {
		if sc := trace.SpanContextFromContext(m); sc.IsSampled() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx = trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(members[first]))
	ctx, span := otel.Tracer("github.com/charla/charla/shared/telemetry").Start(ctx, name,
		trace.WithLinks(links...), trace.WithAttributes(AttrBatchSize.Int(len(members))))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}
