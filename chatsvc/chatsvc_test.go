package chatsvc_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

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

type presence struct {
	presencev1connect.PresenceServiceClient
}

// GetRoutes puts everyone on edge "e1".
func (presence) GetRoutes(_ context.Context, req *connect.Request[presencev1.GetRoutesRequest]) (*connect.Response[presencev1.GetRoutesResponse], error) {
	res := &presencev1.GetRoutesResponse{}
	for _, id := range req.Msg.GetUserIds() {
		res.Routes = append(res.Routes, &presencev1.Route{UserId: id, EdgeIds: []string{"e1"}})
	}
	return connect.NewResponse(res), nil
}

type notifier struct {
	notifyv1connect.NotificationServiceClient
}

func (notifier) CreateNotification(context.Context, *connect.Request[notifyv1.CreateNotificationRequest]) (*connect.Response[notifyv1.CreateNotificationResponse], error) {
	return connect.NewResponse(&notifyv1.CreateNotificationResponse{}), nil
}

// TestService wires the service as cmd/charla does and checks that a message sent through
// its RPC reaches an edge's StreamEvents stream.
func TestService(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		db := dbtest.OpenURL(t, url)
		b := bus.NewInProcess()
		s, err := chatsvc.New(ctx, svc.Deps{
			DB:    db,
			Bus:   b,
			Peers: &peers.Clients{Profile: profiles{}, Presence: presence{}, Notify: notifier{}},
			Log:   slog.New(slog.DiscardHandler),
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
		// The call returns once the first event arrives (a server stream sends its headers
		// with it), so it runs aside. The stream is subscribed once its handler runs; a send
		// before that is not seen (the bus is at most once by design), so send until one is.
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
					// fanout's marker: the stream is subscribed to this edge's events.
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
		if _, err := client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: 1, ChatId: cc.Msg.GetChatId(), Text: "hola"})); err != nil {
			t.Fatal(err)
		}
		select {
		case ev, ok := <-received:
			if !ok {
				t.Fatalf("stream ended without an event")
			}
			if got := ev.GetNewChatMessage().GetFromUsername(); got != "u1" {
				t.Fatalf("event: got %v, want NEW_CHAT_MESSAGE from u1", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no NEW_CHAT_MESSAGE after the send")
		}
	})
}
