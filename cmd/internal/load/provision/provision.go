// Package provision creates the load tool's users, their session tokens and their contacts:
// over Charla's internal Connect RPC (profile.v1 CreateUser and CreateSession, chat.v1
// CreateContact), many calls at once, or synthetically for the relay, which only parses
// its tokens.
package provision

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/errgroup"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
)

// User is a provisioned user and a session token of theirs.
type User struct {
	ID    int64
	Token string
}

// Provisioner creates users and makes pairs of them contacts.
type Provisioner interface {
	// Users creates n users with one session each.
	Users(ctx context.Context, n int) ([]User, error)
	// Contacts makes each pair accepted contacts.
	Contacts(ctx context.Context, pairs [][2]User) error
}

// Relay provisions for the relay: user ids counted from 1 and tokens "r<id>".
type Relay struct{ next atomic.Int64 }

// Users returns n fresh synthetic users.
func (r *Relay) Users(_ context.Context, n int) ([]User, error) {
	users := make([]User, n)
	for i := range users {
		id := r.next.Add(1)
		users[i] = User{ID: id, Token: "r" + strconv.FormatInt(id, 10)}
	}
	return users, nil
}

// Contacts does nothing: the relay lets anyone write to anyone.
func (r *Relay) Contacts(context.Context, [][2]User) error { return nil }

// RPC provisions over Charla's internal Connect RPC.
type RPC struct {
	profile     profilev1connect.ProfileServiceClient
	chat        chatv1connect.ChatServiceClient
	prefix      string
	next        atomic.Int64
	concurrency int
}

// NewRPC returns a provisioner calling profile at profileURL and chat at chatURL (the same
// URL in the one-process build). Users are named prefix + a counter, so prefix must be
// unique per run (3–20 characters of [a-z0-9]). token, when not empty, is sent as the
// internal API bearer token. concurrency is how many calls run at once.
func NewRPC(profileURL, chatURL, prefix, token string, concurrency int) *RPC {
	hc := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(bearer(token)))
	}
	return &RPC{
		profile:     profilev1connect.NewProfileServiceClient(hc, profileURL, opts...),
		chat:        chatv1connect.NewChatServiceClient(hc, chatURL, opts...),
		prefix:      prefix,
		concurrency: max(concurrency, 1),
	}
}

func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// Users creates n users and a session for each, concurrency calls at a time.
func (p *RPC) Users(ctx context.Context, n int) ([]User, error) {
	users := make([]User, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.concurrency)
	for i := range users {
		g.Go(func() error {
			name := p.prefix + strconv.FormatInt(p.next.Add(1), 10)
			u, err := p.profile.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{
				UserName: name, FirstName: "Load", LastName: name, Email: name + "@load.invalid",
			}))
			if err != nil {
				return fmt.Errorf("create user %s: %w", name, err)
			}
			id := u.Msg.GetUser().GetId()
			s, err := p.profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: id}))
			if err != nil {
				return fmt.Errorf("create session of user %d: %w", id, err)
			}
			users[i] = User{ID: id, Token: s.Msg.GetToken()}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return users, nil
}

// Contacts creates every contact, concurrency calls at a time.
func (p *RPC) Contacts(ctx context.Context, pairs [][2]User) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.concurrency)
	for _, pr := range pairs {
		g.Go(func() error {
			if _, err := p.chat.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: pr[0].ID, OtherUserId: pr[1].ID})); err != nil {
				return fmt.Errorf("create contact %d–%d: %w", pr[0].ID, pr[1].ID, err)
			}
			return nil
		})
	}
	return g.Wait()
}
