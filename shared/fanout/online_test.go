package fanout_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/fanout"
)

// fakePresence answers GetPresence from a set of online users and records what it is asked.
type fakePresence struct {
	mu     sync.Mutex
	online map[int64]bool
	asked  [][]int64
	err    error
	// held, when set, is where GetPresence announces itself before waiting for release.
	held    chan struct{}
	release chan struct{}
}

func (f *fakePresence) GetPresence(_ context.Context, req *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	f.mu.Lock()
	f.asked = append(f.asked, slices.Clone(req.Msg.GetUserIds()))
	held, release := f.held, f.release
	f.mu.Unlock()
	if held != nil {
		held <- struct{}{}
		<-release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	res := &presencev1.GetPresenceResponse{}
	for _, u := range req.Msg.GetUserIds() {
		res.Presences = append(res.Presences, &presencev1.Presence{UserId: u, IsOnline: f.online[u]})
	}
	return connect.NewResponse(res), nil
}

func (f *fakePresence) set(user int64, on bool) {
	f.mu.Lock()
	f.online[user] = on
	f.mu.Unlock()
}

// takeAsked returns and forgets the GetPresence requests so far.
func (f *fakePresence) takeAsked() [][]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.asked
	f.asked = nil
	return out
}

func newCache(t *testing.T, online ...int64) (*fanout.OnlineCache, *fakePresence, *bus.InProcess) {
	t.Helper()
	p := &fakePresence{online: map[int64]bool{}}
	for _, u := range online {
		p.online[u] = true
	}
	b := bus.NewInProcess()
	c, err := fanout.NewOnlineCache(b, p)
	if err != nil {
		t.Fatalf("NewOnlineCache: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, p, b
}

// offline calls c.Offline and returns its answer sorted.
func offline(t *testing.T, c *fanout.OnlineCache, users ...int64) []int64 {
	t.Helper()
	got, err := c.Offline(context.Background(), users)
	if err != nil {
		t.Fatalf("Offline(%v): %v", users, err)
	}
	slices.Sort(got)
	return got
}

func changed(t *testing.T, b bus.Bus, users ...int64) {
	t.Helper()
	if err := b.Publish(context.Background(), fanout.PresenceChangedSubject, fanout.EncodeUsers(users)); err != nil {
		t.Fatal(err)
	}
}

func wantAsked(t *testing.T, p *fakePresence, want ...[]int64) {
	t.Helper()
	if got := p.takeAsked(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("GetPresence asked %v, want %v", got, want)
	}
}

func TestOnlineCacheRemembersAnswers(t *testing.T) {
	t.Parallel()
	c, p, _ := newCache(t, 1)
	if got, want := offline(t, c, 1, 2, 3), []int64{2, 3}; !slices.Equal(got, want) {
		t.Fatalf("Offline: got %v, want %v", got, want)
	}
	wantAsked(t, p, []int64{1, 2, 3})
	// Presence changes that are not announced are not seen: the answers are cached.
	p.set(2, true)
	p.set(1, false)
	if got, want := offline(t, c, 3, 1, 2), []int64{2, 3}; !slices.Equal(got, want) {
		t.Fatalf("Offline again: got %v, want the cached %v", got, want)
	}
	wantAsked(t, p)
	// Only the users never asked about are looked up.
	if got, want := offline(t, c, 1, 4), []int64{4}; !slices.Equal(got, want) {
		t.Fatalf("Offline with a new user: got %v, want %v", got, want)
	}
	wantAsked(t, p, []int64{4})
}

func TestOnlineCacheForgetsAnnouncedChanges(t *testing.T) {
	t.Parallel()
	c, p, b := newCache(t, 1)
	offline(t, c, 1, 2, 3, 1<<40)
	p.takeAsked()
	p.set(1, false)
	p.set(2, true)
	p.set(1<<40, true)
	changed(t, b, 2, 1, 1<<40)
	if got, want := offline(t, c, 1, 2, 3, 1<<40), []int64{1, 3}; !slices.Equal(got, want) {
		t.Fatalf("Offline after the change: got %v, want %v", got, want)
	}
	wantAsked(t, p, []int64{1, 2, 1 << 40})
	// The new answers are cached in turn.
	offline(t, c, 1, 2, 3, 1<<40)
	wantAsked(t, p)
}

// TestOnlineCacheSkipsAnswersRacingAChange: a change announced while a lookup is in flight
// may postdate the lookup's answer, so that answer is used once and not cached.
func TestOnlineCacheSkipsAnswersRacingAChange(t *testing.T) {
	t.Parallel()
	c, p, b := newCache(t)
	p.mu.Lock()
	p.held, p.release = make(chan struct{}), make(chan struct{})
	p.mu.Unlock()
	type answer struct {
		offline []int64
		err     error
	}
	done := make(chan answer, 1)
	go func() {
		got, err := c.Offline(context.Background(), []int64{5})
		done <- answer{got, err}
	}()
	<-p.held
	changed(t, b, 99) // any change, even of another user
	p.mu.Lock()
	p.held = nil
	p.mu.Unlock()
	close(p.release)
	if a := <-done; a.err != nil || !slices.Equal(a.offline, []int64{5}) {
		t.Fatalf("Offline racing a change: got %v, %v; want [5], nil", a.offline, a.err)
	}
	wantAsked(t, p, []int64{5})
	offline(t, c, 5)
	wantAsked(t, p, []int64{5}) // asked again: the racing answer was not kept
	offline(t, c, 5)
	wantAsked(t, p) // this one was
}

func TestOnlineCachePresenceDown(t *testing.T) {
	t.Parallel()
	c, p, _ := newCache(t, 1)
	offline(t, c, 1, 3)
	p.takeAsked()
	down := connect.NewError(connect.CodeUnavailable, errors.New("presence down"))
	p.mu.Lock()
	p.err = down
	p.mu.Unlock()
	got, err := c.Offline(context.Background(), []int64{1, 3, 6})
	if !errors.Is(err, down) || !slices.Equal(got, []int64{3}) {
		t.Fatalf("Offline with presence down: got %v, %v; want the cached [3] and an error wrapping %v", got, err, down)
	}
	p.mu.Lock()
	p.err = nil
	p.mu.Unlock()
	offline(t, c, 6)
	wantAsked(t, p, []int64{6}, []int64{6}) // the failed lookup cached nothing
}

func TestOnlineCacheCloseStopsFollowing(t *testing.T) {
	t.Parallel()
	c, p, b := newCache(t, 1)
	offline(t, c, 1)
	p.takeAsked()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	changed(t, b, 1)
	offline(t, c, 1)
	wantAsked(t, p) // the announcement after Close was not followed
}
