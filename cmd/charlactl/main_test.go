package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/charla/charla/cmd/internal/system"
	"github.com/charla/charla/cmd/internal/system/systemtest"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

const testToken = "charlactl-test-token"

// ctl runs charlactl against the system at rpc with env, and returns its exit code and
// outputs.
type ctl struct {
	t   *testing.T
	env map[string]string
}

func (c ctl) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return c.env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and returns its stdout.
func (c ctl) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != exitOK {
		c.t.Fatalf("charlactl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must fail with code and a message containing want.
func (c ctl) fails(code int, want string, args ...string) {
	c.t.Helper()
	got, out, errOut := c.run(args...)
	if got != code || !strings.Contains(errOut, want) {
		c.t.Errorf("charlactl %s: exit %d, stderr %q (stdout %q); want exit %d and a message containing %q",
			strings.Join(args, " "), got, errOut, out, code, want)
	}
}

func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return v
}

// TestAgainstRunningSystem drives every command against a whole system (services and
// edge, on SQLite) that wants an internal token, and checks the effects through the
// services themselves.
func TestAgainstRunningSystem(t *testing.T) {
	t.Parallel()
	s := systemtest.Start(t, systemtest.Options{Options: func(o *system.Options) { o.Token = testToken }})
	c := ctl{t: t, env: map[string]string{"INTERNAL_API_TOKEN": testToken, "CHARLA_RPC_URL": "http://" + s.RPCAddr}}
	ctx := context.Background()

	type user struct {
		ID       string `json:"id"` // int64 is a string in protojson
		UserName string `json:"userName"`
	}
	created := decode[struct{ User user }](t, c.ok("users", "create", "Alice", "--first-name", "Alice", "--last-name", "García", "--email", "alice@example.com", "--json"))
	if created.User.UserName != "alice" || created.User.ID == "" {
		t.Fatalf("created %+v, want alice with an id", created.User)
	}
	if out := c.ok("users", "create", "bob", "--first-name", "Bob", "--last-name", "H", "--email", "bob@example.com", "--phone", "+52 55 0000 0002"); !strings.HasPrefix(out, "created user ") || !strings.Contains(out, " bob") {
		t.Errorf("text create: %q", out)
	}
	c.ok("users", "create", "carol", "--first-name", "Carol", "--last-name", "S", "--email", "carol@example.com")
	c.fails(exitError, "userName", "users", "create", "alice", "--first-name", "A", "--last-name", "B", "--email", "other@example.com")
	c.fails(exitError, "email", "users", "create", "zed", "--first-name", "Z", "--last-name", "B", "--email", "not-an-email")

	// Listing: pages of one, then every page at once.
	page := decode[struct {
		Users       []user
		NextAfterID string `json:"nextAfterId"`
	}](t, c.ok("users", "list", "--limit", "1", "--json"))
	if len(page.Users) != 1 || page.Users[0].UserName != "alice" || page.NextAfterID != page.Users[0].ID {
		t.Errorf("first page %+v, want alice and a next page after her", page)
	}
	all := decode[struct{ Users []user }](t, c.ok("users", "list", "--limit", "1", "--all", "--json"))
	var names []string
	for _, u := range all.Users {
		names = append(names, u.UserName)
	}
	if strings.Join(names, ",") != "alice,bob,carol" {
		t.Errorf("--all listed %v, want alice,bob,carol", names)
	}
	if _, _, errOut := c.run("users", "list", "--limit", "2"); !strings.Contains(errOut, "--after") {
		t.Errorf("a partial list does not say how to get the next page: %q", errOut)
	}
	if out := c.ok("users", "get", "bob", created.User.ID); !strings.Contains(out, "bob@example.com") || !strings.Contains(out, "alice@example.com") {
		t.Errorf("users get: %q", out)
	}
	c.fails(exitError, "no user nobody, 999", "users", "get", "alice", "nobody", "999")

	// Sessions: the printed token is a working session until revoked.
	token := strings.TrimSpace(c.ok("sessions", "create", "alice", "--ttl", "1h"))
	res, err := s.Clients.Profile.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: token}))
	if err != nil || res.Msg.GetUser().GetUserName() != "alice" {
		t.Fatalf("the printed token %q does not resolve to alice: %v %v", token, res, err)
	}
	// One token in 64 begins with '-': after --, any token is an argument.
	c.ok("sessions", "revoke", "--", token)
	if _, err := s.Clients.Profile.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: token})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("revoked token resolves: %v", err)
	}
	c.fails(exitUsage, "--ttl", "sessions", "create", "alice", "--ttl", "1.5s")
	c.fails(exitUsage, "goes after --", "sessions", "revoke", "-Q32WaeOJV4Xdm3czAZjwAgrdt49aGgxjx4g_JdELew")

	// Contacts, notifications, presence, countries.
	added := decode[struct {
		ChatID string `json:"chatId"`
	}](t, c.ok("contacts", "add", "alice", "bob", "--json"))
	if added.ChatID == "" || added.ChatID == "0" {
		t.Errorf("contacts add: chat %q", added.ChatID)
	}
	c.fails(exitError, "", "contacts", "add", "alice", "alice")
	if out := c.ok("contacts", "remove", "bob", "alice"); !strings.Contains(out, "no longer contacts") {
		t.Errorf("contacts remove: %q", out)
	}
	c.ok("notifications", "send", "carol", "--title", "Maintenance", "--message", "Tonight at 2", "--payload", `{"url":"https://example.com"}`)
	carol, err := s.Clients.Profile.GetUsers(ctx, connect.NewRequest(&profilev1.GetUsersRequest{UserNames: []string{"carol"}}))
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.Clients.Notify.ListNotifications(ctx, connect.NewRequest(&notifyv1.ListNotificationsRequest{UserId: carol.Msg.GetUsers()[0].GetId()}))
	if err != nil {
		t.Fatal(err)
	}
	if ns := list.Msg.GetNotifications(); len(ns) != 1 || ns[0].GetTitle() != "Maintenance" || ns[0].GetType() != "admin" {
		t.Errorf("carol's notifications %v, want the one sent", ns)
	}
	c.fails(exitUsage, "--payload", "notifications", "send", "carol", "--title", "x", "--payload", "[1]")
	c.fails(exitUsage, "title", "notifications", "send", "carol")
	if out := c.ok("presence", "get", "alice", "bob"); !strings.Contains(out, "alice") || !strings.Contains(out, "false") {
		t.Errorf("presence get: %q", out)
	}
	if out := c.ok("countries"); !strings.Contains(out, "724") || !strings.Contains(out, "Spain") {
		t.Errorf("countries lacks Spain (724)")
	}

	// Errors that say what to fix.
	noToken := ctl{t: t, env: map[string]string{"CHARLA_RPC_URL": c.env["CHARLA_RPC_URL"]}}
	noToken.fails(exitError, "set INTERNAL_API_TOKEN", "countries")
	wrong := ctl{t: t, env: map[string]string{"CHARLA_RPC_URL": c.env["CHARLA_RPC_URL"], "INTERNAL_API_TOKEN": "wrong"}}
	wrong.fails(exitError, "refused INTERNAL_API_TOKEN", "users", "list")
	unreachable := ctl{t: t, env: map[string]string{"INTERNAL_API_TOKEN": testToken, "CHARLA_RPC_URL": "http://" + s.RPCAddr, "CHAT_URL": "127.0.0.1:1"}}
	unreachable.fails(exitError, "cannot reach the chat service at 127.0.0.1:1", "contacts", "add", "alice", "bob")
	c.fails(exitUsage, "want one USERNAME", "users", "create")
	c.fails(exitUsage, "unknown command", "userz")
	c.fails(exitUsage, "--rpc", "countries", "--rpc", "http://has space")
	if code, out, _ := c.run("-version"); code != exitOK || !strings.HasPrefix(out, "charlactl ") {
		t.Errorf("-version: exit %d, %q", code, out)
	}
}
