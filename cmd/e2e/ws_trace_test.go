package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

// TestSendTraceOverWebSocket sends one SEND_CHAT_MESSAGE through the real edge and follows
// it: the edge's Connect call to chatsvc (SendMessages, under the edge's "send messages"
// batch span, a child of the frame's: edge/internal/sendbatch), chatsvc's server span and
// its statements share one trace, rooted at the edge's frame span, and the delivery of
// NEW_CHAT_MESSAGE to the recipient's connection is a span of that same trace.
func TestSendTraceOverWebSocket(t *testing.T) {
	sys, tel, rec := startTraced(t)
	ana, bea := sys.NewUser(t, "ana"), sys.NewUser(t, "bea")
	sys.Contact(t, ana, bea)
	anaConn, beaConn := dial(t, sys, ana.Token, "ana"), dial(t, sys, bea.Token, "bea")
	// A first round trip each: both connections are then registered with presence.
	for _, c := range []*wsClient{anaConn, beaConn} {
		c.call("GET_CHAT_LIST", nil)
	}
	rec.Reset()

	const text = "hola por el edge"
	if ack := anaConn.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bea.ID, "text": text}); ack.Type != "SERVER_ACK" {
		t.Fatalf("reply to SEND_CHAT_MESSAGE: got %s %s, want SERVER_ACK", ack.Type, ack.Payload)
	}
	beaConn.event("NEW_CHAT_MESSAGE", nil)

	var server telemetrytest.Span
	for _, s := range rec.Find("chat.v1.ChatService/SendMessages") {
		if s.Kind == "server" {
			server = s
		}
	}
	if server.SpanID == "" {
		t.Fatalf("no SendMessages server span")
	}
	spans := rec.Trace(server.TraceID)
	var client telemetrytest.Span
	statements := 0
	for _, s := range spans {
		if s.Name == server.Name && s.Kind == "client" {
			client = s
		}
		if s.Attrs["db.query.text"] != "" && telemetrytest.Descends(spans, s, server) {
			statements++
		}
		for k, v := range s.Attrs {
			if strings.Contains(v, text) {
				t.Errorf("span %q attribute %s carries the message text", s.Name, k)
			}
		}
	}
	if client.SpanID == "" || server.ParentID != client.SpanID {
		t.Errorf("SendMessages server span's parent: got %q, want the edge's client span %q", server.ParentID, client.SpanID)
	}
	if statements == 0 {
		t.Errorf("no statement span under the SendMessages server span")
	}

	if frames := rec.Find("SEND_CHAT_MESSAGE"); len(frames) == 0 {
		t.Error("the edge recorded no SEND_CHAT_MESSAGE frame span")
	} else if f := frames[0]; f.TraceID != server.TraceID || f.ParentID != "" || !telemetrytest.Descends(spans, client, f) {
		t.Errorf("frame span %s/%s is not the root of the send's trace %s", f.TraceID, f.SpanID, server.TraceID)
	}
	// The delivery span ends once the frame is on Bea's socket, which may be just after
	// she read it: look for it only in what has been recorded.
	var d []telemetrytest.Span
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if d = rec.Find("deliver NEW_CHAT_MESSAGE"); len(d) > 0 {
			break
		}
	}
	if len(d) == 0 {
		t.Error("the edge recorded no delivery span for NEW_CHAT_MESSAGE")
	} else if d[0].TraceID != server.TraceID {
		t.Errorf("delivery span in trace %s, want the send's %s", d[0].TraceID, server.TraceID)
	}

	// Bea's edge reports the delivery: its MarkDelivered call is in the send's trace too.
	var receipts []telemetrytest.Span
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if receipts = rec.Find("delivery receipts"); len(receipts) > 0 {
			break
		}
	}
	if len(receipts) == 0 {
		t.Error("the edge recorded no delivery receipts span")
	} else if r := receipts[0]; r.TraceID != server.TraceID {
		t.Errorf("delivery receipts span in trace %s, want the send's %s", r.TraceID, server.TraceID)
	}

	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	if got := m.Sum("rpc_client_call_duration_seconds_count", `rpc_method="chat.v1.ChatService/SendMessages"`); got < 1 {
		t.Errorf("edge's SendMessages calls counted: got %v, want at least 1", got)
	}
}
