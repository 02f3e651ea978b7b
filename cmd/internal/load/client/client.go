// Package client holds the load tool's WebSocket connections: a Dialer that spreads
// connections over several loopback source addresses (so tens of thousands do not run out
// of ephemeral ports) and refuses non-loopback targets, and a Conn with one reader
// goroutine that scans each frame and hands it to a callback, and a mutex-guarded write.
//
// Concurrency: Conn.Write may be called from any goroutine; the callback runs on the
// connection's reader goroutine and must not keep the frame's bytes. Close waits for the
// reader goroutine, so none outlives its connection.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/charla/charla/cmd/internal/load/wire"
)

// writeWait bounds one write: a server that stops reading fails the write instead of
// blocking a sender forever.
const writeWait = 10 * time.Second

// CheckLoopback refuses any URL whose host is not a loopback address (or "localhost"):
// the tool loads only this machine.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url %q: %w", raw, err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("url %q: host %q is not a loopback address; the load tool only loads this machine", raw, host)
	}
	return nil
}

// Dialer opens connections.
type Dialer struct {
	sources []net.IP
	next    atomic.Uint64
	ws      websocket.Dialer
}

// NewDialer returns a dialer whose connections come from 127.0.0.1 up to 127.0.0.<n>
// in turn (n ≥ 1). Each source address has its own range of ephemeral ports.
func NewDialer(sources int) *Dialer {
	if sources < 1 {
		sources = 1
	}
	d := &Dialer{}
	for i := range sources {
		d.sources = append(d.sources, net.IPv4(127, 0, 0, byte(1+i)))
	}
	d.ws = websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   2048,
		WriteBufferSize:  2048,
		WriteBufferPool:  &sync.Pool{},
		NetDialContext:   d.dial,
	}
	return d
}

func (d *Dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	src := d.sources[d.next.Add(1)%uint64(len(d.sources))]
	nd := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: src},
		// Let connect() choose the port per 4-tuple rather than bind() per address.
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return nd.DialContext(ctx, network, addr)
}

// Handler receives every frame a connection reads, already scanned.
type Handler func(c *Conn, f wire.Frame)

// Conn is one client connection.
type Conn struct {
	// ID is the caller's index for this connection.
	ID int
	ws *websocket.Conn

	wmu    sync.Mutex
	closed chan struct{} // closed when the reader ends
	first  chan struct{} // closed at the first frame read
	err    error         // why the reader ended; read after closed
}

// StatusError is a refused handshake: the HTTP status the server answered.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("handshake refused: HTTP %d", e.Status) }

// Dial opens a connection to url and starts its reader, which passes every frame to h.
func (d *Dialer) Dial(ctx context.Context, id int, url string, h Handler) (*Conn, error) {
	ws, resp, err := d.ws.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				return nil, fmt.Errorf("dial %s: %w", redact(url), &StatusError{Status: resp.StatusCode})
			}
		}
		return nil, fmt.Errorf("dial %s: %w", redact(url), err)
	}
	c := &Conn{ID: id, ws: ws, closed: make(chan struct{}), first: make(chan struct{})}
	go c.read(h)
	return c, nil
}

func (c *Conn) read(h Handler) {
	defer close(c.closed)
	var buf bytes.Buffer
	gotFirst := false
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			c.err = err
			if !gotFirst {
				close(c.first)
			}
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.err = err
			if !gotFirst {
				close(c.first)
			}
			return
		}
		if !gotFirst {
			gotFirst = true
			close(c.first)
		}
		if h == nil {
			continue
		}
		f, err := wire.Scan(buf.Bytes())
		if err != nil {
			continue // not a frame the tool understands: ignore, as a client must
		}
		h(c, f)
	}
}

// First returns a channel closed once the first frame has been read (or the connection
// has ended without one).
func (c *Conn) First() <-chan struct{} { return c.first }

// Err says why the reader ended; nil while it runs.
func (c *Conn) Err() error {
	select {
	case <-c.closed:
		return c.err
	default:
		return nil
	}
}

// Write sends one text frame. The bytes may be reused once it returns.
func (c *Conn) Write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Close closes the connection. With polite, it first sends a close frame (1000), as a
// browser leaving; without, it drops the TCP connection, as a network failure. It waits
// for the reader goroutine.
func (c *Conn) Close(polite bool) {
	if polite {
		c.wmu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
	}
	c.ws.Close()
	<-c.closed
}

// CloseCode returns the close code and reason of the error a connection's reader ended
// with: the server's close frame's (1011, 4001, ...), 1005 for a close frame without a
// code, 1006 when the connection ended without a close frame (gorilla's abnormal
// closure); 0 for any other error (a reset) and for nil.
func CloseCode(err error) (code int, reason string) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text
	}
	return 0, ""
}

// redact drops the query (the token) from a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad url)"
	}
	u.RawQuery = ""
	return u.String()
}
