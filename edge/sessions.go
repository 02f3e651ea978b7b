package edge

import (
	"context"
	"time"

	"connectrpc.com/connect"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// Close code and reasons for an ended session (docs/protocol.md §2.6).
const (
	closeSessionEnded = 4001
	reasonExpired     = "session expired"
	reasonRevoked     = "session revoked"
	// checkBatch bounds the session ids of one CheckSessions call.
	checkBatch = 1000
)

// endSession closes every local connection of a session (profile's SessionEndedEvent) and
// forgets the session's cached token, so that it opens nothing new either.
func (e *Edge) endSession(users []int64, sessionID int64, state profilev1.SessionState) {
	e.auth.Forget(sessionID)
	reason := reasonRevoked
	if state == profilev1.SessionState_SESSION_STATE_EXPIRED {
		reason = reasonExpired
	}
	closeIt := func(c *Conn) {
		if e.sessionOf(c).id == sessionID {
			c.Close(closeSessionEnded, reason)
		}
	}
	if len(users) == 0 {
		e.hub.ForEach(closeIt)
		return
	}
	for _, uid := range users {
		for _, c := range e.hub.Connections(uid) {
			closeIt(c)
		}
	}
}

// watchSessions checks the sessions of every open connection every SessionCheckInterval:
// those past their expiry are closed at once, the others are asked to the profile service
// in batches, so that a revocation whose event was lost still closes its connections
// within the 60 s of docs/protocol.md §2.6.
func (e *Edge) watchSessions(ctx context.Context) {
	t := time.NewTicker(e.cfg.SessionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.checkSessions(ctx)
	}
}

func (e *Edge) checkSessions(ctx context.Context) {
	now := time.Now().UnixMilli()
	bySession := make(map[int64][]*Conn)
	e.hub.ForEach(func(c *Conn) {
		s := e.sessionOf(c)
		if s.expiresAt <= now {
			c.Close(closeSessionEnded, reasonExpired)
			return
		}
		bySession[s.id] = append(bySession[s.id], c)
	})
	ids := make([]int64, 0, len(bySession))
	for id := range bySession {
		ids = append(ids, id)
	}
	for len(ids) > 0 && ctx.Err() == nil {
		n := min(len(ids), checkBatch)
		batch := ids[:n]
		ids = ids[n:]
		cctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		res, err := e.clients.Profile.CheckSessions(cctx, connect.NewRequest(&profilev1.CheckSessionsRequest{SessionIds: batch}))
		cancel()
		if err != nil {
			e.log.Warn("check sessions", "sessions", len(batch), "err", err)
			continue
		}
		for _, s := range res.Msg.GetSessions() {
			var reason string
			switch s.GetState() {
			case profilev1.SessionState_SESSION_STATE_EXPIRED:
				reason = reasonExpired
			case profilev1.SessionState_SESSION_STATE_REVOKED:
				reason = reasonRevoked
			default:
				continue
			}
			e.auth.Forget(s.GetSessionId())
			for _, c := range bySession[s.GetSessionId()] {
				c.Close(closeSessionEnded, reason)
			}
		}
	}
}
