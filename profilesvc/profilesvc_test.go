package profilesvc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/profilesvc"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
)

// fakePresence says every user is online, last seen at 42.
type fakePresence struct {
	presencev1connect.UnimplementedPresenceServiceHandler
}

func (fakePresence) GetPresence(_ context.Context, req *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	res := &presencev1.GetPresenceResponse{}
	for _, u := range req.Msg.GetUserIds() {
		res.Presences = append(res.Presences, &presencev1.Presence{UserId: u, IsOnline: true, LastSeen: 42})
	}
	return connect.NewResponse(res), nil
}

// fakeChat has no contacts for anyone; with implemented false it answers like the stub.
type fakeChat struct {
	chatv1connect.UnimplementedChatServiceHandler
	mu          sync.Mutex
	implemented bool
}

func (f *fakeChat) ListContactIds(ctx context.Context, req *connect.Request[chatv1.ListContactIdsRequest]) (*connect.Response[chatv1.ListContactIdsResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.implemented {
		return f.UnimplementedChatServiceHandler.ListContactIds(ctx, req)
	}
	res := &chatv1.ListContactIdsResponse{}
	for _, u := range req.Msg.GetUserIds() {
		res.Contacts = append(res.Contacts, &chatv1.UserContacts{UserId: u})
	}
	return connect.NewResponse(res), nil
}

// TestService wires the real service the way cmd/charla does (svc.Deps with peer clients
// and a bus) beside fake chat and presence services, and checks the wiring: migrations
// applied (and idempotent), the session-ended event broadcast to every edge on the bus (and
// kept out of the user event log: it is for edges, not clients), and the peers consulted by
// GetProfile.
func TestService(t *testing.T) {
	t.Parallel()
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.Open(t, backend)
			b := bus.NewInProcess()
			t.Cleanup(func() { b.Close() })
			mux := http.NewServeMux()
			hs := httptest.NewServer(mux)
			t.Cleanup(hs.Close)
			clients := peers.New(peers.Same(hs.URL), "", hs.Client())
			chat := &fakeChat{}
			mux.Handle(chatv1connect.NewChatServiceHandler(chat))
			mux.Handle(presencev1connect.NewPresenceServiceHandler(fakePresence{}))

			userEvents := eventlog.NewMemory(eventlog.Options{})
			deps := svc.Deps{DB: db, Bus: b, Events: userEvents, Peers: clients, Log: logging.Discard()}
			if _, err := profilesvc.New(ctx, deps); err != nil {
				t.Fatalf("New: %v", err)
			}
			s, err := profilesvc.New(ctx, deps) // a restart: migrations already applied
			if err != nil {
				t.Fatalf("New again: %v", err)
			}
			defer s.Close()
			rpcSvc := s.RPC()
			mux.Handle(rpcSvc.Path, rpcSvc.Handler)
			pc := clients.Profile

			events := make(chan *profilev1.StreamEventsResponse, 4)
			sub, err := b.Subscribe(fanout.BroadcastSubject(profilesvc.EventService), func(data []byte) {
				ev := new(profilev1.StreamEventsResponse)
				if err := proto.Unmarshal(data, ev); err == nil {
					events <- ev
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()

			var ids []int64
			for _, name := range []string{"ana", "ben"} {
				res, err := pc.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{UserName: name, FirstName: "F", LastName: "L", Email: name + "@example.com", Phone: "123"}))
				if err != nil {
					t.Fatalf("CreateUser: %v", err)
				}
				ids = append(ids, res.Msg.GetUser().GetId())
			}
			ses, err := pc.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: ids[0]}))
			if err != nil {
				t.Fatal(err)
			}
			resolved, err := pc.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: ses.Msg.GetToken()}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.RevokeSession(ctx, connect.NewRequest(&profilev1.RevokeSessionRequest{Token: ses.Msg.GetToken()})); err != nil {
				t.Fatal(err)
			}
			var ev *profilev1.StreamEventsResponse
			select {
			case ev = <-events: // the in-process bus delivers during Publish, before RevokeSession returns
			default:
				t.Fatal("no SessionEnded broadcast after RevokeSession")
			}
			if h, err := userEvents.Read(ctx, ids[0], 0); err != nil || h.LastSeq != 0 {
				t.Fatalf("user %d's history after RevokeSession: last seq %d (%v), want 0: SessionEnded is not sequenced", ids[0], h.LastSeq, err)
			}
			if got := ev.GetSessionEnded(); got.GetSessionId() != resolved.Msg.GetSessionId() || got.GetState() != profilev1.SessionState_SESSION_STATE_REVOKED || len(ev.GetUserIds()) != 1 || ev.GetUserIds()[0] != ids[0] {
				t.Fatalf("got event %v, want session %d REVOKED for user %d", ev, resolved.Msg.GetSessionId(), ids[0])
			}

			// Own profile: presence from the presence service, whatever the chat service says.
			own, err := pc.GetProfile(ctx, connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: ids[0], UserId: ids[0]}))
			if err != nil {
				t.Fatalf("own profile: %v", err)
			}
			if p := own.Msg.GetProfile(); !p.GetIsOnline() || p.GetLastSeen() != 42 || p.GetEmail() != "ana@example.com" {
				t.Fatalf("own profile: got %v, want online, lastSeen 42 and the email", p)
			}
			// Another user's profile while the chat service is a stub: unavailable.
			_, err = pc.GetProfile(ctx, connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: ids[1], UserId: ids[0]}))
			if connect.CodeOf(err) != connect.CodeUnavailable {
				t.Fatalf("chat stub: got %v, want unavailable", err)
			}
			chat.mu.Lock()
			chat.implemented = true
			chat.mu.Unlock()
			other, err := pc.GetProfile(ctx, connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: ids[1], UserId: ids[0]}))
			if err != nil {
				t.Fatalf("stranger's view: %v", err)
			}
			if p := other.Msg.GetProfile(); p.GetIsOnline() || p.GetEmail() != "" || p.GetPhone() != "" || p.GetUserName() != "ana" {
				t.Fatalf("stranger's view: got %v, want public fields only", p)
			}
		})
	}
}
