// Package door limits failed WebSocket handshakes per client address, so that a client
// guessing tokens (or a broken one retrying a bad token in a loop) costs the profile
// service nothing: once an address has spent its budget of failures (by default 10 a
// second, bursts of 20), its handshakes are refused with 429 before any token lookup,
// until the budget refills. Successful handshakes spend nothing.
//
// The client address is the connection's peer, or, when that peer is a configured trusted
// proxy (TRUSTED_PROXIES), the address the proxies recorded in X-Forwarded-For: read from
// the right, the first address that is not itself a trusted proxy. X-Forwarded-For from
// anyone else is ignored, so a client cannot choose its own address. IPv6 clients are
// counted per /64, the block one subscriber gets.
//
// A Door is safe for concurrent use. It keeps one small entry per address that failed
// recently; entries whose budget has refilled are dropped, and the table is bounded.
package door

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	DefaultRate  = 10
	DefaultBurst = 20
	// maxEntries bounds the addresses tracked; beyond it arbitrary entries are dropped
	// (an attacker spread over that many addresses is beyond a per-address limit anyway).
	maxEntries = 100_000
)

// Config configures a Door.
type Config struct {
	// Rate is the failed handshakes per second an address may make in the long run;
	// 0 means DefaultRate, negative turns the limit off.
	Rate float64
	// Burst is how many failures an address may make at once; 0 means DefaultBurst.
	Burst int
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Door is the per-address limit of failed handshakes.
type Door struct {
	limit   rate.Limit
	burst   int
	trusted []netip.Prefix
	now     func() time.Time
	off     bool

	mu        sync.Mutex
	entries   map[netip.Prefix]*rate.Limiter
	lastSweep time.Time
}

// New returns a Door.
func New(c Config) *Door {
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Door{
		limit: rate.Limit(c.Rate), burst: c.Burst, trusted: c.TrustedProxies, now: c.Now, off: c.Rate < 0,
		entries: make(map[netip.Prefix]*rate.Limiter),
	}
}

// Allowed reports whether the client of r may try a handshake: whether its address has
// failure budget left. It spends nothing.
func (d *Door) Allowed(r *http.Request) bool {
	if d.off {
		return true
	}
	key := d.key(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	lim, ok := d.entries[key]
	return !ok || lim.TokensAt(d.now()) >= 1
}

// Failed spends one unit of the budget of the client of r.
func (d *Door) Failed(r *http.Request) {
	if d.off {
		return
	}
	key := d.key(r)
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	lim, ok := d.entries[key]
	if !ok {
		d.makeRoom(now)
		lim = rate.NewLimiter(d.limit, d.burst)
		d.entries[key] = lim
	}
	lim.AllowN(now, 1)
}

// makeRoom drops the entries whose budget has refilled (at most once a second), and
// arbitrary ones while the table is full. Called with d.mu held.
func (d *Door) makeRoom(now time.Time) {
	if now.Sub(d.lastSweep) >= time.Second {
		d.lastSweep = now
		for k, lim := range d.entries {
			if lim.TokensAt(now) >= float64(d.burst) {
				delete(d.entries, k)
			}
		}
	}
	for k := range d.entries {
		if len(d.entries) < maxEntries {
			break
		}
		delete(d.entries, k)
	}
}

// Len returns the number of addresses tracked.
func (d *Door) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries)
}

// key is what the budget is counted by: the client address, an IPv6 one by its /64.
func (d *Door) key(r *http.Request) netip.Prefix {
	a := d.ClientAddr(r)
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64) // cannot fail for an IPv6 address
	return p
}

// ClientAddr returns the address of the client behind r (see the package doc). An
// unparsable peer address (which net/http does not produce) counts as the unspecified
// address, so that all such requests share one budget.
func (d *Door) ClientAddr(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return netip.IPv6Unspecified()
	}
	if !d.isTrusted(peer) {
		return peer
	}
	hops := forwardedFor(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(hops[i])
		if !a.IsValid() {
			break // garbage a trusted proxy passed on: the last good hop is the client
		}
		client = a
		if !d.isTrusted(a) {
			break
		}
	}
	return client
}

func (d *Door) isTrusted(a netip.Addr) bool {
	for _, p := range d.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor lists the X-Forwarded-For hops, left (the original client) to right,
// across every header line.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, line := range h.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(line, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				hops = append(hops, hop)
			}
		}
	}
	return hops
}

// parseAddr reads "ip", "ip:port" or "[ip]:port", without a zone, with IPv4-mapped IPv6
// addresses unmapped.
func parseAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// ParseTrustedProxies reads TRUSTED_PROXIES: comma-separated CIDR prefixes or single
// addresses ("10.0.0.0/8, 192.168.1.7, fd00::/8"). It names the entry that is wrong.
func ParseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for entry := range strings.SplitSeq(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if strings.Contains(entry, "/") {
			p, err := netip.ParsePrefix(entry)
			if err != nil {
				return nil, fmt.Errorf("want a CIDR prefix such as 10.0.0.0/8 or an address, got %q", entry)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("want a CIDR prefix such as 10.0.0.0/8 or an address, got %q", entry)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
