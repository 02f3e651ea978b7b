// Package e2e holds end-to-end tests over a whole Charla started in the test process.
package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/edge/edgemetrics"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/telemetry"
	"github.com/charla/charla/shared/telemetry/telemetrytest"

	"github.com/charla/charla/cmd/internal/system"
	"github.com/charla/charla/cmd/internal/system/systemtest"
)

// startTraced starts a whole Charla whose services and clients report to a recorder.
func startTraced(t *testing.T) (*systemtest.System, *telemetry.Telemetry, *telemetrytest.Recorder) {
	t.Helper()
	tel, rec := telemetrytest.New(t) // before the databases are opened
	sys := systemtest.Start(t, systemtest.Options{Options: func(o *system.Options) {
		o.Telemetry = tel
	}})
	return sys, tel, rec
}

// TestSendTrace follows one SEND_CHAT_MESSAGE: the frame span the edge starts, the Connect
// call into chatsvc, chatsvc's statements, and the delivery of NEW_CHAT_MESSAGE to the
// recipient's connection, all in one trace. This test plays the edge's part with the calls
// the edge makes (edgemetrics, presence Connect, presence StreamUserEvents), so it does not
// depend on the WebSocket layer.
func TestSendTrace(t *testing.T) {
	sys, tel, rec := startTraced(t)
	ana, bea := sys.NewUser(t, "ana"), sys.NewUser(t, "bea")
	chatID := sys.Contact(t, ana, bea)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Bea is connected on edge "e2e".
	const edgeID, connID = "e2e", "conn-bea-1"
	if _, err := sys.Clients.Presence.RegisterEdge(ctx, connect.NewRequest(&presencev1.RegisterEdgeRequest{EdgeId: edgeID})); err != nil {
		t.Fatalf("RegisterEdge: %v", err)
	}
	if _, err := sys.Clients.Presence.Connect(ctx, connect.NewRequest(&presencev1.ConnectRequest{EdgeId: edgeID, UserId: bea.ID, ConnectionId: connID})); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	// The call returns once the first event has arrived (the handler sends no headers
	// before), so the stream is read on its own goroutine, as the edge does.
	events := make(chan *chatv1.StreamEventsResponse, 16)
	streamErr := make(chan error, 1)
	go func() {
		defer close(events)
		stream, err := sys.Clients.Presence.StreamUserEvents(ctx, connect.NewRequest(&presencev1.StreamUserEventsRequest{EdgeId: edgeID}))
		if err != nil {
			streamErr <- err
			return
		}
		defer stream.Close()
		for stream.Receive() {
			if len(stream.Msg().GetEvents()) == 0 {
				events <- &chatv1.StreamEventsResponse{} // the stream's first message: it is live
			}
			for _, ue := range stream.Msg().GetEvents() {
				m := new(chatv1.StreamEventsResponse)
				if ue.GetService() == "chat" && proto.Unmarshal(ue.GetEvent(), m) == nil {
					events <- m
				}
			}
		}
		streamErr <- stream.Err()
	}()
	// The log stream is live from its first message on: wait for it, so the message
	// cannot be published before.
	waitStream(t, ctx, events, func() {
		if _, err := sys.Clients.Chat.SetTyping(ctx, connect.NewRequest(&chatv1.SetTypingRequest{UserId: ana.ID, ChatId: chatID, IsTyping: true})); err != nil {
			t.Fatalf("SetTyping: %v", err)
		}
	})
	rec.Reset()

	edge := edgemetrics.New(tel)
	const text = "hola, traza"
	fctx, end := edge.StartFrameSpan(ctx, "SEND_CHAT_MESSAGE", ana.ID, "c-17")
	edge.FrameReceived(fctx, "SEND_CHAT_MESSAGE")
	res, err := sys.Clients.Chat.SendMessage(fctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: ana.ID, ToUserId: bea.ID, Text: text}))
	if err != nil {
		end(500)
		t.Fatalf("SendMessage: %v", err)
	}
	edge.FrameResult(fctx, "SEND_CHAT_MESSAGE", 200)
	end(200)

	var ev *chatv1.StreamEventsResponse
	for m := range events {
		if m.GetNewChatMessage().GetMessage().GetId() == res.Msg.GetMessageId() {
			ev = m
			break
		}
	}
	if ev == nil {
		t.Fatalf("no NEW_CHAT_MESSAGE for message %d: %v", res.Msg.GetMessageId(), <-streamErr)
	}
	// What the edge does for each connection it writes the event to.
	_, done := edge.StartDeliverySpan(ctx, ev.GetTraceContext(), "NEW_CHAT_MESSAGE", bea.ID, connID)
	edge.EventDelivered(ctx, "chat", "NEW_CHAT_MESSAGE", time.Since(time.UnixMilli(ev.GetNewChatMessage().GetMessage().GetTimestamp())))
	done()

	frames := rec.Find("SEND_CHAT_MESSAGE")
	if len(frames) != 1 {
		t.Fatalf("frame spans: got %d, want 1", len(frames))
	}
	frame := frames[0]
	spans := rec.Trace(frame.TraceID)
	var client, server, delivery telemetrytest.Span
	var statements []telemetrytest.Span
	for _, s := range spans {
		switch {
		case s.Name == "chat.v1.ChatService/SendMessage" && s.Kind == "client":
			client = s
		case s.Name == "chat.v1.ChatService/SendMessage" && s.Kind == "server":
			server = s
		case s.Name == "deliver NEW_CHAT_MESSAGE":
			delivery = s
		case s.Attrs["db.query.text"] != "":
			statements = append(statements, s)
		}
		for k, v := range s.Attrs {
			if strings.Contains(v, text) {
				t.Errorf("span %q attribute %s carries the message text", s.Name, k)
			}
		}
	}
	if frame.ParentID != "" {
		t.Errorf("frame span has a parent; want a root")
	}
	for _, c := range []struct {
		name          string
		span, ancestr telemetrytest.Span
	}{{"client", client, frame}, {"server", server, client}, {"delivery", delivery, frame}} {
		if c.span.SpanID == "" {
			t.Errorf("no %s span in the frame's trace", c.name)
			continue
		}
		if !telemetrytest.Descends(spans, c.span, c.ancestr) {
			t.Errorf("%s span %s does not descend from %s", c.name, c.span.Name, c.ancestr.Name)
		}
	}
	// chatsvc's own statements (the contact check at least) sit under its server span.
	var underServer, insert int
	for _, s := range statements {
		if telemetrytest.Descends(spans, s, server) {
			underServer++
		}
		if s.Name == "INSERT ChatMessage" && s.Attrs["db.collection.name"] == "ChatMessage" {
			insert++
		}
	}
	if underServer == 0 {
		t.Errorf("no statement span under the SendMessage server span (%d statements in the trace)", len(statements))
	}
	if insert == 0 {
		// chatsvc stores messages through a group-commit writer; its batch span
		// (telemetry.StartBatchSpan) puts the INSERT in the trace of the first traced send.
		t.Errorf("the INSERT INTO ChatMessage is not in the send's trace (%d statements in the trace)", len(statements))
	}

	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"rpc_server_call_duration_seconds_count", []string{`rpc_method="chat.v1.ChatService/SendMessage"`}},
		{"db_client_operation_duration_seconds_count", nil},
		{"charla_edge_frames_total", []string{`charla_message_type="SEND_CHAT_MESSAGE"`}},
		{"charla_event_delivery_lag_seconds_count", []string{`charla_service="chat"`}},
		// Every service's pool, by its name.
		{"go_sql_max_open_connections", []string{`db_name="chatsvc"`}},
		{"go_sql_max_open_connections", []string{`db_name="profilesvc"`}},
		{"go_sql_max_open_connections", []string{`db_name="notifysvc"`}},
		{"go_sql_max_open_connections", []string{`db_name="presencesvc"`}},
		{"charla_build_info", nil},
	} {
		if got := m.Sum(c.name, c.labels...); got < 1 {
			t.Errorf("%s%v: got %v, want at least 1\n%s", c.name, c.labels, got, m.Grep(c.name))
		}
	}
}

// waitStream calls poke until an event arrives on events: a readiness probe, not a timed
// assertion (the test's context bounds it).
func waitStream(t *testing.T, ctx context.Context, events <-chan *chatv1.StreamEventsResponse, poke func()) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	poke()
	for {
		select {
		case _, ok := <-events:
			if !ok {
				t.Fatal("event stream ended before the first event")
			}
			return
		case <-tick.C:
			poke()
		case <-ctx.Done():
			t.Fatal("event stream never delivered the typing indicator")
		}
	}
}
