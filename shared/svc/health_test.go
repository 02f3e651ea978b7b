package svc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/grpchealth"
	"github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/health"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
)

// proxy is a TCP proxy that can be cut and restored on the same address: a database
// server going away and coming back, as far as its clients can tell.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{addr: "127.0.0.1:0", target: target, conns: map[net.Conn]struct{}{}}
	p.start(t)
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every connection through it.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func startNATS(t *testing.T, port int) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("embedded NATS: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// waitStatus asks h until it answers want: the NATS client reconnects on its own schedule.
func waitStatus(t *testing.T, h *health.Checker, want grpchealth.Status, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := h.Check(context.Background(), &grpchealth.CheckRequest{})
		if err == nil && res.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: health still %v (%v), want %v; reasons %v", what, res, err, want, h.Status(context.Background()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestChecksOfRealDependencies runs svc.Checks against a real MySQL reached through a
// proxy that the test cuts, and a real NATS server that the test stops and starts again:
// health goes NOT_SERVING and comes back without anyone touching the process.
func TestChecksOfRealDependencies(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t, sqldb.MySQL) // skips without MYSQL_TEST_DSN
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(url, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	dbProxy := newProxy(t, cfg.Addr)
	cfg.Addr = dbProxy.addr
	db := dbtest.OpenURL(t, "mysql://"+cfg.FormatDSN())

	natsSrv := startNATS(t, -1)
	port := natsSrv.Addr().(*net.TCPAddr).Port
	b, err := bus.Open(natsSrv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	h := health.New("chat.v1.ChatService")
	svc.Checks(h, "chatsvc", db, b)
	waitStatus(t, h, grpchealth.StatusServing, "all up")

	dbProxy.stop()
	waitStatus(t, h, grpchealth.StatusNotServing, "database cut")
	if r := h.Status(context.Background()); r["chatsvc database"] == "" || r["bus"] != "" {
		t.Errorf("reasons with the database cut: %v, want the database only", r)
	}
	dbProxy.start(t)
	waitStatus(t, h, grpchealth.StatusServing, "database back")

	natsSrv.Shutdown()
	natsSrv.WaitForShutdown()
	waitStatus(t, h, grpchealth.StatusNotServing, "NATS stopped")
	if r := h.Status(context.Background()); r["bus"] == "" {
		t.Errorf("reasons with NATS stopped: %v, want the bus", r)
	}
	startNATS(t, port)
	waitStatus(t, h, grpchealth.StatusServing, "NATS back")
}

// TestMuxProbes: /ready follows the checker, /health only says the process serves.
func TestMuxProbes(t *testing.T) {
	t.Parallel()
	h := health.New("charla.test.v1.Ping")
	down := make(chan struct{})
	h.Add("database", func(context.Context) error {
		select {
		case <-down:
			return errors.New("connection refused")
		default:
			return nil
		}
	})
	srv := httptest.NewServer(svc.Mux(nil, h))
	t.Cleanup(srv.Close)
	get := func(path string) int {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if r, l := get("/ready"), get("/health"); r != 200 || l != 200 {
		t.Errorf("all up: /ready %d /health %d, want 200 200", r, l)
	}
	close(down)
	if r, l := get("/ready"), get("/health"); r != 503 || l != 200 {
		t.Errorf("database down: /ready %d /health %d, want 503 200", r, l)
	}
}
