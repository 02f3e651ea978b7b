package rpc

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// Defaults of BalancerOptions.
const (
	// DefaultResolveEvery is how often names are looked up again: a replica that starts
	// gets calls within this time, and one that is gone stops being a candidate (until
	// then, ejection keeps calls away from it).
	DefaultResolveEvery = 10 * time.Second
	// DefaultEjectFor is how long a replica that could not be reached gets no calls after
	// its first failure; each further failure in a row doubles it, up to DefaultMaxEject.
	DefaultEjectFor = time.Second
	// DefaultMaxEject bounds the ejection of a replica that keeps failing.
	DefaultMaxEject = 30 * time.Second
	// lookupTimeout bounds one DNS lookup.
	lookupTimeout = 5 * time.Second
)

// BalancerOptions tune a Balancer; the zero value is what the processes use.
type BalancerOptions struct {
	// Lookup returns the addresses of a host name, as net.Resolver.LookupHost does (the
	// default). Tests give their own.
	Lookup func(ctx context.Context, host string) ([]string, error)
	// ResolveEvery is the period of the lookups (DefaultResolveEvery when zero).
	ResolveEvery time.Duration
	// EjectFor and MaxEject bound the ejection of an unreachable replica (DefaultEjectFor
	// and DefaultMaxEject when zero).
	EjectFor, MaxEject time.Duration
}

// Balancer is an http.RoundTripper that spreads the requests of one service over its
// replicas: round robin over those not ejected, an unreachable replica ejected for a
// while, and a request that failed retried once on another replica when that is safe
// (see the package documentation). Build the service's Connect client with BaseURL and an
// http.Client whose Transport is the Balancer. It is safe for concurrent use.
type Balancer struct {
	next   http.RoundTripper
	target target
	opts   BalancerOptions

	mu sync.Mutex
	// resolved holds, per entry of target, the addresses its name resolved to (nil until
	// a lookup succeeded, and for entries that are addresses).
	resolved [][]string
	// endpoints are the replicas, in the order of the entries (a name's addresses
	// sorted); rr is the index of the next one's turn.
	endpoints []*endpoint
	rr        int

	cancel    context.CancelFunc
	done      chan struct{} // closed when the resolver goroutine ends; nil without one
	closeOnce sync.Once
}

// endpoint is one replica. Its failures and ejection are guarded by Balancer.mu.
type endpoint struct {
	scheme, addr string
	authority    string // the Host of requests: the entry's host[:port] as configured
	failures     int    // in a row
	ejectedUntil time.Time
}

// NewBalancer returns a Balancer over the replicas named by addr (see CheckTarget) that
// sends requests through next. When an entry is a name other than localhost, a goroutine
// looks it up every ResolveEvery until Close; until the first lookup answers, the name
// itself is the one replica, so the dialer resolves it as it would without a Balancer.
func NewBalancer(addr string, next http.RoundTripper, opts BalancerOptions) (*Balancer, error) {
	t, err := parseTarget(addr)
	if err != nil {
		return nil, err
	}
	if opts.Lookup == nil {
		opts.Lookup = net.DefaultResolver.LookupHost
	}
	if opts.ResolveEvery <= 0 {
		opts.ResolveEvery = DefaultResolveEvery
	}
	if opts.EjectFor <= 0 {
		opts.EjectFor = DefaultEjectFor
	}
	if opts.MaxEject <= 0 {
		opts.MaxEject = DefaultMaxEject
	}
	b := &Balancer{next: next, target: t, opts: opts, resolved: make([][]string, len(t.entries))}
	b.rebuild()
	// Each client starts its turns at a replica of its own, so that the first calls of
	// many processes (their event streams, which stay) do not all land on one replica.
	b.rr = rand.IntN(len(b.endpoints))
	if slices.ContainsFunc(t.entries, func(e entry) bool { return e.dns }) {
		ctx, cancel := context.WithCancel(context.Background())
		b.cancel, b.done = cancel, make(chan struct{})
		go b.resolveLoop(ctx)
	}
	return b, nil
}

// BaseURL is the base URL to build the service's Connect client with: the first entry's.
// The Balancer replaces its scheme and host with those of the replica it picks.
func (b *Balancer) BaseURL() string { return b.target.baseURL() }

// Close stops the lookups and waits for their goroutine. Requests still work afterwards,
// over the replicas last known.
func (b *Balancer) Close() error {
	b.closeOnce.Do(func() {
		if b.cancel != nil {
			b.cancel()
			<-b.done
		}
	})
	return nil
}

// CloseIdleConnections closes the idle connections of the transport under the Balancer,
// as http.Client.CloseIdleConnections asks.
func (b *Balancer) CloseIdleConnections() {
	if c, ok := b.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip sends req to the next replica. When that replica cannot be reached it is
// ejected, and the request goes once to another replica if it had not been sent (the
// connection could not be made) or is idempotent (see Idempotent).
func (b *Balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	first := b.pick(nil)
	res, err := b.send(req, first)
	if err == nil || !b.failed(req, first, err) {
		return res, err
	}
	if !isDialError(err) && !isIdempotent(req) {
		// The request may have reached the replica, which may have acted on it.
		return nil, err
	}
	second := b.pick(first)
	if second == nil {
		return nil, err
	}
	retry, ok := rewind(req)
	if !ok {
		return nil, err
	}
	res, err2 := b.send(retry, second)
	if err2 != nil {
		b.failed(req, second, err2)
	}
	return res, err2
}

// send sends req to ep and clears ep's failures when it answers.
func (b *Balancer) send(req *http.Request, ep *endpoint) (*http.Response, error) {
	out := req
	if req.URL.Scheme != ep.scheme || req.URL.Host != ep.addr || req.Host != ep.authority {
		// A RoundTripper must not modify its request: send a shallow copy with its own URL.
		out = new(http.Request)
		*out = *req
		u := *req.URL
		u.Scheme, u.Host = ep.scheme, ep.addr
		out.URL, out.Host = &u, ep.authority
	}
	res, err := b.next.RoundTrip(out)
	if err == nil {
		b.mu.Lock()
		ep.failures, ep.ejectedUntil = 0, time.Time{}
		b.mu.Unlock()
	}
	return res, err
}

// failed ejects ep when err says that it could not be reached (not when the caller gave
// up, nor when the replica answered the stream with a reset of its own), for EjectFor
// doubled per failure in a row up to MaxEject. It reports whether ep was ejected.
func (b *Balancer) failed(req *http.Request, ep *endpoint, err error) bool {
	if req.Context().Err() != nil || !isTransport(err) {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if now.Before(ep.ejectedUntil) {
		// Calls that were under way when it failed: one failure, not one per call.
		return true
	}
	d := b.opts.EjectFor << min(ep.failures, 20)
	if d <= 0 || d > b.opts.MaxEject {
		d = b.opts.MaxEject
	}
	ep.failures++
	ep.ejectedUntil = now.Add(d)
	return true
}

// pick returns the next replica after the last one picked, other than exclude: one not
// ejected if any, else any (when every replica is ejected a call still tries them, in
// turn). It returns nil when exclude is the only replica.
func (b *Balancer) pick(exclude *endpoint) *endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	n := len(b.endpoints)
	for _, healthyOnly := range []bool{true, false} {
		for i := range n {
			j := (b.rr + i) % n
			ep := b.endpoints[j]
			if ep == exclude || healthyOnly && now.Before(ep.ejectedUntil) {
				continue
			}
			b.rr = (j + 1) % n
			return ep
		}
	}
	return nil
}

// rebuild derives the replicas from the entries and what their names resolved to,
// keeping the state of replicas that remain. b.mu must be held (or b not yet shared).
func (b *Balancer) rebuild() {
	old := make(map[string]*endpoint, len(b.endpoints))
	for _, ep := range b.endpoints {
		old[ep.scheme+"://"+ep.addr] = ep
	}
	eps := make([]*endpoint, 0, len(b.endpoints))
	seen := make(map[string]bool, len(b.endpoints))
	for i, e := range b.target.entries {
		addrs := b.resolved[i]
		if addrs == nil {
			addrs = []string{e.addr()}
		}
		for _, a := range addrs {
			key := e.scheme + "://" + a
			if seen[key] {
				continue
			}
			seen[key] = true
			ep := old[key]
			if ep == nil {
				ep = &endpoint{scheme: e.scheme, addr: a}
			}
			ep.authority = e.authority
			eps = append(eps, ep)
		}
	}
	b.endpoints = eps
	b.rr %= len(eps)
}

// resolveLoop looks the names up now and every ResolveEvery until ctx ends.
func (b *Balancer) resolveLoop(ctx context.Context) {
	defer close(b.done)
	tick := time.NewTicker(b.opts.ResolveEvery)
	defer tick.Stop()
	for {
		b.resolve(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// resolve looks up every name once. A name that does not exist (a headless Service with
// no ready replica) falls back to itself, so calls fail with the dialer's own error; a
// lookup that fails otherwise keeps the addresses it last gave.
func (b *Balancer) resolve(ctx context.Context) {
	next := make([][]string, len(b.target.entries))
	b.mu.Lock()
	copy(next, b.resolved)
	b.mu.Unlock()
	changed := false
	for i, e := range b.target.entries {
		if !e.dns {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		hosts, err := b.opts.Lookup(lctx, e.host)
		cancel()
		var addrs []string
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
				continue
			}
		default:
			for _, h := range hosts {
				addrs = append(addrs, net.JoinHostPort(h, e.port))
			}
			slices.Sort(addrs)
			addrs = slices.Compact(addrs)
		}
		if !slices.Equal(addrs, next[i]) {
			next[i], changed = addrs, true
		}
	}
	if !changed {
		return
	}
	b.mu.Lock()
	b.resolved = next
	b.rebuild()
	b.mu.Unlock()
}

// isDialError reports a failure to connect: the request was not sent (the dial failed,
// or the new connection closed before the request could be written on it).
func isDialError(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial" || strings.Contains(err.Error(), errNotSent)
}

// rewind returns req ready to be sent again, if its body can be read again.
func rewind(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false // a client stream: its body is read once
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	r := new(http.Request)
	*r = *req
	r.Body = body
	return r, true
}

// idempotentKey marks a context whose call may be sent twice.
type idempotentKey struct{}

// Idempotent returns ctx marking the call made with it as idempotent: when its replica
// fails under it, a Balancer sends it again to another replica even though the first may
// have received it. Calls of procedures declared idempotent (idempotency_level in the
// .proto) are marked by the interceptor of ClientOptions.
func Idempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

// isIdempotent reports a request that may be sent twice: marked by Idempotent, a method
// HTTP calls idempotent, or one carrying an idempotency key (as net/http decides).
func isIdempotent(req *http.Request) bool {
	if v, _ := req.Context().Value(idempotentKey{}).(bool); v {
		return true
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// idempotencyInterceptor marks the calls of idempotent procedures with Idempotent, so
// the Balancer under them knows it may retry them.
type idempotencyInterceptor struct{}

func (idempotencyInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if s := req.Spec(); s.IsClient && s.IdempotencyLevel != connect.IdempotencyUnknown {
			ctx = Idempotent(ctx)
		}
		return next(ctx, req)
	}
}

func (idempotencyInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		if spec.IdempotencyLevel != connect.IdempotencyUnknown {
			ctx = Idempotent(ctx)
		}
		return next(ctx, spec)
	}
}

func (idempotencyInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
