package edge

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
)

// appendStatus appends a MESSAGE_STATUS_UPDATE for user to the fake log.
func appendStatus(f *fakes, user, messageID int64) {
	f.presence.appendEvent("chat", "", &chatv1.StreamEventsResponse{Event: &chatv1.StreamEventsResponse_MessageStatusUpdate{
		MessageStatusUpdate: &chatv1.MessageStatusUpdateEvent{ChatId: 5, MessageIds: []int64{messageID}, Status: chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED},
	}}, []int64{user})
}

// nextSeqs reads n events from c and returns their seqs.
func nextSeqs(t *testing.T, c *client, n int) []uint64 {
	t.Helper()
	var out []uint64
	for len(out) < n {
		f := c.next()
		if f.Seq == nil {
			t.Fatalf("%s without seq", f.Type)
		}
		out = append(out, *f.Seq)
	}
	return out
}

func waitLogOpen(t *testing.T, f *fakes) *presencev1.StreamUserEventsRequest {
	t.Helper()
	select {
	case r := <-f.presence.logOpens:
		return r
	case <-time.After(waitLimit):
		t.Fatal("the log stream was not opened")
	}
	return nil
}

// TestLogStreamReconnectLosesNothing: events appended while the edge's log stream is
// broken reach the connection after it reopens (from the last position seen), in order,
// once each.
func TestLogStreamReconnectLosesNothing(t *testing.T) {
	t.Parallel()
	te := startEdge(t, nil)
	first := waitLogOpen(t, te.f)
	if first.AfterPosition != nil {
		t.Fatalf("first open asked after position %d, want from now", first.GetAfterPosition())
	}
	c := te.dial(t, 2)
	appendStatus(te.f, 2, 1)
	if got := nextSeqs(t, c, 1); got[0] != 1 {
		t.Fatalf("first event seq %d, want 1", got[0])
	}
	te.f.presence.breakLog <- connect.NewError(connect.CodeUnavailable, errors.New("presence restarting"))
	appendStatus(te.f, 2, 2)
	appendStatus(te.f, 2, 3)
	reopen := waitLogOpen(t, te.f)
	if reopen.AfterPosition == nil {
		t.Fatal("reopened from now: events appended meanwhile would be lost")
	}
	appendStatus(te.f, 2, 4)
	if got := nextSeqs(t, c, 3); got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Fatalf("after the reconnect: seqs %v, want [2 3 4]", got)
	}
}

// TestLogStreamTooOldCatchesUpFromHistory: when the presence service no longer holds the
// position the edge continues from, the edge restarts from now and each connection reads
// what it missed from its user's history.
func TestLogStreamTooOldCatchesUpFromHistory(t *testing.T) {
	t.Parallel()
	te := startEdge(t, nil)
	waitLogOpen(t, te.f)
	c := te.dial(t, 3)
	appendStatus(te.f, 3, 1)
	nextSeqs(t, c, 1)
	te.f.presence.breakLog <- connect.NewError(connect.CodeOutOfRange, errors.New("position no longer held"))
	appendStatus(te.f, 3, 2)
	appendStatus(te.f, 3, 3)
	if reopen := waitLogOpen(t, te.f); reopen.AfterPosition != nil {
		t.Fatalf("after out_of_range the edge asked after %d again, want from now", reopen.GetAfterPosition())
	}
	if got := nextSeqs(t, c, 2); got[0] != 2 || got[1] != 3 {
		t.Fatalf("caught up seqs %v, want [2 3]", got)
	}
	appendStatus(te.f, 3, 4)
	if got := nextSeqs(t, c, 1); got[0] != 4 {
		t.Fatalf("live after catch-up: seq %d, want 4", got[0])
	}
}

// TestConnectedLastSeq: without resume, CONNECTED carries the user's last seq as
// presence's Connect answered it, and the edge reads nothing more; a Connect that could
// not tell (its log unreadable) makes the edge ask ReadUserEvents. Either way live events
// follow from that seq + 1.
func TestConnectedLastSeq(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		noLastSeq bool
		wantReads int64
	}{
		{"from Connect", false, 0},
		{"Connect could not tell", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			te := startEdgeWith(t, nil, func(f *fakes, _ *Edge) { f.presence.noLastSeq = tc.noLastSeq })
			waitLogOpen(t, te.f)
			for id := range int64(3) {
				appendStatus(te.f, 4, id+1)
			}
			c := te.dial(t, 4)
			var connected struct {
				LastSeq uint64 `json:"lastSeq"`
			}
			if err := json.Unmarshal(c.connected, &connected); err != nil || connected.LastSeq != 3 {
				t.Fatalf("CONNECTED %s: lastSeq %d (%v), want 3", c.connected, connected.LastSeq, err)
			}
			if got := te.f.presence.reads.Load(); got != tc.wantReads {
				t.Fatalf("ReadUserEvents calls: %d, want %d", got, tc.wantReads)
			}
			appendStatus(te.f, 4, 4)
			if got := nextSeqs(t, c, 1); got[0] != 4 {
				t.Fatalf("first live event: seq %d, want 4", got[0])
			}
		})
	}
}
