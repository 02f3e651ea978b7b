package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/door"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// fakeResolver knows a few tokens; "down" makes it unavailable.
type fakeResolver struct {
	calls   atomic.Int64
	expires int64
	gate    chan struct{} // when set, calls wait on it
}

func (f *fakeResolver) ResolveSession(_ context.Context, r *connect.Request[profilev1.ResolveSessionRequest]) (*connect.Response[profilev1.ResolveSessionResponse], error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	switch tok := r.Msg.GetToken(); {
	case tok == "down":
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("db down"))
	case tok == "expired":
		return connect.NewResponse(&profilev1.ResolveSessionResponse{SessionId: 9, ExpiresAt: 1, User: &profilev1.User{Id: 3}}), nil
	case strings.HasPrefix(tok, "good"):
		var n int64
		fmt.Sscanf(strings.TrimPrefix(tok, "good"), "%d", &n)
		exp := f.expires
		if exp == 0 {
			exp = time.Now().Add(time.Hour).UnixMilli()
		}
		return connect.NewResponse(&profilev1.ResolveSessionResponse{SessionId: 100 + n, ExpiresAt: exp,
			User: &profilev1.User{Id: 1 + n, UserName: "alice", FirstName: "Alice", LastName: "A"}}), nil
	}
	return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown token"))
}

func request(query, header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/ws"+query, nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return r
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		query      string
		header     string
		wantStatus int // 0: accepted
		wantUser   int64
	}{
		{"query", "?token=good0", "", 0, 1},
		{"query with Bearer", "?token=Bearer%20good0", "", 0, 1},
		{"header", "", "Bearer good1", 0, 2},
		{"header lower-case scheme", "", "bearer good1", 0, 2},
		{"both equal", "?token=good1", "Bearer good1", 0, 2},
		{"both different", "?token=good1", "Bearer good2", 401, 0},
		{"missing", "", "", 401, 0},
		{"empty query", "?token=", "", 401, 0},
		{"basic auth", "", "Basic Zm9vOmJhcg==", 401, 0},
		{"unknown", "?token=nope", "", 401, 0},
		{"expired", "?token=expired", "", 401, 0},
		{"profile down", "?token=down", "", 503, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := New(&fakeResolver{}, Options{})
			id, data, err := a.Authenticate(request(tt.query, tt.header))
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				if id != tt.wantUser || data.Username != "alice" || data.SessionID != 100+tt.wantUser-1 || data.ExpiresAt == 0 {
					t.Errorf("got user %d %+v, want user %d", id, data, tt.wantUser)
				}
				return
			}
			var ref *Refusal
			if !errors.As(err, &ref) {
				t.Fatalf("got %v, want a refusal", err)
			}
			if ref.Status != tt.wantStatus {
				t.Errorf("status: got %d, want %d", ref.Status, tt.wantStatus)
			}
		})
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := &fakeResolver{expires: now.Add(time.Minute).UnixMilli()}
	a := New(f, Options{CacheTTL: 5 * time.Second, Now: clock})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, _, err := a.Resolve(ctx, "good0"); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("lookups within the TTL: got %d, want 1", got)
	}
	advance(5 * time.Second)
	if _, _, err := a.Resolve(ctx, "good0"); err != nil {
		t.Fatal(err)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("lookups after the TTL: got %d, want 2", got)
	}
	// Failures are not cached: a refused token is asked again.
	for i := 0; i < 2; i++ {
		if _, _, err := a.Resolve(ctx, "nope"); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("got %v, want ErrInvalidToken", err)
		}
	}
	if got := f.calls.Load(); got != 4 {
		t.Errorf("lookups of a refused token: got %d, want 4", got)
	}
	// Forget drops a session's entries.
	a.Forget(100)
	if _, _, err := a.Resolve(ctx, "good0"); err != nil {
		t.Fatal(err)
	}
	if got := f.calls.Load(); got != 5 {
		t.Errorf("lookups after Forget: got %d, want 5", got)
	}
	// A cached session past its expiry is not served from the cache.
	advance(2 * time.Minute)
	if _, _, err := a.Resolve(ctx, "good0"); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired session: got %v, want ErrInvalidToken", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	f := &fakeResolver{}
	a := New(f, Options{CacheEntries: 50})
	for i := 0; i < 500; i++ {
		if _, _, err := a.Resolve(context.Background(), fmt.Sprintf("good%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Len(); got > 50 {
		t.Errorf("cache entries: got %d, want at most 50", got)
	}
}

func TestConcurrentHandshakesShareOneLookup(t *testing.T) {
	t.Parallel()
	f := &fakeResolver{gate: make(chan struct{})}
	a := New(f, Options{})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := a.Authenticate(request("?token=good0", ""))
			errs <- err
		}()
	}
	// Let the first lookup through only once every handshake is waiting on it or queued.
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("lookups for %d concurrent handshakes: got %d, want 1", n, got)
	}
}

// TestRefusalReasons: every refusal carries one of RefusalReasons; a service failure
// keeps its cause (for the hub's log) behind ErrUnavailable.
func TestRefusalReasons(t *testing.T) {
	t.Parallel()
	a := New(&fakeResolver{}, Options{})
	for _, tt := range []struct {
		r    *http.Request
		want *Refusal
	}{
		{request("", ""), ErrNoToken},
		{request("?token=good1", "Bearer good2"), ErrTokenMismatch},
		{request("?token=nope", ""), ErrInvalidToken},
		{request("?token=expired", ""), ErrInvalidToken},
		{request("?token=down", ""), ErrUnavailable},
	} {
		_, _, err := a.Authenticate(tt.r)
		var ref *Refusal
		if !errors.As(err, &ref) || ref != tt.want {
			t.Errorf("got %v, want %v", err, tt.want)
			continue
		}
		if !slices.Contains(RefusalReasons, ref.Reason) {
			t.Errorf("reason %q of %v is not in RefusalReasons %v", ref.Reason, ref, RefusalReasons)
		}
		if ref == ErrUnavailable && !strings.Contains(err.Error(), "db down") {
			t.Errorf("unavailable: got %q, want the cause in the error", err)
		}
	}
}

// TestForgetDuringLookup: an answer that was on its way when the session ended is not
// cached, and a handshake arriving after Forget does not share the old lookup.
func TestForgetDuringLookup(t *testing.T) {
	t.Parallel()
	f := &fakeResolver{gate: make(chan struct{})}
	a := New(f, Options{})
	first := make(chan error, 1)
	go func() {
		_, _, err := a.Resolve(context.Background(), "good0")
		first <- err
	}()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	a.Forget(100) // the session of good0 ends while its lookup waits at the gate
	second := make(chan error, 1)
	go func() {
		_, _, err := a.Resolve(context.Background(), "good0")
		second <- err
	}()
	for f.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(f.gate)
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("lookups: got %d, want 2 (one before Forget, one after)", got)
	}
	// Only the lookup begun after Forget was cached.
	if got := a.Len(); got != 1 {
		t.Errorf("cache entries: got %d, want 1", got)
	}
	a.Forget(100)
	if got := a.Len(); got != 0 {
		t.Errorf("cache entries after the second Forget: got %d, want 0", got)
	}
}

// TestLeaverDoesNotFailOthers: a handshake that gives up waiting does not fail the lookup
// the others wait for.
func TestLeaverDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	f := &fakeResolver{gate: make(chan struct{})}
	a := New(f, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		_, _, err := a.Resolve(ctx, "good0")
		left <- err
	}()
	stayed := make(chan error, 1)
	go func() {
		_, _, err := a.Resolve(context.Background(), "good0")
		stayed <- err
	}()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-left; err != ErrUnavailable {
		t.Errorf("the handshake that left: got %v, want %v", err, ErrUnavailable)
	}
	close(f.gate)
	if err := <-stayed; err != nil {
		t.Errorf("the handshake that stayed: %v", err)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("lookups: got %d, want 1", got)
	}
}

// TestFailedHandshakesLimited: an address that failed its burst of handshakes is refused
// with 429 before any token lookup; a 503 (the service's failure) does not count; other
// addresses are unaffected.
func TestFailedHandshakesLimited(t *testing.T) {
	t.Parallel()
	f := &fakeResolver{}
	a := New(f, Options{CacheTTL: -1, Door: door.New(door.Config{Rate: 1, Burst: 3})})
	from := func(remote, token string) *http.Request {
		r := request("?token="+token, "")
		r.RemoteAddr = remote
		return r
	}
	for range 5 {
		if _, _, err := a.Authenticate(from("192.0.2.1:1", "down")); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("lookup while the service is down: got %v, want %v", err, ErrUnavailable)
		}
	}
	for i := range 3 {
		if _, _, err := a.Authenticate(from("192.0.2.1:1", "wrong")); err != ErrInvalidToken {
			t.Fatalf("bad token %d: got %v, want %v", i+1, err, ErrInvalidToken)
		}
	}
	lookups := f.calls.Load()
	_, _, err := a.Authenticate(from("192.0.2.1:2", "good1"))
	if err != ErrTooManyFailed {
		t.Fatalf("after the burst of failures: got %v, want %v", err, ErrTooManyFailed)
	}
	if got := f.calls.Load(); got != lookups {
		t.Errorf("lookups: got %d after the refusal, want %d (none)", got, lookups)
	}
	if _, _, err := a.Authenticate(from("192.0.2.2:1", "good1")); err != nil {
		t.Errorf("another address: %v", err)
	}
}
