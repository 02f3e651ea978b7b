//go:build linux

package netpoll

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/charla/charla/shared/waittest"
)

// TestMain fails the package's tests if the poller's goroutine outlives its waits.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tcpPair returns both ends of a loopback TCP connection and the server end's descriptor.
func tcpPair(t *testing.T) (client, server net.Conn, fd int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	rc, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		t.Fatal(err)
	}
	return client, server, fd
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// arm waits on fd and returns a channel closed when the callback runs.
func arm(t *testing.T, p *Poller, fd int) <-chan struct{} {
	t.Helper()
	fired := make(chan struct{})
	if err := p.Wait(fd, func() { close(fired) }); err != nil {
		t.Fatal(err)
	}
	return fired
}

// expectFired fails with why unless fired is closed within 5 s.
func expectFired(t *testing.T, fired <-chan struct{}, why string) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal(why)
	}
}

// waiting returns how many descriptors wait.
func waiting(p *Poller) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

// waitLoopExit waits until the poller's goroutine has ended.
func waitLoopExit(t *testing.T, p *Poller) {
	t.Helper()
	waittest.Until(t, "the loop to exit", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return !p.running
	})
}

func TestReadyOnceWhenReadable(t *testing.T) {
	p := newPoller(t)
	client, _, fd := tcpPair(t)
	fired := make(chan struct{}, 2)
	if err := p.Wait(fd, func() { fired <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(fd, func() {}); err != ErrWaiting {
		t.Fatalf("second Wait on the same descriptor: got %v, want ErrWaiting", err)
	}
	select {
	case <-fired:
		t.Fatal("ready ran before anything was sent")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("ready did not run after data arrived")
	}
	if p.Cancel(fd) {
		t.Fatal("Cancel after ready ran reported the wait as pending")
	}
	// One-shot: the unread byte does not fire it again, and the loop has exited.
	waitLoopExit(t, p)
	if len(fired) != 0 {
		t.Fatal("ready ran twice for one Wait")
	}
}

func TestDataBeforeWaitFiresAtOnce(t *testing.T) {
	p := newPoller(t)
	client, _, fd := tcpPair(t)
	if _, err := client.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let it reach the socket's buffer
	expectFired(t, arm(t, p, fd), "data already buffered did not fire the wait (lost wake-up)")
}

func TestHangUpFires(t *testing.T) {
	p := newPoller(t)
	client, _, fd := tcpPair(t)
	fired := arm(t, p, fd)
	client.Close()
	expectFired(t, fired, "the peer's close did not fire the wait")
}

func TestCancelStopsTheLoop(t *testing.T) {
	p := newPoller(t)
	client, _, fd := tcpPair(t)
	if err := p.Wait(fd, func() { t.Error("ready ran for a cancelled wait") }); err != nil {
		t.Fatal(err)
	}
	if n := waiting(p); n != 1 {
		t.Fatalf("%d descriptors wait, want 1", n)
	}
	if !p.Cancel(fd) {
		t.Fatal("Cancel of a pending wait reported false")
	}
	if n := waiting(p); n != 0 {
		t.Fatalf("%d descriptors wait after Cancel, want 0", n)
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitLoopExit(t, p)
	// The descriptor can wait again after a cancel.
	expectFired(t, arm(t, p, fd), "a second wait after Cancel did not fire")
}

func TestManyDescriptors(t *testing.T) {
	p := newPoller(t)
	const n = 50
	clients := make([]net.Conn, n)
	fired := make(chan int, n)
	for i := range n {
		c, _, fd := tcpPair(t)
		clients[i] = c
		if err := p.Wait(fd, func() { fired <- i }); err != nil {
			t.Fatal(err)
		}
	}
	for i := n - 1; i >= 0; i-- {
		if _, err := clients[i].Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[int]bool)
	for range n {
		select {
		case i := <-fired:
			if seen[i] {
				t.Fatalf("descriptor %d fired twice", i)
			}
			seen[i] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d descriptors fired", len(seen), n)
		}
	}
}
