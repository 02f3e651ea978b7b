package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
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
	calls   atomic.Int64 // RPCs answered: ResolveSessions and ResolveSession calls
	expires int64
	gate    chan struct{} // when set, calls wait on it
	// hold, when set, is waited on by the calls carrying the token "slow".
	hold chan struct{}
	// old makes it a profile service older than ResolveSessions: unimplemented.
	old atomic.Bool

	mu      sync.Mutex
	batches [][]string // the tokens of every ResolveSessions call, unimplemented ones too
	singles int        // ResolveSession calls
}

func (f *fakeResolver) ResolveSession(_ context.Context, r *connect.Request[profilev1.ResolveSessionRequest]) (*connect.Response[profilev1.ResolveSessionResponse], error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.singles++
	f.mu.Unlock()
	f.wait([]string{r.Msg.GetToken()})
	return f.resolve(r.Msg.GetToken())
}

// ResolveSessions answers each token as ResolveSession does.
func (f *fakeResolver) ResolveSessions(_ context.Context, r *connect.Request[profilev1.ResolveSessionsRequest]) (*connect.Response[profilev1.ResolveSessionsResponse], error) {
	toks := r.Msg.GetTokens()
	f.mu.Lock()
	f.batches = append(f.batches, slices.Clone(toks))
	f.mu.Unlock()
	if f.old.Load() {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("profile.v1.ProfileService.ResolveSessions is not implemented"))
	}
	f.calls.Add(1)
	f.wait(toks)
	res := &profilev1.ResolveSessionsResponse{}
	for _, tok := range toks {
		ses, err := f.resolve(tok)
		if err != nil {
			res.Results = append(res.Results, &profilev1.ResolveSessionsResult{ErrorCode: connect.CodeOf(err).String(), ErrorMessage: err.(*connect.Error).Message()})
			continue
		}
		res.Results = append(res.Results, &profilev1.ResolveSessionsResult{Session: ses.Msg})
	}
	return connect.NewResponse(res), nil
}

// wait holds a call on the gate, and on hold when it carries "slow".
func (f *fakeResolver) wait(toks []string) {
	if f.gate != nil {
		<-f.gate
	}
	if f.hold != nil && slices.Contains(toks, "slow") {
		<-f.hold
	}
}

// batchesAndSingles returns the tokens of every ResolveSessions call and the number of
// ResolveSession calls.
func (f *fakeResolver) batchesAndSingles() ([][]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches), f.singles
}

func (f *fakeResolver) resolve(tok string) (*connect.Response[profilev1.ResolveSessionResponse], error) {
	switch {
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

// TestConcurrentHandshakesShareOneLookup is not parallel: it counts its goroutines
// (waitSelecting).
func TestConcurrentHandshakesShareOneLookup(t *testing.T) {
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
	// Let the first lookup through only once every handshake is waiting on it: a handshake
	// that read the cache before the answer was stored but joined after the lookup ended
	// would make a second one.
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	waitSelecting(t, n, "/edge/internal/auth.(*Authenticator).Resolve(")
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
	// The second lookup waits for the batch in flight, so it is queued, not yet called.
	for a.Lookups() < 2 {
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

// waitSelecting waits until n goroutines wait in a select of the function whose frame
// (in a stack trace) contains every one of parts. The tests that use it are not parallel,
// so the goroutines counted are theirs.
func waitSelecting(t *testing.T, n int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		got := 0
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			header, frames, _ := strings.Cut(g, "\n")
			top, _, _ := strings.Cut(frames, "\n")
			if strings.Contains(header, "[select") && !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(top, p) }) {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines waiting in %q: %d, want %d", parts, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitLookups waits until n lookups wait for their batch, in flight or queued: blocked in
// coalesce's Do, which queues before it blocks.
func waitLookups(t *testing.T, n int) {
	t.Helper()
	waitSelecting(t, n, "/edge/internal/coalesce.(*Batcher[", "]).Do(")
}

// checkAnswer checks what Resolve answered for tok: goodN is user N+1 of session 100+N,
// "down" the service's failure with its cause, any other token refused.
func checkAnswer(t *testing.T, tok string, id int64, data UserData, err error) {
	t.Helper()
	var n int64
	switch _, scanErr := fmt.Sscanf(tok, "good%d", &n); {
	case scanErr == nil:
		if err != nil || id != n+1 || data.SessionID != 100+n {
			t.Errorf("%s: got user %d session %d (%v), want user %d session %d", tok, id, data.SessionID, err, n+1, 100+n)
		}
	case tok == "down":
		var ref *Refusal
		if errors.As(err, &ref) || err == nil || !strings.Contains(err.Error(), "db down") {
			t.Errorf("%s: got %v, want the service's failure with its cause", tok, err)
		}
	default:
		if err != ErrInvalidToken {
			t.Errorf("%s: got %v, want %v", tok, err, ErrInvalidToken)
		}
	}
}

// resolveAll resolves each token in its own goroutine and returns a function that waits
// for them all and checks each answer.
func resolveAll(t *testing.T, a *Authenticator, toks []string) (wait func()) {
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Go(func() {
			id, data, err := a.Resolve(context.Background(), tok)
			checkAnswer(t, tok, id, data, err)
		})
	}
	return wg.Wait
}

// TestLookupsShareBatches: the lookups of distinct tokens that arrive while a batch is in
// flight go out together in the next ResolveSessions call, and each handshake gets its
// own token's answer.
func TestLookupsShareBatches(t *testing.T) {
	f := &fakeResolver{hold: make(chan struct{})}
	a := New(f, Options{})
	first := resolveAll(t, a, []string{"slow"})
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	toks := []string{"good1", "good2", "nope", "good3", "expired", "good4", "down", "good5", "good6", "good7"}
	rest := resolveAll(t, a, toks)
	waitLookups(t, 1+len(toks)) // "slow" in flight, toks queued
	close(f.hold)
	first()
	rest()

	batches, singles := f.batchesAndSingles()
	if len(batches) != 2 || singles != 0 {
		t.Fatalf("got ResolveSessions calls %q and %d ResolveSession calls, want [[slow] %q] and none", batches, singles, toks)
	}
	got := slices.Sorted(slices.Values(batches[1]))
	if want := slices.Sorted(slices.Values(toks)); !slices.Equal(got, want) {
		t.Errorf("second batch: got %q, want %q", got, want)
	}
	if got := a.Lookups(); got != int64(len(toks)+1) {
		t.Errorf("lookups: got %d, want %d", got, len(toks)+1)
	}
}

// TestFallbackToResolveSession: when ResolveSessions answers unimplemented (an older
// profile service), the batch is resolved with one ResolveSession per token, later batches
// go straight to ResolveSession, and ResolveSessions is tried again after singleRetry.
func TestFallbackToResolveSession(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := &fakeResolver{hold: make(chan struct{})}
	a := New(f, Options{CacheTTL: -1, Now: clock})
	first := resolveAll(t, a, []string{"slow"})
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	toks := []string{"good1", "nope", "down", "good2", "expired"}
	rest := resolveAll(t, a, toks)
	waitLookups(t, 1+len(toks)) // "slow" in flight, toks queued
	// The next batch is answered by an older replica.
	f.old.Store(true)
	close(f.hold)
	first()
	rest()
	batches, singles := f.batchesAndSingles()
	if len(batches) != 2 || len(batches[1]) != len(toks) || singles != len(toks) {
		t.Fatalf("got ResolveSessions calls %q and %d ResolveSession calls, want 2 (the second of %d tokens) and %d", batches, singles, len(toks), len(toks))
	}

	// Remembered: the next lookups do not try ResolveSessions.
	for _, tok := range []string{"good3", "nope"} {
		id, data, err := a.Resolve(context.Background(), tok)
		checkAnswer(t, tok, id, data, err)
	}
	if batches, singles := f.batchesAndSingles(); len(batches) != 2 || singles != len(toks)+2 {
		t.Errorf("after the fallback: got %d ResolveSessions and %d ResolveSession calls, want 2 and %d", len(batches), singles, len(toks)+2)
	}

	// The profile service was upgraded meanwhile: after singleRetry, batches again.
	f.old.Store(false)
	advance(singleRetry - time.Millisecond)
	id, data, err := a.Resolve(context.Background(), "good4")
	checkAnswer(t, "good4", id, data, err)
	advance(time.Millisecond)
	id, data, err = a.Resolve(context.Background(), "good5")
	checkAnswer(t, "good5", id, data, err)
	batches, singles = f.batchesAndSingles()
	if len(batches) != 3 || !slices.Equal(batches[2], []string{"good5"}) || singles != len(toks)+3 {
		t.Errorf("after singleRetry: got ResolveSessions calls %q and %d ResolveSession calls, want a third [good5] and %d", batches, singles, len(toks)+3)
	}
}

// TestBatchFailure: a ResolveSessions call that fails as a whole fails every lookup of its
// batch as unavailable, even with a code that would refuse a single token (the tokens
// were not judged); a batch answered with the wrong number of results too.
func TestBatchFailure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		r    Resolver
	}{
		{"unauthenticated call", failingResolver{err: connect.NewError(connect.CodeUnauthenticated, errors.New("bad internal token"))}},
		{"unavailable call", failingResolver{err: connect.NewError(connect.CodeUnavailable, errors.New("db down"))}},
		{"short answer", failingResolver{}},
	} {
		a := New(tt.r, Options{})
		_, _, err := a.Authenticate(request("?token=good1", ""))
		var ref *Refusal
		if !errors.As(err, &ref) || ref != ErrUnavailable {
			t.Errorf("%s: got %v, want %v", tt.name, err, ErrUnavailable)
		}
	}
}

// failingResolver fails every ResolveSessions call with err, or answers it with no
// results when err is nil.
type failingResolver struct{ err error }

func (f failingResolver) ResolveSession(context.Context, *connect.Request[profilev1.ResolveSessionRequest]) (*connect.Response[profilev1.ResolveSessionResponse], error) {
	return nil, errors.New("ResolveSession called")
}

func (f failingResolver) ResolveSessions(context.Context, *connect.Request[profilev1.ResolveSessionsRequest]) (*connect.Response[profilev1.ResolveSessionsResponse], error) {
	if f.err != nil {
		return nil, f.err
	}
	return connect.NewResponse(&profilev1.ResolveSessionsResponse{}), nil
}
