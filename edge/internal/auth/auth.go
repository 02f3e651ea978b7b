// Package auth authenticates WebSocket handshakes (docs/protocol.md §2.1–§2.3): it reads the
// session token from the query or the Authorization header, resolves it through the
// profile service, and remembers recent answers in a small cache so that a reconnect storm
// does not cost one database query per handshake.
//
// The cache is keyed by a SHA-256 of the token (the token itself is never stored or
// logged), bounded in entries (least recently used first out, hashicorp/golang-lru's
// simplelru under the Authenticator's lock) and short-lived (TTL ≤ 10 s, on the
// Authenticator's clock), so a revoked token can open new connections for at most TTL
// after revocation; connections already open are closed by the session watcher
// (sessions.go) within the 60 s of docs/protocol.md §2.6. Forget (a SESSION_ENDED
// event, or the watcher finding a session ended) drops a session's entries at once, and
// an answer that was already on its way when Forget ran is not cached.
//
// Concurrent handshakes with the same token share one lookup (golang.org/x/sync's
// singleflight). The expirable LRU of the same library would add a cleanup goroutine per
// cache that nothing can stop (hashicorp/golang-lru#159); entries here expire when read,
// and the size bound reclaims the rest.
//
// Authenticator is safe for concurrent use. It logs nothing: the hub logs each refused
// handshake once, with the Refusal's reason.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"

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

// Refusal is a handshake refusal with its HTTP status, a client-safe message and a
// short reason code for logs and metrics.
type Refusal struct {
	Status  int
	Message string
	Reason  string
}

func (r *Refusal) Error() string { return r.Message }

// Refusals, as docs/protocol.md §2.3 words them. The profile service gives one answer for
// an unknown, revoked or expired token, so they share ErrInvalidToken.
var (
	ErrNoToken       = &Refusal{Status: http.StatusUnauthorized, Message: "missing session token", Reason: "no_token"}
	ErrTokenMismatch = &Refusal{Status: http.StatusUnauthorized, Message: "query and header carry different tokens", Reason: "token_mismatch"}
	ErrInvalidToken  = &Refusal{Status: http.StatusUnauthorized, Message: "invalid, expired or revoked session token", Reason: "invalid_token"}
	ErrUnavailable   = &Refusal{Status: http.StatusServiceUnavailable, Message: "authentication temporarily unavailable", Reason: "auth_unavailable"}
	ErrTooManyFailed = &Refusal{Status: http.StatusTooManyRequests, Message: "too many failed handshakes; try again later", Reason: "too_many_failures"}
)

// RefusalReasons are the reasons of every Refusal, for metrics that show each from the start.
var RefusalReasons = []string{ErrNoToken.Reason, ErrTokenMismatch.Reason, ErrInvalidToken.Reason, ErrUnavailable.Reason, ErrTooManyFailed.Reason}

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
	// Door limits failed handshakes per client address (package door); nil means no limit.
	Door *door.Door
}

type key [sha256.Size]byte

type entry struct {
	userID  int64
	data    UserData
	fetched time.Time
}

type result struct {
	userID int64
	data   UserData
}

// Authenticator resolves handshake tokens.
type Authenticator struct {
	resolver Resolver
	ttl      time.Duration
	now      func() time.Time
	door     *door.Door
	flight   singleflight.Group

	mu       sync.Mutex
	cache    *simplelru.LRU[key, entry] // nil when the cache is off
	sessions map[int64]map[key]struct{} // the cached keys of each session, for Forget
	gen      uint64                     // bumped by Forget: answers asked for before are not cached
	lookups  int64                      // ResolveSession calls made, for tests
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
	a := &Authenticator{resolver: r, ttl: o.CacheTTL, now: o.Now, door: o.Door, sessions: make(map[int64]map[key]struct{})}
	if a.ttl > 0 {
		// NewLRU fails only for a size ≤ 0, which CacheEntries is not.
		a.cache, _ = simplelru.NewLRU(o.CacheEntries, a.evicted)
	}
	return a
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
// (or wrap, with the cause) *Refusal values. A client address that failed too often
// recently (the Door) is refused with 429 before its token is even read; every refusal
// that is the client's fault (not 503) counts as a failure of its address.
func (a *Authenticator) Authenticate(r *http.Request) (int64, UserData, error) {
	if a.door != nil && !a.door.Allowed(r) {
		return 0, UserData{}, ErrTooManyFailed
	}
	tok, err := Token(r)
	if err != nil {
		a.failed(r, err.(*Refusal))
		return 0, UserData{}, err
	}
	id, data, err := a.Resolve(r.Context(), tok)
	if err != nil {
		var ref *Refusal
		if !errors.As(err, &ref) {
			ref, err = ErrUnavailable, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		a.failed(r, ref)
		return 0, UserData{}, err
	}
	return id, data, nil
}

// failed counts a refusal against the client's address unless it was the service's fault.
func (a *Authenticator) failed(r *http.Request, ref *Refusal) {
	if a.door != nil && ref.Status != http.StatusServiceUnavailable {
		a.door.Failed(r)
	}
}

// Resolve returns the user and session of tok, from the cache when fresh. Concurrent
// calls for one token share one lookup; a caller whose ctx ends stops waiting for it
// (ErrUnavailable) without failing the others.
func (a *Authenticator) Resolve(ctx context.Context, tok string) (int64, UserData, error) {
	k := key(sha256.Sum256([]byte(tok)))
	a.mu.Lock()
	if e, ok := a.cached(k); ok {
		a.mu.Unlock()
		return e.userID, e.data, nil
	}
	gen := a.gen
	a.mu.Unlock()

	// The generation is part of the flight's key: a handshake arriving after Forget does
	// not join a lookup that started before it.
	ch := a.flight.DoChan(string(k[:])+strconv.FormatUint(gen, 36), func() (any, error) {
		a.mu.Lock()
		a.lookups++
		a.mu.Unlock()
		fetched := a.now()
		id, data, err := a.lookup(tok)
		if err != nil {
			return nil, err
		}
		a.mu.Lock()
		if a.cache != nil && a.gen == gen {
			a.store(k, entry{userID: id, data: data, fetched: fetched})
		}
		a.mu.Unlock()
		return result{id, data}, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return 0, UserData{}, res.Err
		}
		r := res.Val.(result)
		return r.userID, r.data, nil
	case <-ctx.Done():
		return 0, UserData{}, ErrUnavailable
	}
}

// cached returns the fresh entry of k, dropping a stale one. Called with a.mu held.
func (a *Authenticator) cached(k key) (entry, bool) {
	if a.cache == nil {
		return entry{}, false
	}
	e, ok := a.cache.Get(k)
	if !ok {
		return entry{}, false
	}
	now := a.now()
	if now.Sub(e.fetched) >= a.ttl || now.UnixMilli() >= e.data.ExpiresAt {
		a.cache.Remove(k)
		return entry{}, false
	}
	return e, true
}

// store caches e under k; the least recently used entry makes room. Called with a.mu held.
func (a *Authenticator) store(k key, e entry) {
	if old, ok := a.cache.Peek(k); ok && old.data.SessionID != e.data.SessionID {
		a.cache.Remove(k)
	}
	a.cache.Add(k, e)
	keys := a.sessions[e.data.SessionID]
	if keys == nil {
		keys = make(map[key]struct{}, 1)
		a.sessions[e.data.SessionID] = keys
	}
	keys[k] = struct{}{}
}

// evicted keeps the session index in step with the cache: simplelru calls it for every
// entry that leaves (Remove, or room made by Add), under a.mu.
func (a *Authenticator) evicted(k key, e entry) {
	keys := a.sessions[e.data.SessionID]
	delete(keys, k)
	if len(keys) == 0 {
		delete(a.sessions, e.data.SessionID)
	}
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
		return 0, UserData{}, fmt.Errorf("resolve session: %w", err)
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

// Forget drops every cached entry of a session, so that a revoked session cannot open new
// connections from the cache either; a lookup already under way is not cached, and later
// handshakes do not share it.
func (a *Authenticator) Forget(sessionID int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	if a.cache == nil {
		return
	}
	for k := range a.sessions[sessionID] {
		a.cache.Remove(k) // evicted updates a.sessions
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
	if a.cache == nil {
		return 0
	}
	return a.cache.Len()
}
