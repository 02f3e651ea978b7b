// Package tcpproxy forwards TCP connections to one address and puts that address out of
// reach on demand, as the faults of the process or network behind it would: Cut drops
// every connection at once and refuses new ones for good (the process died); Refuse does
// the same until Restore listens again on the same address (a restart); Freeze keeps every
// connection open and accepts new ones but forwards no byte until Thaw (a hung process or
// a network that drops packets); Slow holds every byte the target sends for a while before
// forwarding it until Fast (a slow network or an overloaded server: each round trip takes
// that much longer). Tests use it to put a database or a service out of reach, or slow it
// down, in the middle of a call.
//
// A Proxy is safe for concurrent use.
package tcpproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from its own loopback address to a target.
type Proxy struct {
	target string
	addr   string // the listening address, kept across Refuse and Restore

	mu     sync.Mutex
	l      net.Listener // nil while refusing or cut
	conns  map[net.Conn]struct{}
	cut    bool
	thawed chan struct{} // nil unless frozen; closed by Thaw
	delay  time.Duration // added to what the target sends; 0 unless slowed
	hasted chan struct{} // nil unless slowed; closed by Fast (held chunks go at once)
	wg     sync.WaitGroup
}

// New starts a proxy to target (host:port) on a free loopback port.
func New(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcpproxy: listen: %w", err)
	}
	p := &Proxy{target: target, addr: l.Addr().String(), l: l, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept(l)
	return p, nil
}

// Addr is the host:port to dial instead of the target.
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) accept(l net.Listener) {
	defer p.wg.Done()
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(l, in, out) {
			in.Close()
			out.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(out, in, false)
		go p.pipe(in, out, true)
	}
}

// track records a connection pair accepted on l, unless l was closed meanwhile.
func (p *Proxy) track(l net.Listener, cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != l {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst until either fails, holding each chunk while the proxy is frozen
// and, when fromTarget, for the delay of Slow after it was read.
func (p *Proxy) pipe(dst, src net.Conn, fromTarget bool) {
	defer p.wg.Done()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromTarget {
				p.waitDelay(time.Now())
			}
			p.waitThawed()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// waitThawed returns once the proxy is not frozen.
func (p *Proxy) waitThawed() {
	p.mu.Lock()
	ch := p.thawed
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// waitDelay returns once the delay of Slow has passed since read, or at once when the proxy
// is not slowed (or Fast, Cut or Refuse ends the slowing meanwhile).
func (p *Proxy) waitDelay(read time.Time) {
	p.mu.Lock()
	d, ch := p.delay, p.hasted
	p.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(time.Until(read.Add(d)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ch:
	}
}

// drop closes the listener and every forwarded connection (thawing the proxy and ending
// Slow, so that no forwarding goroutine stays blocked) and waits until every forwarding goroutine has ended.
func (p *Proxy) drop(forever bool) {
	p.mu.Lock()
	if forever {
		p.cut = true
	}
	if p.l != nil {
		_ = p.l.Close() // the only failure is a second close
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	if p.thawed != nil {
		close(p.thawed)
		p.thawed = nil
	}
	p.fastLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

// Cut closes every forwarded connection and the listener: from then on the address
// refuses connections. It waits until every forwarding goroutine has ended.
func (p *Proxy) Cut() { p.drop(true) }

// Refuse is Cut until Restore: every forwarded connection is closed and the address
// refuses connections. It also ends a Freeze.
func (p *Proxy) Refuse() { p.drop(false) }

// errCut: Restore after Cut.
var errCut = errors.New("tcpproxy: the proxy was cut for good")

// Restore listens again on the proxy's address after Refuse (nothing when it listens).
// It fails when the proxy was cut or the port was taken meanwhile.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return errCut
	}
	if p.l != nil {
		return nil
	}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("tcpproxy: listen again on %s: %w", p.addr, err)
	}
	p.l = l
	p.wg.Add(1)
	go p.accept(l)
	return nil
}

// Freeze stops every byte in both directions until Thaw: connections stay open and new
// ones are accepted (and dialed through), but what either side sends is held.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thawed == nil {
		p.thawed = make(chan struct{})
	}
}

// Thaw forwards again what Freeze held, and everything after it.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thawed != nil {
		close(p.thawed)
		p.thawed = nil
	}
}

// Slow adds d to every round trip through the proxy until Fast: each chunk the target
// sends is forwarded d after the proxy read it. The proxy reads a connection's next chunk
// only once it has forwarded the one before, so an answer the target sends in several
// chunks at once may take a multiple of d (request-and-answer protocols such as a
// database's send one chunk per answer). It applies to the connections already open and
// to new ones, including the target's first bytes (a server greeting). Slow with another
// d applies to the chunks read from then on; Slow(0) is Fast.
func (p *Proxy) Slow(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d <= 0 {
		p.fastLocked()
		return
	}
	p.delay = d
	if p.hasted == nil {
		p.hasted = make(chan struct{})
	}
}

// Fast ends Slow: chunks held for the delay are forwarded at once, later ones without delay.
func (p *Proxy) Fast() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fastLocked()
}

func (p *Proxy) fastLocked() {
	p.delay = 0
	if p.hasted != nil {
		close(p.hasted)
		p.hasted = nil
	}
}

// Close is Cut.
func (p *Proxy) Close() error {
	p.Cut()
	return nil
}
