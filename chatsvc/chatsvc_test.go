package chatsvc_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/chatsvc"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
)

// The fakes embed the generated client interfaces and override what chatsvc calls.
type profiles struct {
	profilev1connect.ProfileServiceClient
}

func (profiles) GetUsers(_ context.Context, req *connect.Request[profilev1.GetUsersRequest]) (*connect.Response[profilev1.GetUsersResponse], error) {
	res := &profilev1.GetUsersResponse{}
	for _, id := range req.Msg.GetUserIds() {
		res.Users = append(res.Users, &profilev1.User{Id: id, UserName: fmt.Sprintf("u%d", id)})
	}
	return connect.NewResponse(res), nil
}

// presence says user 1 is online and everyone else offline.
type presence struct {
	presencev1connect.PresenceServiceClient
}

func (presence) GetPresence(_ context.Context, req *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	res := &presencev1.GetPresenceResponse{}
	for _, id := range req.Msg.GetUserIds() {
		res.Presences = append(res.Presences, &presencev1.Presence{UserId: id, IsOnline: id == 1})
	}
	return connect.NewResponse(res), nil
}

// notifier records the notifications asked for.
type notifier struct {
	notifyv1connect.NotificationServiceClient
	mu   sync.Mutex
	sent []*notifyv1.CreateNotificationRequest
}

func (n *notifier) CreateNotification(_ context.Context, req *connect.Request[notifyv1.CreateNotificationRequest]) (*connect.Response[notifyv1.CreateNotificationResponse], error) {
	n.mu.Lock()
	n.sent = append(n.sent, req.Msg)
	n.mu.Unlock()
	return connect.NewResponse(&notifyv1.CreateNotificationResponse{}), nil
}

// TestService wires the service as cmd/charla does and checks the two ways out of its
// events: a message sent through its RPC lands in both users' histories in the user event
// log (and the offline recipient gets a notification), and a typing indicator reaches an
// edge's StreamEvents stream.
func TestService(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		db := dbtest.OpenURL(t, url)
		b := bus.NewInProcess()
		events := eventlog.NewMemory(eventlog.Options{})
		notes := &notifier{}
		s, err := chatsvc.New(ctx, svc.Deps{
			DB:     db,
			Bus:    b,
			Events: events,
			Peers:  &peers.Clients{Profile: profiles{}, Presence: presence{}, Notify: notes},
			Log:    slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer s.Close()
		hs := httptest.NewUnstartedServer(rpc.NewMux(s.RPC()))
		hs.Config.Protocols = rpc.Protocols()
		hs.Start()
		defer hs.Close()
		client := chatv1connect.NewChatServiceClient(rpc.NewHTTPClient(), hs.URL)

		cc, err := client.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: 1, OtherUserId: 2}))
		if err != nil {
			t.Fatal(err)
		}
		chatID := cc.Msg.GetChatId()
		if _, err := client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: 1, ChatId: chatID, Text: "hola", OriginConnectionId: "c1"})); err != nil {
			t.Fatal(err)
		}
		for _, user := range []int64{1, 2} {
			h, err := events.Read(ctx, user, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Records) != 1 || h.LastSeq != 1 || !h.Complete {
				t.Fatalf("history of user %d: got %+v, want one record with seq 1", user, h)
			}
			r := h.Records[0]
			ev := new(chatv1.StreamEventsResponse)
			if err := proto.Unmarshal(r.Data, ev); err != nil {
				t.Fatal(err)
			}
			if r.Seq != 1 || r.Service != chatsvc.EventService || r.Exclude != "c1" || ev.GetNewChatMessage().GetFromUsername() != "u1" {
				t.Fatalf("record of user %d: got %+v (%v), want NEW_CHAT_MESSAGE from u1 with seq 1 excluding c1", user, r, ev)
			}
		}
		var newMessage []int64
		notes.mu.Lock()
		for _, n := range notes.sent {
			if n.GetType() == "new_message" {
				newMessage = append(newMessage, n.GetUserId())
			}
		}
		notes.mu.Unlock()
		if !slices.Equal(newMessage, []int64{2}) {
			t.Fatalf("new_message notifications: got them for users %v, want for the offline user 2 only", newMessage)
		}

		// The call returns once the first message arrives (a server stream sends its headers
		// with it), so it runs aside. The first message is fanout's marker: from then on the
		// stream is subscribed.
		received := make(chan *chatv1.StreamEventsResponse, 1)
		subscribed := make(chan struct{})
		go func() {
			defer close(received)
			stream, err := client.StreamEvents(ctx, connect.NewRequest(&chatv1.StreamEventsRequest{EdgeId: "e1"}))
			if err != nil {
				return
			}
			defer stream.Close()
			for stream.Receive() {
				if stream.Msg().GetEvent() == nil {
					close(subscribed)
					continue
				}
				received <- stream.Msg()
				return
			}
		}()
		select {
		case <-subscribed:
		case <-time.After(10 * time.Second):
			t.Fatal("the event stream never reported its subscription")
		}
		if _, err := client.SetTyping(ctx, connect.NewRequest(&chatv1.SetTypingRequest{UserId: 1, ChatId: chatID, IsTyping: true})); err != nil {
			t.Fatal(err)
		}
		select {
		case ev, ok := <-received:
			if !ok {
				t.Fatalf("stream ended without an event")
			}
			if ti := ev.GetTypingIndicator(); ti.GetUserId() != 1 || ti.GetChatId() != chatID || !slices.Equal(ev.GetUserIds(), []int64{2}) {
				t.Fatalf("event: got %v, want TYPING_INDICATOR of user 1 for user 2", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no TYPING_INDICATOR after SetTyping")
		}
		if h, _ := events.Read(ctx, 2, 0); h.LastSeq != 1 {
			t.Fatalf("user 2's last seq after a typing indicator: got %d, want 1 (typing is not sequenced)", h.LastSeq)
		}
	})
}
