package edge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// connState is what the edge keeps per connection beside the hub's: its place in the user
// event log and the session it is bound to, which REFRESH_SESSION changes
// (docs/protocol.md §8.4).
type connState struct {
	e       *Edge
	c       *Conn
	cursor  *connCursor
	session atomic.Pointer[boundSession]

	refreshMu   sync.Mutex
	lastRefresh time.Time
}

// boundSession is the session a connection belongs to: closed with 4001 when it ends.
type boundSession struct {
	id        int64
	expiresAt int64 // Unix ms
}

// refreshInterval is the least time between two refreshes on one connection.
const refreshInterval = time.Minute

// errRefreshTooSoon answers a second REFRESH_SESSION within refreshInterval (429).
var errRefreshTooSoon = connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("REFRESH_SESSION: at most one per minute"))

// RefreshSession creates a new session for the connection's user (the default lifetime)
// and binds the connection to it; the old token stays valid until its own expiry.
func (s *connState) RefreshSession(ctx context.Context) (string, int64, error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if !s.lastRefresh.IsZero() && time.Since(s.lastRefresh) < refreshInterval {
		return "", 0, errRefreshTooSoon
	}
	res, err := s.e.clients.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: s.c.ID}))
	if err != nil {
		return "", 0, fmt.Errorf("create session: %w", err)
	}
	token := res.Msg.GetToken()
	// The new session's id, which revocation events name, comes with its resolution.
	_, data, err := s.e.auth.Resolve(ctx, token)
	if err != nil {
		return "", 0, fmt.Errorf("resolve the new session: %w", err)
	}
	s.session.Store(&boundSession{id: data.SessionID, expiresAt: data.ExpiresAt})
	s.lastRefresh = time.Now()
	return token, res.Msg.GetExpiresAt(), nil
}

// stateOf returns a connection's state (nil before onConnect made it or after
// onDisconnect dropped it).
func (e *Edge) stateOf(c *Conn) *connState {
	v, ok := e.conns.Load(c.ConnID())
	if !ok {
		return nil
	}
	return v.(*connState)
}

// sessionOf returns the session c is bound to now.
func (e *Edge) sessionOf(c *Conn) boundSession {
	if s := e.stateOf(c); s != nil {
		return *s.session.Load()
	}
	return boundSession{id: c.UserData.SessionID, expiresAt: c.UserData.ExpiresAt}
}
