package tcpproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charla/charla/shared/tcpproxy"
)

// echo serves a line echo on a free port until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

func TestForwardsUntilCut(t *testing.T) {
	t.Parallel()
	p, err := tcpproxy.New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("hola\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadString('\n'); err != nil || got != "hola\n" {
		t.Fatalf("echo through the proxy = %q, %v; want %q", got, err, "hola\n")
	}
	p.Cut()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("read on a cut connection succeeded, want an error")
	}
	if _, err := net.Dial("tcp", p.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Cut: %v, want connection refused", err)
	}
}

func TestRefuseThenRestore(t *testing.T) {
	t.Parallel()
	p, err := tcpproxy.New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	p.Refuse()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("read on a connection of a refusing proxy succeeded, want an error")
	}
	if _, err := net.Dial("tcp", p.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Refuse: %v, want connection refused", err)
	}
	if err := p.Restore(); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial after Restore: %v", err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte("otra vez\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "otra vez\n" {
		t.Fatalf("echo after Restore = %q, %v; want %q", got, err, "otra vez\n")
	}
	p.Cut()
	if err := p.Restore(); err == nil {
		t.Fatal("Restore after Cut succeeded, want an error")
	}
}

func TestFreezeHoldsBytesUntilThaw(t *testing.T) {
	t.Parallel()
	p, err := tcpproxy.New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	p.Freeze()
	// A new connection is accepted while frozen.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial while frozen: %v, want accepted", err)
	}
	defer c2.Close()
	heldUntil(t, c, r, "quieto\n", "Thaw", p.Thaw)
}

// roundTrip writes a line on c and reads it back through r, returning how long it took.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line {
		t.Fatalf("echo through the proxy = %q, %v; want %q", got, err, line)
	}
	return time.Since(start)
}

func TestSlowAddsDelayToEveryRoundTrip(t *testing.T) {
	t.Parallel()
	const d = 150 * time.Millisecond
	p, err := tcpproxy.New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	before := roundTrip(t, c, r, "rápido\n")
	p.Slow(d)
	// On the connection already open, and on one opened while slowed.
	for i := range 3 {
		if rt := roundTrip(t, c, r, "lento\n"); rt < d {
			t.Errorf("round trip %d with Slow(%v) took %v, want at least %v (before: %v)", i, d, rt, d, before)
		}
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if rt := roundTrip(t, c2, bufio.NewReader(c2), "nueva\n"); rt < d {
		t.Errorf("round trip of a new connection with Slow(%v) took %v, want at least %v", d, rt, d)
	}
	p.Fast()
	roundTrip(t, c, r, "otra vez rápido\n") // still forwards (no upper bound: timing is the machine's)
}

func TestFastReleasesHeldBytes(t *testing.T) {
	t.Parallel()
	p, err := tcpproxy.New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Slow(time.Hour)
	heldUntil(t, c, bufio.NewReader(c), "espera\n", "Fast", p.Fast)
}

// TestCutWhileHolding: Cut returns and closes the client's connection while the proxy
// holds bytes (frozen, or slowed by an hour): no forwarding goroutine stays blocked.
func TestCutWhileHolding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hold func(*tcpproxy.Proxy)
	}{
		{"frozen", (*tcpproxy.Proxy).Freeze},
		{"slow", func(p *tcpproxy.Proxy) { p.Slow(time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := tcpproxy.New(echo(t))
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.hold(p)
			if _, err := c.Write([]byte("held\n")); err != nil {
				t.Fatal(err)
			}
			// Let the bytes reach the proxy, so that Cut finds a held chunk rather than an
			// empty pipe.
			time.Sleep(50 * time.Millisecond)
			p.Cut()
			if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
				t.Fatal("read after Cut succeeded, want an error")
			}
		})
	}
}

// heldUntil writes line on c and checks that it does not come back through r until
// release (named what) is called, and then does.
func heldUntil(t *testing.T, c net.Conn, r *bufio.Reader, line, what string, release func()) {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		l, _ := r.ReadString('\n')
		got <- l
	}()
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-got:
		t.Fatalf("read %q while the proxy holds bytes, want nothing until %s", l, what)
	case <-time.After(100 * time.Millisecond): // no timed assertion: only a chance to fail
	}
	release()
	if l := <-got; l != line {
		t.Fatalf("after %s read %q, want %q", what, l, line)
	}
}
