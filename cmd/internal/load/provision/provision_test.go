package provision

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
)

// fakeServices records what the provisioner asks of profile and chat.
type fakeServices struct {
	profilev1connect.UnimplementedProfileServiceHandler

	mu       sync.Mutex
	names    map[string]int64
	sessions map[int64]string
	contacts [][2]int64
	auth     []string
	failUser string
}

func (f *fakeServices) CreateUser(_ context.Context, req *connect.Request[profilev1.CreateUserRequest]) (*connect.Response[profilev1.CreateUserResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, req.Header().Get("Authorization"))
	name := req.Msg.GetUserName()
	if name == f.failUser {
		return nil, connect.NewError(connect.CodeAlreadyExists, errors.New("userName taken"))
	}
	if _, dup := f.names[name]; dup || !strings.Contains(req.Msg.GetEmail(), "@") {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("bad user"))
	}
	id := int64(len(f.names) + 100)
	f.names[name] = id
	return connect.NewResponse(&profilev1.CreateUserResponse{User: &profilev1.User{Id: id, UserName: name}}), nil
}

func (f *fakeServices) CreateSession(_ context.Context, req *connect.Request[profilev1.CreateSessionRequest]) (*connect.Response[profilev1.CreateSessionResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok := "tok-" + strings.Repeat("x", int(req.Msg.GetUserId()%7)) + "-" + string(rune('a'+req.Msg.GetUserId()%26))
	f.sessions[req.Msg.GetUserId()] = tok
	return connect.NewResponse(&profilev1.CreateSessionResponse{Token: tok}), nil
}

// fakeChat is chat's side of fakeServices.
type fakeChat struct {
	chatv1connect.UnimplementedChatServiceHandler
	*fakeServices
}

func (f fakeChat) CreateContact(_ context.Context, req *connect.Request[chatv1.CreateContactRequest]) (*connect.Response[chatv1.CreateContactResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contacts = append(f.contacts, [2]int64{req.Msg.GetUserId(), req.Msg.GetOtherUserId()})
	return connect.NewResponse(&chatv1.CreateContactResponse{ChatId: int64(len(f.contacts))}), nil
}

func serve(t *testing.T, f *fakeServices) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(profilev1connect.NewProfileServiceHandler(f))
	mux.Handle(chatv1connect.NewChatServiceHandler(fakeChat{fakeServices: f}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRPCProvisionsUsersSessionsAndContacts(t *testing.T) {
	t.Parallel()
	f := &fakeServices{names: map[string]int64{}, sessions: map[int64]string{}}
	url := serve(t, f)
	p := NewRPC(url, url, "ldtest", "secret", 8)
	users, err := p.Users(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 50 || len(f.names) != 50 {
		t.Fatalf("%d users returned, %d created; want 50 and 50", len(users), len(f.names))
	}
	seen := map[int64]bool{}
	for _, u := range users {
		if seen[u.ID] || f.sessions[u.ID] != u.Token || u.Token == "" {
			t.Errorf("user %+v: duplicate id or token not the session created for it (%q)", u, f.sessions[u.ID])
		}
		seen[u.ID] = true
	}
	for _, a := range f.auth {
		if a != "Bearer secret" {
			t.Errorf("Authorization = %q, want Bearer secret", a)
		}
	}
	pairs := [][2]User{{users[0], users[1]}, {users[2], users[3]}}
	if err := p.Contacts(context.Background(), pairs); err != nil {
		t.Fatal(err)
	}
	if len(f.contacts) != 2 {
		t.Errorf("%d contacts created, want 2", len(f.contacts))
	}
}

func TestRPCErrorNamesTheUser(t *testing.T) {
	t.Parallel()
	f := &fakeServices{names: map[string]int64{}, sessions: map[int64]string{}, failUser: "ldfail3"}
	url := serve(t, f)
	_, err := NewRPC(url, url, "ldfail", "", 2).Users(context.Background(), 5)
	if err == nil || !strings.Contains(err.Error(), "create user ldfail3") || connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Errorf("err = %v, want one naming user ldfail3 with code already_exists", err)
	}
}

func TestRelayUsers(t *testing.T) {
	t.Parallel()
	var r Relay
	a, _ := r.Users(context.Background(), 2)
	b, _ := r.Users(context.Background(), 1)
	if a[0].ID != 1 || a[1].ID != 2 || b[0].ID != 3 || b[0].Token != "r3" {
		t.Errorf("relay users %v then %v, want ids 1, 2, 3 with tokens r<id>", a, b)
	}
}
