package hub

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla/charla/edge/internal/frames"
	"github.com/charla/charla/edge/internal/netpoll"
	"github.com/gorilla/websocket"
)

// Callbacks are the application's hooks into the connection lifecycle.
// Every callback but AuthenticateAndGetUserData runs on a goroutine of the
// connection it concerns; none may block for long in the write path.
type Callbacks[UserData any] struct {
	// AuthenticateAndGetUserData runs before the upgrade. A *HTTPError (found with
	// errors.As) is answered as is; any other error is answered
	// 401 {"code":401,"message":"unauthorized"}.
	AuthenticateAndGetUserData func(r *http.Request) (userID int64, data UserData, err error)
	// OnConnect runs on the read pump after the connection is registered and can
	// send, before the first message is read. An error closes the
	// connection with 1011.
	OnConnect func(c *Connection[UserData]) error
	// OnDisconnect runs exactly once per registered connection, after it is
	// unregistered and both pumps have ended. err says why it closed: nil for a
	// normal close by the client (1000, 1001, 1005) or by the application with
	// 1000; a *CloseError for other closes the server initiated; otherwise the
	// read or write error (a *websocket.CloseError for the client's close code).
	OnDisconnect func(c *Connection[UserData], err error)
	// ProcessClientMessage runs on the connection's reader for every accepted text message,
	// one at a time, in order. msg belongs to the callee. The hub refreshes the
	// read deadline after it returns, so a slow handler is not the client's fault,
	// but the connection reads nothing else meanwhile: long work belongs on
	// another goroutine.
	ProcessClientMessage func(c *Connection[UserData], msg []byte)
	// OnRateLimited runs instead of ProcessClientMessage for a message over the
	// rate limit; it should reply 429 with the message's pid. When the message
	// would be the (MaxRateErrors+1)th rate-limit error within RateErrorWindow the
	// hub closes the connection with 1008 instead and does not call it. When nil,
	// the hub replies 429 itself, echoing a valid pid when it finds one.
	OnRateLimited func(c *Connection[UserData], msg []byte)
	// GeneratePID returns a fresh server-side pid. When nil, the manager uses its
	// own frames.PIDs.
	GeneratePID func() string
	// OnHandshakeRefused, when set, runs once for every handshake refused before
	// the upgrade, with the status sent and the reason (HTTPError.Reason, or one of
	// RefusalReasons): the application counts refusals by reason. The hub itself logs
	// each refusal once.
	OnHandshakeRefused func(r *http.Request, status int, reason string)
}

// shardCount spreads the registry over independent locks so that delivery to
// one user never contends with the (un)registration of most others.
const shardCount = 64

type shard[U any] struct {
	mu    sync.RWMutex
	users map[int64][]*Connection[U] // a slice: most users hold one or two connections
}

// writeBufferPool is shared by every manager: a buffer is taken for the duration
// of one message write, so idle connections hold none.
var writeBufferPool sync.Pool

// ConnectionManager accepts WebSocket connections and keeps the registry of the
// live ones, keyed by user id. Its methods are safe for concurrent use.
type ConnectionManager[U any] struct {
	cfg      Config
	cb       Callbacks[U]
	log      *slog.Logger
	upgrader websocket.Upgrader
	prefix   string // random per manager, so connection ids are unique across restarts too
	started  time.Time

	nextConn atomic.Uint64
	pids     *frames.PIDs // server pids when Callbacks.GeneratePID is nil
	count    atomic.Int64
	shards   [shardCount]shard[U]

	// stateMu orders wg.Add (in ServeHTTP) before wg.Wait (in Shutdown), as
	// sync.WaitGroup requires once the counter may be zero.
	stateMu  sync.RWMutex
	stopping atomic.Bool
	wg       sync.WaitGroup // handshakes in progress and live connections

	poller *netpoll.Poller // nil: connections never park (ParkAfter < 0, or no poller here)
	parked atomic.Int64
}

// NewConnectionManager returns a manager with cfg (zero fields take the
// defaults of DefaultConfig) and the application's callbacks. log may be nil.
func NewConnectionManager[U any](cfg Config, cb Callbacks[U], log *slog.Logger) *ConnectionManager[U] {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	m := &ConnectionManager[U]{
		cfg:     cfg.withDefaults(),
		cb:      cb,
		log:     log,
		prefix:  base64.RawURLEncoding.EncodeToString(rnd[:]),
		pids:    frames.NewPIDs(),
		started: time.Now(),
	}
	for i := range m.shards {
		m.shards[i].users = make(map[int64][]*Connection[U])
	}
	if m.cfg.ParkAfter >= 0 {
		if p, err := netpoll.Default(); err == nil {
			m.poller = p
		} else {
			log.Info("websocket connections will not park", "err", err)
		}
	}
	m.upgrader = websocket.Upgrader{
		HandshakeTimeout: m.cfg.HandshakeTimeout,
		// Zero: gorilla reads through the *bufio.Reader that the hijack returns,
		// which readBufferHijacker makes (see readBufferSize) and hands to the hub too.
		ReadBufferSize:  0,
		WriteBufferSize: 4096,
		WriteBufferPool: &writeBufferPool,
		// The origin was checked before authentication (it must answer 403
		// JSON before any token lookup); gorilla must not check it again.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeHTTPError(w, status, http.StatusText(status))
		},
	}
	return m
}

// Config returns the effective configuration (defaults applied).
func (m *ConnectionManager[U]) Config() Config { return m.cfg }

// ServeHTTP performs the handshake: 503 once Shutdown has started, the origin
// check (403), authentication (401 or the callback's *HTTPError), then the
// upgrade. Refusals are JSON bodies sent before any upgrade.
func (m *ConnectionManager[U]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.stateMu.RLock()
	if m.stopping.Load() {
		m.stateMu.RUnlock()
		// Not logged: every client of a draining edge reconnects.
		m.refused(r, http.StatusServiceUnavailable, ReasonShuttingDown)
		writeHTTPError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	m.wg.Add(1)
	m.stateMu.RUnlock()

	if !m.cfg.originAllowed(r) {
		m.wg.Done()
		m.log.Info("websocket handshake refused", "status", http.StatusForbidden, "reason", ReasonOrigin,
			"origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		m.refused(r, http.StatusForbidden, ReasonOrigin)
		writeHTTPError(w, http.StatusForbidden, "origin not allowed")
		return
	}

	var (
		userID int64
		data   U
		err    error
	)
	if m.cb.AuthenticateAndGetUserData != nil {
		userID, data, err = m.cb.AuthenticateAndGetUserData(r)
	}
	if err != nil {
		m.wg.Done()
		status, msg, reason, cause := http.StatusUnauthorized, "unauthorized", ReasonUnauthorized, err
		var he *HTTPError
		if errors.As(err, &he) {
			status, msg, cause = he.Status, he.Message, he.Err
			if he.Reason != "" {
				reason = he.Reason
			}
		}
		// The one log line of a refusal. Never log r.URL: its query carries the token.
		attrs := []any{"status", status, "reason", reason, "message", msg, "remote", r.RemoteAddr}
		if cause != nil {
			attrs = append(attrs, "err", cause)
		}
		m.log.Info("websocket handshake refused", attrs...)
		m.refused(r, status, reason)
		writeHTTPError(w, status, msg)
		return
	}

	hj := &readBufferHijacker{ResponseWriter: w}
	ws, err := m.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		m.wg.Done()
		m.log.Debug("websocket upgrade failed", "user_id", userID, "err", err)
		m.refused(r, http.StatusBadRequest, ReasonBadUpgrade)
		return
	}
	c := newConnection(m, ws, userID, data)
	c.br, c.fd = hj.br, m.parkableFD(ws.NetConn(), hj.br)
	m.register(c)
	// The read pump runs on its own goroutine so that this handler returns and
	// net/http releases what it held for the request. The write pump starts
	// when there is something to write.
	go c.readPump()
}

// readBufferSize is a connection's read buffer. 512 bytes hold a frame header and
// most chat frames; larger messages are read through it in pieces. It is held for
// the connection's life, so it is a quarter of an idle connection's live heap at 1 KiB.
const readBufferSize = 512

// readBufferHijacker gives gorilla, through the hijack, the read buffer the
// connection will read from, and keeps it: the hub must see how many bytes it
// holds to know when a connection may park. (gorilla, with ReadBufferSize 0,
// reads through the hijacked *bufio.Reader when it is larger than 256 bytes.)
type readBufferHijacker struct {
	http.ResponseWriter
	br *bufio.Reader
}

// Hijack hijacks the request's connection and replaces the server's 4 KiB read
// buffer with a readBufferSize one, unless the client already sent bytes after
// its request (which the protocol forbids before the 101): then the server's
// buffer, which holds them, is kept.
func (h *readBufferHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Reader.Buffered() == 0 {
		brw = bufio.NewReadWriter(bufio.NewReaderSize(conn, readBufferSize), brw.Writer)
	}
	h.br = brw.Reader
	return conn, brw, nil
}

// parkableFD returns the socket's descriptor when the connection can park, else
// -1: parking needs the poller, gorilla's read buffer and a plain TCP socket
// (a TLS connection buffers records of its own, which the hub cannot see).
func (m *ConnectionManager[U]) parkableFD(conn net.Conn, br *bufio.Reader) int {
	tcp, ok := conn.(*net.TCPConn)
	if m.poller == nil || br == nil || !ok {
		return -1
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return -1
	}
	return fd
}

// ParkedCount returns how many connections are parked (no goroutine reads them).
func (m *ConnectionManager[U]) ParkedCount() int { return int(m.parked.Load()) }

// refused tells the application about a refused handshake.
func (m *ConnectionManager[U]) refused(r *http.Request, status int, reason string) {
	if m.cb.OnHandshakeRefused != nil {
		m.cb.OnHandshakeRefused(r, status, reason)
	}
}

func (m *ConnectionManager[U]) shard(userID int64) *shard[U] {
	return &m.shards[uint64(userID)%shardCount]
}

func (m *ConnectionManager[U]) register(c *Connection[U]) {
	s := m.shard(c.ID)
	s.mu.Lock()
	s.users[c.ID] = append(s.users[c.ID], c)
	s.mu.Unlock()
	m.count.Add(1)
	// Shutdown sets stopping before it walks the shards: either it sees this
	// connection in its walk, or this check sees the flag.
	if m.stopping.Load() {
		c.Close(websocket.CloseGoingAway, "server shutting down")
	}
}

func (m *ConnectionManager[U]) unregister(c *Connection[U]) {
	s := m.shard(c.ID)
	s.mu.Lock()
	conns := s.users[c.ID]
	for i, x := range conns {
		if x == c {
			last := len(conns) - 1
			conns[i] = conns[last]
			conns[last] = nil
			conns = conns[:last]
			break
		}
	}
	if len(conns) == 0 {
		delete(s.users, c.ID)
	} else {
		s.users[c.ID] = conns
	}
	s.mu.Unlock()
	m.count.Add(-1)
}

// Connections returns a snapshot of the user's connections.
func (m *ConnectionManager[U]) Connections(userID int64) []*Connection[U] {
	s := m.shard(userID)
	s.mu.RLock()
	defer s.mu.RUnlock()
	conns := s.users[userID]
	if len(conns) == 0 {
		return nil
	}
	out := make([]*Connection[U], len(conns))
	copy(out, conns)
	return out
}

// ForEach calls fn for every connection of a snapshot taken shard by shard; fn
// runs without any registry lock held, so it may call the manager.
func (m *ConnectionManager[U]) ForEach(fn func(*Connection[U])) {
	for _, c := range m.snapshot() {
		fn(c)
	}
}

func (m *ConnectionManager[U]) snapshot() []*Connection[U] {
	out := make([]*Connection[U], 0, m.count.Load())
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		for _, conns := range s.users {
			out = append(out, conns...)
		}
		s.mu.RUnlock()
	}
	return out
}

// GetActiveConnectionsCount returns the number of registered connections.
func (m *ConnectionManager[U]) GetActiveConnectionsCount() int {
	return int(m.count.Load())
}

// Shutdown stops accepting handshakes (they get 503), closes every connection
// with 1001 "server shutting down" and waits until every pump has ended and
// every OnDisconnect has returned. When ctx ends first, it drops the remaining
// sockets without waiting further and returns ctx.Err(). http.Server.Shutdown
// does not close hijacked connections: call this one as well.
func (m *ConnectionManager[U]) Shutdown(ctx context.Context) error {
	m.stateMu.Lock()
	m.stopping.Store(true)
	m.stateMu.Unlock()

	for _, c := range m.snapshot() {
		c.Close(websocket.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range m.snapshot() {
			_ = c.ws.NetConn().Close()
		}
		return ctx.Err()
	}
}

// newPID returns a server-generated pid.
func (m *ConnectionManager[U]) newPID() string {
	if m.cb.GeneratePID != nil {
		return m.cb.GeneratePID()
	}
	return m.pids.Next()
}
