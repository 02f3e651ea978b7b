package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/tcpproxy"
)

// replica is one replica of a presence service: a server behind a proxy that can be cut,
// as its process's death would. GetPresence answers with the replica's index as user id.
type replica struct {
	presencev1connect.UnimplementedPresenceServiceHandler
	index int
	hits  atomic.Int64
	proxy *tcpproxy.Proxy
	// trap, when set, holds the first GetPresence of the whole set (see trapReplicas).
	trap *trap
}

// trap holds the first call made to any replica of a set until the test ends it.
type trap struct {
	once    sync.Once
	arrived chan *replica
}

func (r *replica) GetPresence(ctx context.Context, _ *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	r.hits.Add(1)
	if r.trap != nil {
		first := false
		r.trap.once.Do(func() { first = true })
		if first {
			r.trap.arrived <- r
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return connect.NewResponse(&presencev1.GetPresenceResponse{Presences: []*presencev1.Presence{{UserId: int64(r.index)}}}), nil
}

// addr is where the replica is reached.
func (r *replica) addr() string { return "http://" + r.proxy.Addr() }

// startReplicas starts n replicas on loopback, all stopped when the test ends.
func startReplicas(t *testing.T, n int, tr *trap) []*replica {
	t.Helper()
	out := make([]*replica, n)
	for i := range out {
		r := &replica{index: i, trap: tr}
		path, h := presencev1connect.NewPresenceServiceHandler(r)
		srv := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: presencev1connect.PresenceServiceName, Path: path, Handler: h}))
		srv.Config.Protocols = rpc.Protocols()
		srv.Start()
		t.Cleanup(srv.Close)
		r.proxy = cutProxy(t, srv.Listener.Addr().String())
		out[i] = r
	}
	return out
}

// list is the comma-separated address of replicas.
func list(rs []*replica) string {
	addrs := make([]string, len(rs))
	for i, r := range rs {
		addrs[i] = r.addr()
	}
	return strings.Join(addrs, ",")
}

// dialCounter counts the connections a transport tried to make, per address.
type dialCounter struct {
	mu    sync.Mutex
	dials map[string]int
}

func (d *dialCounter) count(addr string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[addr]
}

// balanced returns a Balancer over addr on the internal transport (counting its dials),
// and a presence client through it; both are closed when the test ends.
func balanced(t *testing.T, addr string, opts rpc.BalancerOptions, clientOpts ...connect.ClientOption) (*rpc.Balancer, presencev1connect.PresenceServiceClient, *dialCounter) {
	t.Helper()
	dc := &dialCounter{dials: map[string]int{}}
	tr := rpc.NewHTTPClient().Transport.(*http.Transport).Clone()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dc.mu.Lock()
		dc.dials[addr]++
		dc.mu.Unlock()
		return dial(ctx, network, addr)
	}
	b, err := rpc.NewBalancer(addr, tr, opts)
	if err != nil {
		t.Fatalf("NewBalancer(%q): %v", addr, err)
	}
	t.Cleanup(func() {
		b.Close()
		tr.CloseIdleConnections()
	})
	c := presencev1connect.NewPresenceServiceClient(&http.Client{Transport: b}, b.BaseURL(), rpc.ClientOptions("", clientOpts...)...)
	return b, c, dc
}

// call makes one GetPresence and returns the index of the replica that answered.
func call(ctx context.Context, c presencev1connect.PresenceServiceClient) (int, error) {
	res, err := c.GetPresence(ctx, connect.NewRequest(&presencev1.GetPresenceRequest{}))
	if err != nil {
		return -1, err
	}
	return int(res.Msg.GetPresences()[0].GetUserId()), nil
}

// hits returns the calls each replica received.
func hits(rs []*replica) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.hits.Load()
	}
	return out
}

// longEjection keeps an ejected replica out for the whole test.
var longEjection = rpc.BalancerOptions{EjectFor: time.Hour, MaxEject: time.Hour}

func TestBalancerSpreadsCallsRoundRobin(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3, nil)
	_, c, _ := balanced(t, list(rs), rpc.BalancerOptions{})
	prev := -1
	for i := range 30 {
		got, err := call(context.Background(), c)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := (prev + 1) % 3; prev >= 0 && got != want {
			t.Fatalf("call %d answered by replica %d, want %d (the one after %d)", i, got, want, prev)
		}
		prev = got
	}
	if got, want := hits(rs), []int64{10, 10, 10}; !slices.Equal(got, want) {
		t.Errorf("hits = %v, want %v", got, want)
	}
}

func TestBalancerEjectsKilledReplica(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3, nil)
	b, c, dc := balanced(t, list(rs), longEjection)
	for range 3 {
		if _, err := call(context.Background(), c); err != nil {
			t.Fatalf("call before the kill: %v", err)
		}
	}
	rs[1].proxy.Cut()
	b.CloseIdleConnections() // the connection to the dead replica is gone: the next call dials
	for i := range 20 {
		got, err := call(context.Background(), c)
		if err != nil {
			t.Fatalf("call %d after replica 1 died: %v", i, err)
		}
		if got == 1 {
			t.Fatalf("call %d answered by the dead replica", i)
		}
	}
	if got, want := b.Ejected(), []string{rs[1].addr()}; !slices.Equal(got, want) {
		t.Errorf("ejected = %v, want %v", got, want)
	}
	// Dialled once before the kill and once after it, which failed and ejected it.
	if got := dc.count(rs[1].proxy.Addr()); got != 2 {
		t.Errorf("dials to the dead replica = %d, want 2", got)
	}
	if got := hits(rs); got[0]+got[2] != 22 || got[1] != 1 {
		t.Errorf("hits = %v, want 1 on replica 1 and 22 on the others", got)
	}
}

// TestBalancerRetriesCallNotSent: a call whose replica refuses the connection was not
// sent, so it goes to another replica, however little idempotent it is; only once.
func TestBalancerRetriesCallNotSent(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 1, nil)
	dead1, dead2 := closedAddr(t), closedAddr(t)
	t.Run("another replica answers", func(t *testing.T) {
		b, c, dc := balanced(t, "http://"+dead1+","+rs[0].addr(), longEjection)
		for i := range 2 { // one of them is the dead replica's turn
			if got, err := call(context.Background(), c); err != nil || got != 0 {
				t.Fatalf("call %d = %d, %v; want replica 0's answer", i, got, err)
			}
		}
		if got, want := b.Ejected(), []string{"http://" + dead1}; !slices.Equal(got, want) {
			t.Errorf("ejected = %v, want %v", got, want)
		}
		if got := dc.count(dead1); got != 1 {
			t.Errorf("dials to the dead replica = %d, want 1", got)
		}
	})
	t.Run("every replica dead", func(t *testing.T) {
		_, c, dc := balanced(t, dead1+","+dead2, longEjection)
		_, err := call(context.Background(), c)
		if !rpc.IsUnavailable(err) {
			t.Fatalf("call with every replica dead: err = %v, want unavailable", err)
		}
		if got1, got2 := dc.count(dead1), dc.count(dead2); got1 != 1 || got2 != 1 {
			t.Errorf("dials = %d and %d, want one to each (sent once, retried once)", got1, got2)
		}
	})
}

// notEstablished fails every request to addr as net/http fails the first request of a new
// HTTP/2 connection that closed before the request could be written (a replica accepting
// the connection as it shuts down: a race a test cannot provoke at will), and sends the
// others on next.
type notEstablished struct {
	addr  string
	next  http.RoundTripper
	tries atomic.Int64
}

func (n *notEstablished) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == n.addr {
		n.tries.Add(1)
		return nil, errors.New("http2: client conn could not be established")
	}
	return n.next.RoundTrip(req)
}

// TestBalancerRetriesCallOnConnectionClosedBeforeUse: a call whose new connection closed
// before the call was written on it was not sent either, so it goes to another replica
// even when it is not idempotent, and the replica is ejected.
func TestBalancerRetriesCallOnConnectionClosedBeforeUse(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 2, nil)
	closing := strings.TrimPrefix(rs[0].addr(), "http://")
	tr := rpc.NewHTTPClient().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	ne := &notEstablished{addr: closing, next: tr}
	b, err := rpc.NewBalancer(list(rs), ne, longEjection)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c := presencev1connect.NewPresenceServiceClient(&http.Client{Transport: b}, b.BaseURL(),
		rpc.ClientOptions("", connect.WithIdempotency(connect.IdempotencyUnknown))...)
	for i := range 2 { // one of them is the closing replica's turn
		if got, err := call(context.Background(), c); err != nil || got != 1 {
			t.Fatalf("call %d = %d, %v; want replica 1's answer", i, got, err)
		}
	}
	if got, want := b.Ejected(), []string{rs[0].addr()}; !slices.Equal(got, want) {
		t.Errorf("ejected = %v, want %v", got, want)
	}
	if got := ne.tries.Load(); got != 1 {
		t.Errorf("tries on the closing replica = %d, want 1", got)
	}
}

// trapped starts two replicas whose first call is held, makes call in the background,
// kills the replica holding it, and returns the replicas, the killed one and the result.
func trapped(t *testing.T, b func(addr string) (*rpc.Balancer, func() (int, error))) ([]*replica, *replica, *rpc.Balancer, int, error) {
	t.Helper()
	tr := &trap{arrived: make(chan *replica, 1)}
	rs := startReplicas(t, 2, tr)
	bal, do := b(list(rs))
	type result struct {
		got int
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := do()
		done <- result{got, err}
	}()
	victim := <-tr.arrived // the call reached this replica, which now dies
	victim.proxy.Cut()
	r := <-done
	return rs, victim, bal, r.got, r.err
}

func TestBalancerRetriesIdempotentCallElsewhere(t *testing.T) {
	t.Parallel()
	for name, mark := range map[string]func(context.Context) context.Context{
		"procedure declared idempotent": nil,
		"context marked idempotent":     rpc.Idempotent,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rs, victim, b, got, err := trapped(t, func(addr string) (*rpc.Balancer, func() (int, error)) {
				if mark != nil {
					b, c, _ := balanced(t, addr, longEjection)
					return b, func() (int, error) { return call(mark(context.Background()), c) }
				}
				b, _, _ := balanced(t, addr, longEjection)
				c := connect.NewClient[presencev1.GetPresenceRequest, presencev1.GetPresenceResponse](&http.Client{Transport: b},
					b.BaseURL()+presencev1connect.PresenceServiceGetPresenceProcedure,
					rpc.ClientOptions("", connect.WithIdempotency(connect.IdempotencyNoSideEffects))...)
				return b, func() (int, error) {
					res, err := c.CallUnary(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{}))
					if err != nil {
						return -1, err
					}
					return int(res.Msg.GetPresences()[0].GetUserId()), nil
				}
			})
			if err != nil {
				t.Fatalf("idempotent call whose replica died under it: %v, want the other replica's answer", err)
			}
			if got == victim.index {
				t.Errorf("answered by replica %d, the dead one", got)
			}
			if got, want := hits(rs), []int64{1, 1}; !slices.Equal(got, want) {
				t.Errorf("hits = %v, want %v (sent to each once)", got, want)
			}
			if got, want := b.Ejected(), []string{victim.addr()}; !slices.Equal(got, want) {
				t.Errorf("ejected = %v, want %v", got, want)
			}
		})
	}
}

func TestBalancerDoesNotResendCallThatMayHaveArrived(t *testing.T) {
	t.Parallel()
	rs, victim, b, _, err := trapped(t, func(addr string) (*rpc.Balancer, func() (int, error)) {
		// GetPresence is declared free of side effects; this client forgets it, as a
		// procedure that changes something would be called.
		b, c, _ := balanced(t, addr, longEjection, connect.WithIdempotency(connect.IdempotencyUnknown))
		return b, func() (int, error) { return call(context.Background(), c) }
	})
	if err == nil || !rpc.IsUnavailable(err) {
		t.Fatalf("call whose replica died under it: err = %v (code %v), want unavailable", err, connect.CodeOf(err))
	}
	if got, want := hits(rs)[victim.index], int64(1); got != want {
		t.Errorf("hits on the dead replica = %d, want %d", got, want)
	}
	if got := hits(rs)[1-victim.index]; got != 0 {
		t.Errorf("hits on the other replica = %d, want 0 (the call is not sent again)", got)
	}
	if got, want := b.Ejected(), []string{victim.addr()}; !slices.Equal(got, want) {
		t.Errorf("ejected = %v, want %v", got, want)
	}
}

// TestBalancerOneReplica: one address behaves as without a Balancer: the same base URL,
// every call to it, and a dead one fails the call after one dial.
func TestBalancerOneReplica(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 1, nil)
	addr := strings.TrimPrefix(rs[0].addr(), "http://")
	b, c, _ := balanced(t, addr, rpc.BalancerOptions{})
	if got, want := b.BaseURL(), rpc.BaseURL(addr); got != want {
		t.Errorf("BaseURL = %q, want %q", got, want)
	}
	for range 3 {
		if _, err := call(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	dead := closedAddr(t)
	_, c, dc := balanced(t, dead, rpc.BalancerOptions{})
	for i := range 2 {
		if _, err := call(context.Background(), c); !rpc.IsUnavailable(err) {
			t.Fatalf("call %d to a dead single replica: err = %v, want unavailable", i, err)
		}
	}
	if got := dc.count(dead); got != 2 {
		t.Errorf("dials = %d, want 2 (one per call: an ejected single replica is still tried)", got)
	}
}

// resolver is a DNS stand-in: it answers with the hosts set last and reports every
// lookup on calls before answering (until the balancer stops).
type resolver struct {
	mu    sync.Mutex
	hosts []string
	err   error
	calls chan string
}

func (r *resolver) set(hosts []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts, r.err = hosts, err
}

func (r *resolver) lookup(ctx context.Context, host string) ([]string, error) {
	select {
	case r.calls <- host:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hosts, r.err
}

// settle waits for two lookups: the second one starts after the first one's answer was
// applied, and the first one read the answer set before.
func (r *resolver) settle(t *testing.T) {
	t.Helper()
	for range 2 {
		select {
		case <-r.calls:
		case <-time.After(30 * time.Second):
			t.Fatal("no lookup within 30s")
		}
	}
}

// listenOn starts a replica on each of hosts (loopback addresses), all on one port.
func listenOn(t *testing.T, hosts ...string) (string, []*atomic.Int64) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port, counters, err := tryListenOn(t, hosts)
		if err == nil {
			return port, counters
		}
		if attempt == 10 {
			t.Skipf("cannot listen on %v with one port: %v", hosts, err)
		}
	}
}

func tryListenOn(t *testing.T, hosts []string) (string, []*atomic.Int64, error) {
	port := "0"
	var lns []net.Listener
	for _, h := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(h, port))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return "", nil, err
		}
		lns = append(lns, ln)
		_, port, _ = net.SplitHostPort(ln.Addr().String())
	}
	var counters []*atomic.Int64
	for i, ln := range lns {
		r := &replica{index: i}
		path, h := presencev1connect.NewPresenceServiceHandler(r)
		srv := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: presencev1connect.PresenceServiceName, Path: path, Handler: h}))
		srv.Listener.Close()
		srv.Listener = ln
		srv.Config.Protocols = rpc.Protocols()
		srv.Start()
		t.Cleanup(srv.Close)
		counters = append(counters, &r.hits)
	}
	return port, counters, nil
}

func TestBalancerFollowsDNS(t *testing.T) {
	t.Parallel()
	port, counters := listenOn(t, "127.0.0.2", "127.0.0.3")
	res := &resolver{hosts: []string{"127.0.0.2"}, calls: make(chan string)}
	name := "replicas.test:" + port
	b, c, _ := balanced(t, name, rpc.BalancerOptions{Lookup: res.lookup, ResolveEvery: time.Millisecond})
	loaded := func() []int64 { return []int64{counters[0].Load(), counters[1].Load()} }
	steps := []struct {
		hosts []string
		err   error
		want  []string
		calls []int64 // hits added by four calls
	}{
		{[]string{"127.0.0.2"}, nil, []string{"http://127.0.0.2:" + port}, []int64{4, 0}},
		{[]string{"127.0.0.3", "127.0.0.2", "127.0.0.3"}, nil, []string{"http://127.0.0.2:" + port, "http://127.0.0.3:" + port}, []int64{2, 2}},
		{[]string{"127.0.0.3"}, nil, []string{"http://127.0.0.3:" + port}, []int64{0, 4}},
		// A lookup that fails keeps what the last one gave.
		{nil, errors.New("server misbehaving"), []string{"http://127.0.0.3:" + port}, []int64{0, 4}},
		// A name that no longer exists is its own replica again: the dialer resolves it.
		{nil, &net.DNSError{Err: "no such host", Name: "replicas.test", IsNotFound: true}, []string{"http://" + name}, nil},
	}
	for i, s := range steps {
		res.set(s.hosts, s.err)
		res.settle(t)
		if got := b.Replicas(); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: replicas = %v, want %v", i, got, s.want)
		}
		if s.calls == nil {
			continue
		}
		before := loaded()
		for range 4 {
			if _, err := call(context.Background(), c); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		after := loaded()
		if got := []int64{after[0] - before[0], after[1] - before[1]}; !slices.Equal(got, s.calls) {
			t.Errorf("step %d: hits = %v, want %v", i, got, s.calls)
		}
	}
	// Close stops the lookups (goleak in TestMain checks that the goroutine ended).
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-res.calls:
		t.Errorf("lookup of %s after Close", h)
	default:
	}
}

func TestBalancerNeedsNoGoroutineForAddresses(t *testing.T) {
	t.Parallel()
	lookup := func(context.Context, string) ([]string, error) {
		t.Error("lookup of an address or localhost")
		return nil, nil
	}
	for _, addr := range []string{"127.0.0.1:1", "http://[::1]:2,localhost:3"} {
		b, err := rpc.NewBalancer(addr, http.DefaultTransport, rpc.BalancerOptions{Lookup: lookup})
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
}

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v       string
		wantErr string // "" for valid
	}{
		{"127.0.0.1:8091", ""},
		{"chatsvc:8090", ""},
		{"http://10.0.0.1:8081,http://10.0.0.2:8081", ""},
		{"10.0.0.1:8081, 10.0.0.2:8081 ,http://[::1]:8081", ""},
		{"https://chat.example.com", ""},
		{"http://a:1/prefix,http://b:1/prefix/", ""},
		{"", "empty"},
		{"10.0.0.1:8081,", `entry 2 of 2 (""): empty entry`},
		{"10.0.0.1:8081,10.0.0.2", `entry 2 of 2 ("10.0.0.2"): want host:port`},
		{"10.0.0.1:8081,10.0.0.2:99999", "entry 2 of 2"},
		{"ftp://x:1", `scheme "ftp"`},
		{"http://:8081", "no host"},
		{":8081", "no host"},
		{"http://u:p@x:1", "user info"},
		{"http://x:1?a=b", "query"},
		{"http://a:1/x,http://b:1/y", `entry 2 of 2 ("http://b:1/y"): path "/y" differs`},
		{"a b:1", "white space"},
		{"http://x:0", `port "0"`},
	} {
		err := rpc.CheckTarget(tc.v)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckTarget(%q) = %v, want nil", tc.v, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckTarget(%q) = %v, want an error containing %q", tc.v, err, tc.wantErr)
		}
	}
}

// TestBalancerBaseURLAndHost: the client's base URL is the first entry's; each request
// reaches its replica with that replica's entry as Host.
func TestBalancerBaseURLAndHost(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	srvs := make([]string, 2)
	for i := range srvs {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, strconv.Itoa(i)+" "+r.Host+r.URL.Path)
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		srvs[i] = strings.TrimPrefix(srv.URL, "http://")
	}
	b, err := rpc.NewBalancer(fmt.Sprintf("http://%s/p/,%s/p", srvs[0], "http://"+srvs[1]), http.DefaultTransport, rpc.BalancerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if want := "http://" + srvs[0] + "/p"; b.BaseURL() != want {
		t.Errorf("BaseURL = %q, want %q", b.BaseURL(), want)
	}
	hc := &http.Client{Transport: b}
	for range 2 {
		res, err := hc.Get(b.BaseURL() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	hc.CloseIdleConnections()
	slices.Sort(got) // the turns start at either replica
	if want := []string{"0 " + srvs[0] + "/p/x", "1 " + srvs[1] + "/p/x"}; !slices.Equal(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

// TestBalancerConcurrentCalls: calls made at once, over replicas one of which is dead
// from the start, all succeed (the race detector watches the bookkeeping).
func TestBalancerConcurrentCalls(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 2, nil)
	dead := "http://" + closedAddr(t)
	b, c, _ := balanced(t, list(rs)+","+dead, longEjection)
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for range 60 {
		wg.Go(func() {
			if _, err := call(context.Background(), c); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call: %v", err)
	}
	if got, want := b.Ejected(), []string{dead}; !slices.Equal(got, want) {
		t.Errorf("ejected = %v, want %v", got, want)
	}
	if got := hits(rs); got[0]+got[1] != 60 {
		t.Errorf("hits = %v, want 60 in all", got)
	}
}
