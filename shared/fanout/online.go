package fanout

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/bus"
)

// PresenceChangedSubject is the bus subject on which the presence service announces, after
// each commit, the users whose online state changed (uvarint ids), so that OnlineCaches
// forget them.
const PresenceChangedSubject = "charla.presence.changed"

// EncodeUsers encodes user ids for PresenceChangedSubject.
func EncodeUsers(ids []int64) []byte {
	out := make([]byte, 0, len(ids)*4)
	for _, id := range ids {
		out = binary.AppendUvarint(out, uint64(id))
	}
	return out
}

func decodeUsers(data []byte) []int64 {
	var out []int64
	for len(data) > 0 {
		v, n := binary.Uvarint(data)
		if n <= 0 {
			return out
		}
		out = append(out, int64(v))
		data = data[n:]
	}
	return out
}

// PresenceClient is the part of the presence service an OnlineCache asks.
type PresenceClient interface {
	GetPresence(context.Context, *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error)
}

// OnlineCache answers OnlineLookup from the presence service, remembering answers until
// the presence service announces a change of that user on PresenceChangedSubject. A
// change announced while a lookup is in flight keeps that lookup's answers out of the
// cache, so a cached answer is never older than the last announced change.
type OnlineCache struct {
	client PresenceClient
	sub    bus.Subscription

	mu     sync.Mutex
	online map[int64]bool
	epoch  uint64 // counts announced changes
}

// maxCachedPresence bounds the cache; past it the cache starts over.
const maxCachedPresence = 500_000

// NewOnlineCache subscribes to presence changes on b. Close unsubscribes.
func NewOnlineCache(b bus.Bus, client PresenceClient) (*OnlineCache, error) {
	c := &OnlineCache{client: client, online: make(map[int64]bool)}
	sub, err := b.Subscribe(PresenceChangedSubject, func(data []byte) {
		users := decodeUsers(data)
		c.mu.Lock()
		c.epoch++
		for _, u := range users {
			delete(c.online, u)
		}
		c.mu.Unlock()
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to presence changes: %w", err)
	}
	c.sub = sub
	return c, nil
}

// Offline implements OnlineLookup.
func (c *OnlineCache) Offline(ctx context.Context, users []int64) ([]int64, error) {
	var offline, missing []int64
	c.mu.Lock()
	for _, u := range users {
		on, ok := c.online[u]
		switch {
		case !ok:
			missing = append(missing, u)
		case !on:
			offline = append(offline, u)
		}
	}
	epoch := c.epoch
	c.mu.Unlock()
	if len(missing) == 0 {
		return offline, nil
	}
	res, err := c.client.GetPresence(ctx, connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: missing}))
	if err != nil {
		return offline, fmt.Errorf("presence GetPresence: %w", err)
	}
	c.mu.Lock()
	keep := c.epoch == epoch
	if keep && len(c.online) >= maxCachedPresence {
		c.online = make(map[int64]bool)
	}
	for _, p := range res.Msg.GetPresences() {
		if !p.GetIsOnline() {
			offline = append(offline, p.GetUserId())
		}
		if keep {
			c.online[p.GetUserId()] = p.GetIsOnline()
		}
	}
	c.mu.Unlock()
	return offline, nil
}

// Close stops following presence changes.
func (c *OnlineCache) Close() error { return c.sub.Unsubscribe() }
