// Package systemtest starts a whole Charla system (package system) for one test, on loopback
// ports and a temporary database, and creates users and contacts in it. It is for tests
// only, kept apart from package system so that no production binary links "testing".
package systemtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"

	"github.com/charla/charla/cmd/internal/system"
	"github.com/charla/charla/edge"
)

// Options tune a test System.
type Options struct {
	// DatabaseURL defaults to a new SQLite file in t.TempDir(), or to a new MySQL database
	// on MYSQL_TEST_DSN's server when E2E_BACKEND=mysql.
	DatabaseURL string
	// EdgeConfig may change the edge's default configuration.
	EdgeConfig func(*edge.Config)
	// Options may change anything else before start.
	Options func(*system.Options)
}

// System is a running system with the helpers tests use.
type System struct {
	*system.System
}

// Start starts a whole System on loopback ports for one test and stops it at cleanup.
func Start(tb testing.TB, topts Options) *System {
	tb.Helper()
	l := config.New("test")
	edgeConfig := edge.DeclareConfig(l)
	if err := l.Parse(nil); err != nil {
		tb.Fatalf("system: default edge config: %v", err)
	}
	ec := edgeConfig()
	ec.Addr = "127.0.0.1:0"
	if topts.EdgeConfig != nil {
		topts.EdgeConfig(&ec)
	}
	url := topts.DatabaseURL
	switch {
	case url != "":
	case os.Getenv("E2E_BACKEND") == "mysql":
		url = dbtest.NewURL(tb, sqldb.MySQL)
	default:
		url = "sqlite://" + filepath.Join(tb.TempDir(), "charla.db")
	}
	opts := system.Options{Edge: ec, RPCAddr: "127.0.0.1:0", DatabaseURL: url, Log: logging.Discard()}
	if topts.Options != nil {
		topts.Options(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := system.Start(ctx, opts)
	if err != nil {
		tb.Fatalf("system: start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return &System{System: s}
}

// URL returns the WebSocket URL of the edge with token.
func (s *System) URL(token string) string {
	return "ws://" + s.EdgeAddr + "/ws?token=" + token
}

// HTTPURL returns the edge's HTTP URL for path.
func (s *System) HTTPURL(path string) string {
	return "http://" + s.EdgeAddr + path
}

var userSeq atomic.Int64

// User is a user created for a test, with a session token.
type User struct {
	ID       int64
	UserName string
	Token    string
}

// NewUser creates a user with a unique name (prefix plus a counter) and a session.
func (s *System) NewUser(tb testing.TB, prefix string) User {
	tb.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
	res, err := s.Clients.Profile.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{
		UserName: name, FirstName: "First" + name, LastName: "Last" + name, Email: name + "@example.com",
	}))
	if err != nil {
		tb.Fatalf("system: create user %s: %v", name, err)
	}
	id := res.Msg.GetUser().GetId()
	sess, err := s.Clients.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: id}))
	if err != nil {
		tb.Fatalf("system: create session for %s: %v", name, err)
	}
	return User{ID: id, UserName: name, Token: sess.Msg.GetToken()}
}

// Contact makes a and b accepted contacts and returns their chat id.
func (s *System) Contact(tb testing.TB, a, b User) int64 {
	tb.Helper()
	res, err := s.Clients.Chat.CreateContact(context.Background(), connect.NewRequest(&chatv1.CreateContactRequest{
		UserId: a.ID, OtherUserId: b.ID,
	}))
	if err != nil {
		tb.Fatalf("system: contact %s-%s: %v", a.UserName, b.UserName, err)
	}
	return res.Msg.GetChatId()
}
