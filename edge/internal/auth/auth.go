// Package auth authenticates WebSocket handshakes (docs/protocol.md §2.1–§2.3): it reads the
// session token from the query or the Authorization header, resolves it through the
// profile service, and remembers recent answers in a small cache so that a reconnect storm
// does not cost one database query per handshake.
//
// The cache is keyed by a SHA-256 of the token (the token itself is never stored or
// logged), bounded in entries and short-lived (TTL ≤ 10 s), so a revoked token can open new
// connections for at most TTL after revocation; connections already open are closed by the
// session watcher (package sessions) within the 60 s of docs/protocol.md §2.6. Concurrent handshakes with
// the same token share one lookup. Authenticator is safe for concurrent use.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/door"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// UserData is what the edge keeps per connection about its session (the user, and the
// session it belongs to so that it can be closed when the session ends).
type UserData struct {
	SessionID int64
	// ExpiresAt is the session's expiry in Unix milliseconds.
	ExpiresAt int64
	Username  string
	FirstName string
	LastName  string
	// Resuming and Resume: the handshake asked to resume after seq Resume
	// (docs/protocol.md §8.3). Set by the edge, not by the session.
	Resuming bool
	Resume   uint64
}

// Resolver turns a token into its session: the profile service's ResolveSession.
type Resolver interface {
	ResolveSession(context.Context, *connect.Request[profilev1.ResolveSessionRequest]) (*connect.Response[profilev1.ResolveSessionResponse], error)
}

// Refusal is a handshake refusal with its HTTP status and a client-safe message.
type Refusal struct {
	Status  int
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Refusals, as docs/protocol.md §2.3 words them.
var (
	ErrNoToken       = &Refusal{Status: http.StatusUnauthorized, Message: "missing session token"}
	ErrTokenMismatch = &Refusal{Status: http.StatusUnauthorized, Message: "query and header carry different tokens"}
	ErrInvalidToken  = &Refusal{Status: http.StatusUnauthorized, Message: "invalid, expired or revoked session token"}
	ErrUnavailable   = &Refusal{Status: http.StatusServiceUnavailable, Message: "authentication temporarily unavailable"}
	ErrTooManyFailed = &Refusal{Status: http.StatusTooManyRequests, Message: "too many failed handshakes; try again later"}
)

// Defaults of the cache.
const (
	DefaultCacheTTL     = 5 * time.Second
	MaxCacheTTL         = 10 * time.Second
	DefaultCacheEntries = 10000
	// lookupTimeout bounds one ResolveSession call during a handshake.
	lookupTimeout = 5 * time.Second
)

// Options configure an Authenticator.
type Options struct {
	// CacheTTL is how long a resolved session is reused; 0 means DefaultCacheTTL, and it
	// is capped at MaxCacheTTL. Negative disables the cache.
	CacheTTL time.Duration
	// CacheEntries bounds the cache; 0 means DefaultCacheEntries.
	CacheEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives failed attempts, never with the token.
	Log *slog.Logger
	// Door limits failed handshakes per client address (package door); nil means no limit.
	Door *door.Door
}

type key [sha256.Size]byte

type entry struct {
	userID  int64
	data    UserData
	fetched time.Time
}

type call struct {
	done   chan struct{}
	userID int64
	data   UserData
	err    error
}

// Authenticator resolves handshake tokens.
type Authenticator struct {
	resolver Resolver
	ttl      time.Duration
	max      int
	now      func() time.Time
	log      *slog.Logger
	door     *door.Door

	mu        sync.Mutex
	cache     map[key]entry
	inflight  map[key]*call
	lookups   int64 // ResolveSession calls made, for tests and metrics
	lastSweep time.Time
}

// New returns an Authenticator over r.
func New(r Resolver, o Options) *Authenticator {
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.CacheTTL > MaxCacheTTL {
		o.CacheTTL = MaxCacheTTL
	}
	if o.CacheEntries <= 0 {
		o.CacheEntries = DefaultCacheEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Authenticator{
		resolver: r, ttl: o.CacheTTL, max: o.CacheEntries, now: o.Now, log: o.Log, door: o.Door,
		cache: make(map[key]entry), inflight: make(map[key]*call),
	}
}

// Token extracts the session token of a handshake: ?token= (a leading "Bearer " stripped,
// docs/protocol.md §2.1) or "Authorization: Bearer". Both present and different is refused.
func Token(r *http.Request) (string, error) {
	q := strings.TrimPrefix(r.URL.Query().Get("token"), "Bearer ")
	h := ""
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, rest, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", ErrInvalidToken
		}
		h = strings.TrimSpace(rest)
	}
	switch {
	case q != "" && h != "" && q != h:
		return "", ErrTokenMismatch
	case q != "":
		return q, nil
	case h != "":
		return h, nil
	}
	return "", ErrNoToken
}

// Authenticate resolves the handshake's token into the session's user. Its errors are
// *Refusal values. A client address that failed too often recently (the Door) is refused
// with 429 before its token is even read; every refusal that is the client's fault (not
// 503) counts as a failure of its address.
func (a *Authenticator) Authenticate(r *http.Request) (int64, UserData, error) {
	if a.door != nil && !a.door.Allowed(r) {
		a.log.Debug("handshake refused: too many failures", "remote", r.RemoteAddr)
		return 0, UserData{}, ErrTooManyFailed
	}
	tok, err := Token(r)
	if err != nil {
		a.refused(r, err.(*Refusal), nil)
		return 0, UserData{}, err
	}
	id, data, err := a.Resolve(r.Context(), tok)
	if err != nil {
		var ref *Refusal
		if !errors.As(err, &ref) {
			ref = ErrUnavailable
		}
		a.refused(r, ref, err)
		return 0, UserData{}, ref
	}
	return id, data, nil
}

// refused logs a failed attempt: where it came from and why, never the token; and counts
// it against the client's address unless the failure was the service's.
func (a *Authenticator) refused(r *http.Request, ref *Refusal, cause error) {
	if a.door != nil && ref.Status != http.StatusServiceUnavailable {
		a.door.Failed(r)
	}
	attrs := []any{"status", ref.Status, "reason", ref.Message, "remote", r.RemoteAddr}
	if cause != nil && !errors.Is(cause, ErrInvalidToken) {
		attrs = append(attrs, "err", cause)
	}
	a.log.Info("authentication failed", attrs...)
}

// Resolve returns the user and session of tok, from the cache when fresh.
func (a *Authenticator) Resolve(ctx context.Context, tok string) (int64, UserData, error) {
	k := key(sha256.Sum256([]byte(tok)))
	now := a.now()
	a.mu.Lock()
	if e, ok := a.cache[k]; ok {
		if now.Sub(e.fetched) < a.ttl && now.UnixMilli() < e.data.ExpiresAt {
			a.mu.Unlock()
			return e.userID, e.data, nil
		}
		delete(a.cache, k)
	}
	if c, ok := a.inflight[k]; ok {
		a.mu.Unlock()
		select {
		case <-c.done:
			return c.userID, c.data, c.err
		case <-ctx.Done():
			return 0, UserData{}, ErrUnavailable
		}
	}
	c := &call{done: make(chan struct{})}
	a.inflight[k] = c
	a.lookups++
	a.mu.Unlock()

	c.userID, c.data, c.err = a.lookup(tok)

	a.mu.Lock()
	delete(a.inflight, k)
	if c.err == nil && a.ttl > 0 {
		a.store(k, entry{userID: c.userID, data: c.data, fetched: now})
	}
	a.mu.Unlock()
	close(c.done)
	return c.userID, c.data, c.err
}

// lookup calls the profile service. It does not use the handshake's context: the answer
// is shared by every handshake waiting for the same token, and one client giving up must
// not fail the others.
func (a *Authenticator) lookup(tok string) (int64, UserData, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	res, err := a.resolver.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: tok}))
	if err != nil {
		switch connect.CodeOf(err) {
		case connect.CodeUnauthenticated, connect.CodeNotFound, connect.CodeInvalidArgument, connect.CodePermissionDenied:
			return 0, UserData{}, ErrInvalidToken
		}
		return 0, UserData{}, err
	}
	m := res.Msg
	u := m.GetUser()
	if u.GetId() <= 0 || m.GetExpiresAt() <= a.now().UnixMilli() {
		return 0, UserData{}, ErrInvalidToken
	}
	return u.GetId(), UserData{
		SessionID: m.GetSessionId(), ExpiresAt: m.GetExpiresAt(),
		Username: u.GetUserName(), FirstName: u.GetFirstName(), LastName: u.GetLastName(),
	}, nil
}

// store adds e, making room first: expired entries go (at most one sweep per quarter TTL,
// so that a full cache of fresh entries does not cost a sweep per handshake), and if the
// cache is still full one arbitrary entry (map order is random) is evicted. Called with
// a.mu held.
func (a *Authenticator) store(k key, e entry) {
	if len(a.cache) >= a.max {
		now := a.now()
		if now.Sub(a.lastSweep) >= a.ttl/4 {
			a.lastSweep = now
			for kk, ee := range a.cache {
				if now.Sub(ee.fetched) >= a.ttl {
					delete(a.cache, kk)
				}
			}
		}
		for kk := range a.cache {
			if len(a.cache) < a.max {
				break
			}
			delete(a.cache, kk)
		}
	}
	a.cache[k] = e
}

// Forget drops every cached entry of a session, so that a revoked session cannot open new
// connections from the cache either.
func (a *Authenticator) Forget(sessionID int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.cache {
		if e.data.SessionID == sessionID {
			delete(a.cache, k)
		}
	}
}

// Lookups returns how many ResolveSession calls were made.
func (a *Authenticator) Lookups() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lookups
}

// Len returns the number of cached entries.
func (a *Authenticator) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.cache)
}
