package telemetry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/charla/charla/shared/telemetry"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

func TestStartBatchSpan(t *testing.T) {
	tel, rec := telemetrytest.New(t)
	tr := tel.TracerProvider().Tracer("test")
	ctxA, a := tr.Start(context.Background(), "request A")
	ctxB, b := tr.Start(context.Background(), "request B")
	untraced := context.Background()

	bctx, end := telemetry.StartBatchSpan(context.Background(), "insert batch", untraced, ctxA, ctxB)
	_, stmt := tr.Start(bctx, "INSERT")
	stmt.End()
	end(errors.New("disk full"))
	a.End()
	b.End()

	batch := rec.Find("insert batch")
	if len(batch) != 1 {
		t.Fatalf("batch spans: got %d, want 1", len(batch))
	}
	reqA := rec.Find("request A")[0]
	if got, want := batch[0].ParentID, reqA.SpanID; got != want {
		t.Errorf("batch parent: got %s, want request A %s", got, want)
	}
	reqB := rec.Find("request B")[0]
	if got := batch[0].Links; len(got) != 1 || got[0] != reqB.SpanID {
		t.Errorf("batch links: got %v, want [request B %s]", got, reqB.SpanID)
	}
	if got, want := batch[0].Attrs["charla.batch.size"], "3"; got != want {
		t.Errorf("batch size: got %s, want %s", got, want)
	}
	if !batch[0].Error {
		t.Errorf("batch span status: want Error after end(err)")
	}
	if got, want := rec.Find("INSERT")[0].ParentID, batch[0].SpanID; got != want {
		t.Errorf("statement parent: got %s, want the batch %s", got, want)
	}

	// Nothing traced: no span, the context as it was.
	ctx := context.Background()
	got, end := telemetry.StartBatchSpan(ctx, "insert batch", untraced)
	end(nil)
	if got != ctx || len(rec.Find("insert batch")) != 1 {
		t.Errorf("untraced batch made a span or a new context")
	}
}
