package presence

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
)

// fakeClient loses the lease on demand and records connections.
type fakeClient struct {
	mu          sync.Mutex
	registers   int
	lost        bool
	conns       map[string]bool
	disconnects chan string
	connects    chan string
}

func newFake() *fakeClient {
	return &fakeClient{conns: map[string]bool{}, disconnects: make(chan string, 100), connects: make(chan string, 100)}
}

func (f *fakeClient) RegisterEdge(context.Context, *connect.Request[presencev1.RegisterEdgeRequest]) (*connect.Response[presencev1.RegisterEdgeResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registers++
	f.lost = false
	f.conns = map[string]bool{} // a new lease drops what the edge held
	return connect.NewResponse(&presencev1.RegisterEdgeResponse{LeaseMs: 30}), nil
}

func (f *fakeClient) Heartbeat(context.Context, *connect.Request[presencev1.HeartbeatRequest]) (*connect.Response[presencev1.HeartbeatResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lost {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no lease"))
	}
	return connect.NewResponse(&presencev1.HeartbeatResponse{}), nil
}

func (f *fakeClient) Connect(_ context.Context, r *connect.Request[presencev1.ConnectRequest]) (*connect.Response[presencev1.ConnectResponse], error) {
	f.mu.Lock()
	f.conns[r.Msg.GetConnectionId()] = true
	f.mu.Unlock()
	f.connects <- r.Msg.GetConnectionId()
	return connect.NewResponse(&presencev1.ConnectResponse{}), nil
}

func (f *fakeClient) Disconnect(_ context.Context, r *connect.Request[presencev1.DisconnectRequest]) (*connect.Response[presencev1.DisconnectResponse], error) {
	f.mu.Lock()
	delete(f.conns, r.Msg.GetConnectionId())
	f.mu.Unlock()
	f.disconnects <- r.Msg.GetConnectionId()
	return connect.NewResponse(&presencev1.DisconnectResponse{}), nil
}

func TestLostLeaseReconnectsEveryConnection(t *testing.T) {
	t.Parallel()
	f := newFake()
	local := []Conn{{UserID: 1, ConnID: "c1"}, {UserID: 2, ConnID: "c2"}}
	r := New(f, Options{EdgeID: NewEdgeID(), Grace: time.Hour, Local: func() []Conn { return local }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	<-r.Registered()
	<-f.connects
	<-f.connects // both recorded after the first lease
	f.mu.Lock()
	f.lost = true
	f.mu.Unlock()
	// The next heartbeat finds the lease gone: the edge registers again and records both again.
	got := map[string]bool{<-f.connects: true, <-f.connects: true}
	if !got["c1"] || !got["c2"] {
		t.Errorf("re-recorded: got %v, want c1 and c2", got)
	}
	f.mu.Lock()
	if f.registers < 2 {
		t.Errorf("registers: got %d, want at least 2", f.registers)
	}
	f.mu.Unlock()
	cancel()
	<-done
}

func TestDisconnectGraceAndStop(t *testing.T) {
	t.Parallel()
	f := newFake()
	r := New(f, Options{EdgeID: "e1", Grace: time.Hour})
	r.Disconnected(Conn{UserID: 1, ConnID: "c1"})
	select {
	case id := <-f.disconnects:
		t.Fatalf("disconnect %s sent before the grace period", id)
	default:
	}
	// Shutdown sends the delayed one at once, and later ones immediately.
	r.Stop()
	if id := <-f.disconnects; id != "c1" {
		t.Errorf("got %s, want c1", id)
	}
	r.Disconnected(Conn{UserID: 2, ConnID: "c2"})
	if id := <-f.disconnects; id != "c2" {
		t.Errorf("got %s, want c2", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if id := NewEdgeID(); len(id) < 8 {
		t.Errorf("edge id %q too short", id)
	}
}
