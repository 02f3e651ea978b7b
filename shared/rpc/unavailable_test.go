package rpc_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"sync"
	"syscall"
	"testing"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/tcpproxy"
)

func TestIsUnavailableClassifies(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), false},
		{"canceled", context.Canceled, false},
		{"connect unavailable", connect.NewError(connect.CodeUnavailable, errors.New("down")), true},
		{"connect not found", connect.NewError(connect.CodeNotFound, errors.New("no such user")), false},
		{"server's internal error", connect.NewError(connect.CodeInternal, errors.New("internal error")), false},
		{"connect deadline wrapping a reset", connect.NewError(connect.CodeDeadlineExceeded, syscall.ECONNRESET), false},
		{"unknown: body cut short", connect.NewError(connect.CodeUnknown, fmt.Errorf("read message: %w", io.ErrUnexpectedEOF)), true},
		{"internal: protocol error EOF", connect.NewError(connect.CodeInternal, fmt.Errorf("protocol error: %w", io.ErrUnexpectedEOF)), true},
		{"canceled: a reset, as connect may report it", connect.NewError(connect.CodeCanceled, &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}), true},
		{"canceled by the caller", connect.NewError(connect.CodeCanceled, context.Canceled), false},
		{"dial refused", fmt.Errorf("open mysql: %w", refused), true},
		{"reset", fmt.Errorf("query: %w", syscall.ECONNRESET), true},
		{"bad conn", fmt.Errorf("query: %w", driver.ErrBadConn), true},
		{"net closed", net.ErrClosed, true},
		{"h2 connection lost", errors.New("http2: client connection lost"), true},
		{"h2 connection closed before its first request", errors.New("http2: client conn could not be established"), true},
	} {
		if got := rpc.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestIsUnavailableOnRealFailures makes a Connect client meet a peer that is down, and one
// whose connection dies in the middle of a call: both are unavailable, for every protocol.
func TestIsUnavailableOnRealFailures(t *testing.T) {
	t.Parallel()
	protocols := map[string][]connect.ClientOption{
		"connect": nil, "grpc": {connect.WithGRPC()}, "grpcweb": {connect.WithGRPCWeb()},
	}
	for name, opts := range protocols {
		t.Run(name+"/closed port", func(t *testing.T) {
			t.Parallel()
			c := presencev1connect.NewPresenceServiceClient(rpc.NewHTTPClient(), "http://"+closedAddr(t), opts...)
			_, err := c.GetPresence(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{}))
			if err == nil || !rpc.IsUnavailable(err) {
				t.Fatalf("call to a closed port: err = %v (code %v), want unavailable", err, connect.CodeOf(err))
			}
		})
		t.Run(name+"/reset mid-call", func(t *testing.T) {
			t.Parallel()
			h := &hangingPresence{called: make(chan struct{})}
			path, handler := presencev1connect.NewPresenceServiceHandler(h)
			srv := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: presencev1connect.PresenceServiceName, Path: path, Handler: handler}))
			srv.Config.Protocols = rpc.Protocols()
			srv.Start()
			t.Cleanup(srv.Close)
			p := cutProxy(t, srv.Listener.Addr().String())
			go func() {
				<-h.called
				p.Cut() // the process holding the call dies
			}()
			c := presencev1connect.NewPresenceServiceClient(rpc.NewHTTPClient(), "http://"+p.Addr(), opts...)
			_, err := c.GetPresence(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{}))
			if err == nil || !rpc.IsUnavailable(err) {
				t.Fatalf("call whose connection died: err = %v (code %v), want unavailable", err, connect.CodeOf(err))
			}
		})
		t.Run(name+"/stream cut after a message", func(t *testing.T) {
			t.Parallel()
			h := &hangingPresence{called: make(chan struct{})}
			path, handler := presencev1connect.NewPresenceServiceHandler(h)
			srv := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: presencev1connect.PresenceServiceName, Path: path, Handler: handler}))
			srv.Config.Protocols = rpc.Protocols()
			srv.Start()
			t.Cleanup(srv.Close)
			p := cutProxy(t, srv.Listener.Addr().String())
			c := presencev1connect.NewPresenceServiceClient(rpc.NewHTTPClient(), "http://"+p.Addr(), opts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := c.StreamEvents(ctx, connect.NewRequest(&presencev1.StreamEventsRequest{EdgeId: "e"}))
			if err != nil {
				t.Fatalf("StreamEvents: %v", err)
			}
			defer stream.Close()
			if !stream.Receive() {
				t.Fatalf("first message: %v", stream.Err())
			}
			p.Cut()
			for stream.Receive() {
			}
			if err := stream.Err(); err == nil || !rpc.IsUnavailable(err) {
				t.Fatalf("stream whose connection died: err = %v (code %v), want unavailable", err, connect.CodeOf(err))
			}
		})
	}
}

// hangingPresence answers GetPresence never (until its context ends), and StreamEvents with
// one message and then nothing.
type hangingPresence struct {
	presencev1connect.UnimplementedPresenceServiceHandler
	once   sync.Once
	called chan struct{}
}

func (h *hangingPresence) GetPresence(ctx context.Context, _ *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	h.once.Do(func() { close(h.called) })
	<-ctx.Done()
	return nil, ctx.Err()
}

func (h *hangingPresence) StreamEvents(ctx context.Context, _ *connect.Request[presencev1.StreamEventsRequest], s *connect.ServerStream[presencev1.StreamEventsResponse]) error {
	if err := s.Send(&presencev1.StreamEventsResponse{}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// closedAddr returns an address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// cutProxy forwards to target until cut (tcpproxy), and is closed when the test ends.
func cutProxy(t *testing.T, target string) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Cut)
	return p
}
