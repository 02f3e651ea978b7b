package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"connectrpc.com/connect"

	"github.com/charla/charla/notifysvc/internal/notify"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// ProfileClient is the part of the profile service's client this service uses.
type ProfileClient interface {
	GetUsers(ctx context.Context, req *connect.Request[profilev1.GetUsersRequest]) (*connect.Response[profilev1.GetUsersResponse], error)
}

// knownCap bounds the cache of users known to exist; past it the cache starts over.
const knownCap = 100_000

// ProfileUsers answers Users through the profile service's GetUsers. Users are never
// deleted, so a user once found is remembered and later calls for them cost no round trip:
// listing and marking read, the frequent calls, usually do not touch the profile service.
type ProfileUsers struct {
	client ProfileClient

	mu    sync.RWMutex
	known map[int64]struct{}
}

// NewProfileUsers returns a Users over client.
func NewProfileUsers(client ProfileClient) *ProfileUsers {
	return &ProfileUsers{client: client, known: make(map[int64]struct{})}
}

// Exists reports whether userID is a user.
func (u *ProfileUsers) Exists(ctx context.Context, userID int64) (bool, error) {
	u.mu.RLock()
	_, ok := u.known[userID]
	u.mu.RUnlock()
	if ok {
		return true, nil
	}
	res, err := u.client.GetUsers(ctx, connect.NewRequest(&profilev1.GetUsersRequest{UserIds: []int64{userID}}))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return false, fmt.Errorf("profile GetUsers: %w", ctxErr)
		}
		var ce *connect.Error
		if errors.As(err, &ce) && ce.Code() == connect.CodeNotFound {
			return false, nil
		}
		return false, fmt.Errorf("profile GetUsers: %w (%w)", notify.ErrUnavailable, err)
	}
	for _, user := range res.Msg.GetUsers() {
		if user.GetId() == userID {
			u.mu.Lock()
			if len(u.known) >= knownCap {
				u.known = make(map[int64]struct{})
			}
			u.known[userID] = struct{}{}
			u.mu.Unlock()
			return true, nil
		}
	}
	return false, nil
}
