package apart

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/peers"
)

// histRecord is one record of a user's history, as the check compares it.
type histRecord struct {
	Type    string // the frame type the edge writes; empty: none (its seq still counts)
	Key     string // as eventKey names the frame
	Exclude string // the connection that caused it
}

// history is a user's whole event history (every record is held: the test stays far below
// RESUME_MAX_EVENTS per user).
type history struct {
	records map[uint64]histRecord
	last    uint64
}

// readHistory reads user's history from presence (ReadUserEvents after 0).
func readHistory(ctx context.Context, c *peers.Clients, user int64) (history, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.Presence.ReadUserEvents(ctx, connect.NewRequest(&presencev1.ReadUserEventsRequest{UserId: user}))
	if err != nil {
		return history{}, fmt.Errorf("read the history of user %d: %w", user, err)
	}
	if !res.Msg.GetComplete() {
		return history{}, fmt.Errorf("history of user %d is not complete (last seq %d): more than RESUME_MAX_EVENTS?", user, res.Msg.GetLastSeq())
	}
	h := history{records: map[uint64]histRecord{}, last: res.Msg.GetLastSeq()}
	for i, ue := range res.Msg.GetEvents() {
		if ue.GetSeq() != uint64(i)+1 {
			return history{}, fmt.Errorf("history of user %d: record %d has seq %d, want %d", user, i, ue.GetSeq(), i+1)
		}
		typ, key, err := historyKey(ue)
		if err != nil {
			return history{}, fmt.Errorf("history of user %d, seq %d: %w", user, ue.GetSeq(), err)
		}
		h.records[ue.GetSeq()] = histRecord{Type: typ, Key: key, Exclude: ue.GetExcludeConnectionId()}
	}
	if uint64(len(h.records)) != h.last {
		return history{}, fmt.Errorf("history of user %d: %d records for last seq %d", user, len(h.records), h.last)
	}
	return h, nil
}

// historyKey decodes a record's event into the frame type and key the edge would write.
func historyKey(ue *presencev1.UserEvent) (typ, key string, err error) {
	switch ue.GetService() {
	case "chat":
		m := new(chatv1.StreamEventsResponse)
		if err := proto.Unmarshal(ue.GetEvent(), m); err != nil {
			return "", "", err
		}
		if nm := m.GetNewChatMessage(); nm != nil {
			return "NEW_CHAT_MESSAGE", "msg:" + strconv.FormatInt(nm.GetMessage().GetId(), 10), nil
		}
		if su := m.GetMessageStatusUpdate(); su != nil {
			ids := make([]string, len(su.GetMessageIds()))
			for i, id := range su.GetMessageIds() {
				ids[i] = strconv.FormatInt(id, 10)
			}
			status := map[chatv1.MessageStatus]string{
				chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED: "delivered",
				chatv1.MessageStatus_MESSAGE_STATUS_READ:      "read",
			}[su.GetStatus()]
			return "MESSAGE_STATUS_UPDATE", "status:" + status + ":" + strings.Join(ids, ","), nil
		}
	case "notify":
		m := new(notifyv1.StreamEventsResponse)
		if err := proto.Unmarshal(ue.GetEvent(), m); err != nil {
			return "", "", err
		}
		if n := m.GetNewNotification(); n != nil {
			return "NEW_NOTIFICATION", "notification:" + strconv.FormatInt(n.GetId(), 10), nil
		}
	case "presence":
		m := new(presencev1.StreamEventsResponse)
		if err := proto.Unmarshal(ue.GetEvent(), m); err != nil {
			return "", "", err
		}
		if p := m.GetPresence(); p != nil {
			ev := "user_offline"
			if p.GetIsOnline() {
				ev = "user_online"
			}
			return "PRESENCE_EVENT", fmt.Sprintf("presence:%d:%s", p.GetUserId(), ev), nil
		}
	}
	return "", "", nil
}

// expected lists the seqs connection c must have received, in order, up to upTo: on
// resume, every held record after the resumed seq up to CONNECTED's lastSeq (replayed,
// including those its user's earlier connections caused); then every record above lastSeq
// except those c caused itself (§8.2, §8.3). Records the edge writes nothing for are
// skipped (none are expected).
func expected(c connLog, h history, upTo uint64) []uint64 {
	start := c.hello.LastSeq
	if c.resumeFrom != nil {
		start = *c.resumeFrom
	}
	var out []uint64
	for s := start + 1; s <= upTo; s++ {
		r, ok := h.records[s]
		if !ok || r.Type == "" {
			continue
		}
		if s > c.hello.LastSeq && r.Exclude != "" && r.Exclude == c.hello.ConnectionID {
			continue
		}
		out = append(out, s)
	}
	return out
}

// checkDevice compares everything d received with its user's history h: every connection
// got exactly the seqs it should, in order, each with the record's type and key; a resume
// asked from the highest seq seen before and was answered "ok"; the last connection has
// everything up to h.last. It returns the problems found.
func checkDevice(d *device, h history) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, d.name+": "+fmt.Sprintf(format, args...))
	}
	conns := d.snapshot()
	var seen uint64 // the highest seq of the earlier connections
	for i, c := range conns {
		if c.hello.UserID != d.userID {
			bad("connection %d: CONNECTED for user %d", i, c.hello.UserID)
		}
		switch {
		case c.resumeFrom == nil && c.hello.Resume != "none":
			bad("connection %d without resume: CONNECTED resume %q, want none", i, c.hello.Resume)
		case c.resumeFrom != nil && *c.resumeFrom != seen:
			bad("connection %d resumed from %d, but the device had seen up to %d", i, *c.resumeFrom, seen)
		case c.resumeFrom != nil && c.hello.Resume != "ok":
			bad("connection %d (on %s): resume from %d answered %q, want ok", i, c.edge, *c.resumeFrom, c.hello.Resume)
		}
		var got []uint64
		for _, e := range c.events {
			if e.Seq == 0 {
				bad("connection %d: %s without seq: %s", i, e.Type, e.Key)
				continue
			}
			got = append(got, e.Seq)
			r, ok := h.records[e.Seq]
			switch {
			case !ok && e.Seq <= h.last:
				bad("connection %d: seq %d (%s) is not in the history", i, e.Seq, e.Key)
			case ok && (r.Type != e.Type || r.Key != e.Key):
				bad("connection %d: seq %d is %s %s, the history says %s %s", i, e.Seq, e.Type, e.Key, r.Type, r.Key)
			}
		}
		upTo := h.last
		if i < len(conns)-1 {
			upTo = 0
			if len(got) > 0 {
				upTo = got[len(got)-1]
			}
		}
		want := expected(c, h, upTo)
		var gotUpTo []uint64
		for _, s := range got {
			if s <= upTo {
				gotUpTo = append(gotUpTo, s)
			}
		}
		if diff := seqDiff(gotUpTo, want); diff != "" {
			bad("connection %d (on %s, lastSeq %d, resume from %s): %s", i, c.edge, c.hello.LastSeq, fmtResume(c.resumeFrom), diff)
		}
		if len(got) > 0 {
			seen = max(seen, got[len(got)-1])
		}
	}
	return problems
}

func fmtResume(r *uint64) string {
	if r == nil {
		return "none"
	}
	return strconv.FormatUint(*r, 10)
}

// seqDiff describes how got differs from want ("" when equal): duplicates, disorder,
// missing and extra seqs.
func seqDiff(got, want []uint64) string {
	var parts []string
	count := map[uint64]int{}
	for i, s := range got {
		count[s]++
		if count[s] == 2 {
			parts = append(parts, fmt.Sprintf("seq %d twice", s))
		}
		if i > 0 && s <= got[i-1] && count[s] == 1 {
			parts = append(parts, fmt.Sprintf("seq %d after %d", s, got[i-1]))
		}
	}
	wanted := map[uint64]bool{}
	var missing, extra []uint64
	for _, s := range want {
		wanted[s] = true
		if count[s] == 0 {
			missing = append(missing, s)
		}
	}
	for s := range count {
		if !wanted[s] {
			extra = append(extra, s)
		}
	}
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("missing seqs %v", missing))
	}
	if len(extra) > 0 {
		parts = append(parts, fmt.Sprintf("unexpected seqs %v", extra))
	}
	return strings.Join(parts, "; ")
}

// lastExpected is the highest seq up to h.last that d's newest connection must receive.
func lastExpected(d *device, h history) uint64 {
	conns := d.snapshot()
	if len(conns) == 0 {
		return 0
	}
	want := expected(conns[len(conns)-1], h, h.last)
	if len(want) == 0 {
		return 0
	}
	return want[len(want)-1]
}
