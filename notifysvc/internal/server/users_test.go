package server

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	"github.com/charla/charla/notifysvc/internal/notify"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// fakeProfile answers GetUsers with the users in known, or with err.
type fakeProfile struct {
	known map[int64]bool
	err   error
	calls atomic.Int64
}

func (f *fakeProfile) GetUsers(_ context.Context, req *connect.Request[profilev1.GetUsersRequest]) (*connect.Response[profilev1.GetUsersResponse], error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	res := &profilev1.GetUsersResponse{}
	for _, id := range req.Msg.GetUserIds() {
		if f.known[id] {
			res.Users = append(res.Users, &profilev1.User{Id: id})
		}
	}
	return connect.NewResponse(res), nil
}

func TestProfileUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("known users are remembered", func(t *testing.T) {
		t.Parallel()
		p := &fakeProfile{known: map[int64]bool{1: true}}
		u := NewProfileUsers(p)
		for range 3 {
			if ok, err := u.Exists(ctx, 1); !ok || err != nil {
				t.Fatalf("Exists(1): got %v, %v; want true, nil", ok, err)
			}
		}
		if got := p.calls.Load(); got != 1 {
			t.Fatalf("GetUsers calls: got %d, want 1", got)
		}
		for range 2 {
			if ok, err := u.Exists(ctx, 2); ok || err != nil {
				t.Fatalf("Exists(2): got %v, %v; want false, nil", ok, err)
			}
		}
		if got := p.calls.Load(); got != 3 {
			t.Fatalf("GetUsers calls: got %d, want 3 (unknown users are asked again)", got)
		}
	})
	t.Run("not found is unknown", func(t *testing.T) {
		t.Parallel()
		u := NewProfileUsers(&fakeProfile{err: connect.NewError(connect.CodeNotFound, errors.New("no"))})
		if ok, err := u.Exists(ctx, 1); ok || err != nil {
			t.Fatalf("Exists: got %v, %v; want false, nil", ok, err)
		}
	})
	t.Run("other errors are unavailable", func(t *testing.T) {
		t.Parallel()
		u := NewProfileUsers(&fakeProfile{err: connect.NewError(connect.CodeUnavailable, errors.New("down"))})
		if _, err := u.Exists(ctx, 1); !errors.Is(err, notify.ErrUnavailable) {
			t.Fatalf("Exists: got %v, want ErrUnavailable", err)
		}
	})
}
