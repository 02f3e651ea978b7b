package server

import (
	"context"
	"slices"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func TestContacts(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 4)
		ctx := context.Background()
		chatID := e.contact(t, 2, 1)
		if again := e.contact(t, 1, 2); again != chatID {
			t.Fatalf("CreateContact reversed: got chat %d, want %d", again, chatID)
		}
		notes := e.notifier.take()
		if len(notes) != 2 {
			t.Fatalf("contact_added notifications: got %d, want 2", len(notes))
		}
		for _, n := range notes {
			other := int64(3) - n.GetUserId()
			p := n.GetPayload().AsMap()
			if n.GetType() != "contact_added" || p["userId"] != float64(other) || p["userName"] != "user"+string(rune('0'+other)) {
				t.Fatalf("notification: got %v, want contact_added about user %d", n, other)
			}
		}

		for _, tc := range []struct {
			name string
			a, b int64
			want connect.Code
		}{
			{"oneself", 1, 1, connect.CodeInvalidArgument},
			{"zero", 0, 1, connect.CodeInvalidArgument},
			{"unknown other", 1, 99, connect.CodeNotFound},
			{"unknown first", 99, 1, connect.CodeNotFound},
		} {
			_, err := e.client.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: tc.a, OtherUserId: tc.b}))
			wantCode(t, "CreateContact "+tc.name, err, tc.want)
		}

		e.contact(t, 1, 3)
		e.notifier.take()
		ids, err := e.client.ListContactIds(ctx, connect.NewRequest(&chatv1.ListContactIdsRequest{UserIds: []int64{1, 4, 2}}))
		if err != nil {
			t.Fatalf("ListContactIds: %v", err)
		}
		got := ids.Msg.GetContacts()
		if len(got) != 3 || !slices.Equal(got[0].GetContactIds(), []int64{2, 3}) || len(got[1].GetContactIds()) != 0 || !slices.Equal(got[2].GetContactIds(), []int64{1}) {
			t.Fatalf("ListContactIds: got %v, want 1:[2 3] 4:[] 2:[1]", got)
		}

		// Remove, twice; unknown user; never-contacts.
		for i := 0; i < 2; i++ {
			if _, err := e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 1, OtherUserId: 2})); err != nil {
				t.Fatalf("RemoveContact #%d: %v", i, err)
			}
		}
		if _, err := e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 2, OtherUserId: 4})); err != nil {
			t.Fatalf("RemoveContact of non-contacts: %v", err)
		}
		_, err = e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 2, OtherUserId: 77}))
		wantCode(t, "RemoveContact unknown", err, connect.CodeNotFound)

		ids, err = e.client.ListContactIds(ctx, connect.NewRequest(&chatv1.ListContactIdsRequest{UserIds: []int64{1}}))
		if err != nil || !slices.Equal(ids.Msg.GetContacts()[0].GetContactIds(), []int64{3}) {
			t.Fatalf("ListContactIds after remove: got %v, %v; want [3]", ids, err)
		}
		list, err := e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: 2}))
		if err != nil || len(list.Msg.GetChats()) != 0 {
			t.Fatalf("chat list after remove: got %v, %v; want empty", list, err)
		}
		if n := len(e.notifier.take()); n != 0 {
			t.Fatalf("notifications from removals: got %d, want 0", n)
		}

		// Re-adding restores the same chat and notifies again.
		if again := e.contact(t, 1, 2); again != chatID {
			t.Fatalf("re-added chat: got %d, want %d", again, chatID)
		}
		if n := len(e.notifier.take()); n != 2 {
			t.Fatalf("notifications on restore: got %d, want 2", n)
		}
	})
}

// TestCreateContactConcurrent: concurrent creations of one pair give one chat and one
// pair of notifications.
func TestCreateContactConcurrent(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 2)
		ids := make(chan int64, 10)
		errs := make(chan error, 10)
		for i := 0; i < 10; i++ {
			go func() {
				a, b := int64(1), int64(2)
				if i%2 == 1 {
					a, b = b, a
				}
				res, err := e.client.CreateContact(context.Background(), connect.NewRequest(&chatv1.CreateContactRequest{UserId: a, OtherUserId: b}))
				if err != nil {
					errs <- err
					return
				}
				ids <- res.Msg.GetChatId()
			}()
		}
		var first int64
		for i := 0; i < 10; i++ {
			select {
			case err := <-errs:
				t.Fatalf("CreateContact: %v", err)
			case id := <-ids:
				if first == 0 {
					first = id
				}
				if id != first {
					t.Fatalf("chat ids: got %d and %d, want one", first, id)
				}
			}
		}
		if n := len(e.notifier.take()); n != 2 {
			t.Fatalf("notifications: got %d, want 2", n)
		}
	})
}
