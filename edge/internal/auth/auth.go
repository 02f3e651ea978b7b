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
// The lookups of different tokens share RPCs: while one ResolveSessions call is in
// flight, the lookups that arrive wait and go out together in the next
// (edge/internal/coalesce), so a burst of handshakes costs the profile service a few
// queries rather than one each. A profile service that predates ResolveSessions answers
// it unimplemented; the edge then resolves each token of that batch with ResolveSession,
// and so every later batch for a while (singleRetry) before trying again, so that a
// rolling upgrade of either side keeps handshakes working.
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
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"

	"github.com/charla/charla/edge/internal/coalesce"
	"github.com/charla/charla/edge/internal/door"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/rpc"
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

// Resolver turns tokens into their sessions: the profile service's ResolveSessions, and
// ResolveSession for a profile service that predates it
// (profilev1connect.ProfileServiceClient satisfies it).
type Resolver interface {
	ResolveSession(context.Context, *connect.Request[profilev1.ResolveSessionRequest]) (*connect.Response[profilev1.ResolveSessionResponse], error)
	ResolveSessions(context.Context, *connect.Request[profilev1.ResolveSessionsRequest]) (*connect.Response[profilev1.ResolveSessionsResponse], error)
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
	// lookupTimeout bounds one batch call: ResolveSessions, or the ResolveSession calls
	// that stand for it.
	lookupTimeout = 5 * time.Second
	// lookupWait bounds one lookup from its queueing to its answer: the batch in flight
	// when it arrived, then its own. Past it the handshake is answered unavailable.
	lookupWait = 2 * lookupTimeout
	// maxBatch is the most tokens the profile service takes in one ResolveSessions call
	// (profilesvc's MaxResolveSessions).
	maxBatch = 256
	// singleRetry is how long the edge resolves tokens one by one after ResolveSessions
	// answered unimplemented (an older profile service) before trying it again: long
	// enough that an older replica costs one wasted call a minute, short enough that a
	// rolling upgrade of the profile service brings the batches back without restarting
	// the edge.
	singleRetry = time.Minute
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
	// batch gathers the lookups of different tokens into ResolveSessions calls. Its
	// goroutine lives only while lookups are queued, so the Authenticator needs no Close.
	batch *coalesce.Batcher[string, result]
	// singleUntil is when, in Unix milliseconds on the Authenticator's clock, the edge
	// tries ResolveSessions again after it answered unimplemented; until then every batch
	// goes straight to ResolveSession calls. 0 as long as ResolveSessions has worked.
	singleUntil atomic.Int64

	mu       sync.Mutex
	cache    *simplelru.LRU[key, entry] // nil when the cache is off
	sessions map[int64]map[key]struct{} // the cached keys of each session, for Forget
	gen      uint64                     // bumped by Forget: answers asked for before are not cached
	lookups  int64                      // tokens looked up (not cached, not shared), for tests
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
	a.batch = coalesce.New(a.resolveBatch, coalesce.Options{Max: maxBatch, Name: "resolve sessions"})
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
		id, data, err := a.lookup(ctx, tok)
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

// lookup asks the profile service for tok in the next batch. It keeps only the values
// (the trace) of the handshake's context, not its end: the answer is shared by every
// handshake waiting for the same token, and one client giving up must not fail the
// others. Its errors are ErrInvalidToken or the service's failure, wrapped.
func (a *Authenticator) lookup(ctx context.Context, tok string) (int64, UserData, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupWait)
	defer cancel()
	r, err := a.batch.Do(ctx, tok)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return 0, UserData{}, fmt.Errorf("resolve session: no answer within %v: %w", lookupWait, err)
		}
		return 0, UserData{}, err
	}
	return r.userID, r.data, nil
}

// resolveBatch is the batcher's call: one ResolveSessions for every queued token, bounded
// by lookupTimeout, or one ResolveSession per token while the profile service does not
// know ResolveSessions. A failure of the whole call fails every lookup of the batch as
// unavailable, whatever its code: the tokens were not judged.
func (a *Authenticator) resolveBatch(ctx context.Context, toks []string) ([]coalesce.Result[result], error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	if a.now().UnixMilli() >= a.singleUntil.Load() {
		res, err := a.resolver.ResolveSessions(ctx, connect.NewRequest(&profilev1.ResolveSessionsRequest{Tokens: toks}))
		if err == nil {
			return a.batchResults(toks, res.Msg.GetResults())
		}
		if connect.CodeOf(err) != connect.CodeUnimplemented {
			return nil, fmt.Errorf("resolve sessions: %w", err)
		}
		a.singleUntil.Store(a.now().Add(singleRetry).UnixMilli())
	}
	return a.resolveEach(ctx, toks), nil
}

// batchResults turns the results of ResolveSessions into the lookups' answers.
func (a *Authenticator) batchResults(toks []string, rs []*profilev1.ResolveSessionsResult) ([]coalesce.Result[result], error) {
	if len(rs) != len(toks) {
		return nil, fmt.Errorf("resolve sessions: %d tokens answered with %d results", len(toks), len(rs))
	}
	out := make([]coalesce.Result[result], len(rs))
	for i, r := range rs {
		if r.GetErrorCode() == "" {
			out[i] = a.answer(r.GetSession())
			continue
		}
		// A code this edge does not know (a newer service) is unknown: unavailable (503).
		out[i] = failed(rpc.ItemErr(r.GetErrorCode(), r.GetErrorMessage()))
	}
	return out, nil
}

// resolveEach resolves each token with its own ResolveSession call, all at once (as the
// handshakes did before ResolveSessions), and returns when every call has.
func (a *Authenticator) resolveEach(ctx context.Context, toks []string) []coalesce.Result[result] {
	out := make([]coalesce.Result[result], len(toks))
	var wg sync.WaitGroup
	for i, tok := range toks {
		wg.Go(func() {
			res, err := a.resolver.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: tok}))
			if err != nil {
				out[i] = failed(err)
				return
			}
			out[i] = a.answer(res.Msg)
		})
	}
	wg.Wait()
	return out
}

// failed is the answer of a token the profile service failed to resolve with err: the
// codes that judge the token refuse it; any other is the service's failure, kept as the
// cause of the 503.
func failed(err error) coalesce.Result[result] {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodeNotFound, connect.CodeInvalidArgument, connect.CodePermissionDenied:
		return coalesce.Result[result]{Err: ErrInvalidToken}
	}
	return coalesce.Result[result]{Err: fmt.Errorf("resolve session: %w", err)}
}

// answer checks a resolved session: a session without a user or already expired (on the
// edge's clock) is refused like an unknown token.
func (a *Authenticator) answer(m *profilev1.ResolveSessionResponse) coalesce.Result[result] {
	u := m.GetUser()
	if u.GetId() <= 0 || m.GetExpiresAt() <= a.now().UnixMilli() {
		return coalesce.Result[result]{Err: ErrInvalidToken}
	}
	return coalesce.Result[result]{Value: result{u.GetId(), UserData{
		SessionID: m.GetSessionId(), ExpiresAt: m.GetExpiresAt(),
		Username: u.GetUserName(), FirstName: u.GetFirstName(), LastName: u.GetLastName(),
	}}}
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

// Lookups returns how many tokens were looked up at the profile service (neither answered
// by the cache nor sharing another handshake's lookup).
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
