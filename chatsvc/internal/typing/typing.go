// Package typing keeps the state behind TYPING_INDICATOR relays (docs/protocol.md §5.4): which
// ONs were relayed recently and are still in force. It stores nothing durable.
//
// The state lives in the memory of one chatsvc process. With several chatsvc processes
// behind a balancer, each keeps its own: the 3 s relay window is then enforced per process
// and an OFF handled by another process than its ON is relayed even if no ON is in force
// there (clients treat an OFF for a stale indicator as a no-op). Sharing it would need a
// store with expiry (Redis or the bus); one process per deployment does not.
//
// A Tracker is safe for concurrent use.
package typing

import (
	"sync"
	"time"
)

// Defaults of docs/protocol.md §5.4.
const (
	// RelayInterval is the least time between two relayed ONs of one sender in one chat.
	RelayInterval = 3 * time.Second
	// Expiry is how long a relayed ON lasts unless renewed (expiresInMs).
	Expiry = 6 * time.Second
)

type state struct {
	other     int64     // the participant the ON was relayed to
	relayedAt time.Time // when the last ON was relayed
	expiresAt time.Time // when it stops being in force
}

// Tracker remembers the relayed ONs per user and chat.
type Tracker struct {
	now func() time.Time

	mu    sync.Mutex
	users map[int64]map[int64]state // typer → chat → state
}

// New returns an empty tracker; now may be nil (time.Now).
func New(now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, users: make(map[int64]map[int64]state)}
}

// On records an ON of user in chat (whose other participant is other) and reports whether
// it is to be relayed: not when an ON of the same user and chat was relayed less than
// RelayInterval ago.
func (t *Tracker) On(chatID, user, other int64) bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	chats := t.users[user]
	if st, ok := chats[chatID]; ok && now.Before(st.relayedAt.Add(RelayInterval)) {
		return false
	}
	if chats == nil {
		chats = make(map[int64]state)
		t.users[user] = chats
	}
	chats[chatID] = state{other: other, relayedAt: now, expiresAt: now.Add(Expiry)}
	return true
}

// Off ends user's typing in chat. It reports whether an OFF is to be relayed (a relayed
// ON is still in force) and to whom. Either way the relay window restarts.
func (t *Tracker) Off(chatID, user int64) (relay bool, other int64) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	chats := t.users[user]
	st, ok := chats[chatID]
	if !ok {
		return false, 0
	}
	delete(chats, chatID)
	if len(chats) == 0 {
		delete(t.users, user)
	}
	return now.Before(st.expiresAt), st.other
}

// Ended is a relayed ON that was still in force when its typer stopped.
type Ended struct {
	ChatID, Other int64
}

// StopUser ends every typing state of user and returns those to relay an OFF for.
func (t *Tracker) StopUser(user int64) []Ended {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Ended
	for chatID, st := range t.users[user] {
		if now.Before(st.expiresAt) {
			out = append(out, Ended{ChatID: chatID, Other: st.other})
		}
	}
	delete(t.users, user)
	return out
}

// Sweep forgets states that can no longer affect a relay: expired and out of their window.
func (t *Tracker) Sweep() {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for user, chats := range t.users {
		for chatID, st := range chats {
			if !now.Before(st.expiresAt) && !now.Before(st.relayedAt.Add(RelayInterval)) {
				delete(chats, chatID)
			}
		}
		if len(chats) == 0 {
			delete(t.users, user)
		}
	}
}

// Len returns how many states are held (for tests and metrics).
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, chats := range t.users {
		n += len(chats)
	}
	return n
}
