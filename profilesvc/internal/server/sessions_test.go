package server_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/profilesvc/internal/server"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

func (e *env) session(t testing.TB, userID, ttl int64) *profilev1.CreateSessionResponse {
	t.Helper()
	res, err := e.client.CreateSession(context.Background(), connect.NewRequest(&profilev1.CreateSessionRequest{UserId: userID, TtlSeconds: ttl}))
	if err != nil {
		t.Fatalf("CreateSession(%d, %d): %v", userID, ttl, err)
	}
	return res.Msg
}

func (e *env) resolve(token string) (*profilev1.ResolveSessionResponse, error) {
	res, err := e.client.ResolveSession(context.Background(), connect.NewRequest(&profilev1.ResolveSessionRequest{Token: token}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (e *env) revoke(t testing.TB, token string) {
	t.Helper()
	if _, err := e.client.RevokeSession(context.Background(), connect.NewRequest(&profilev1.RevokeSessionRequest{Token: token})); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
}

func TestCreateSession(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		before := time.Now().UnixMilli()
		s := e.session(t, u.GetId(), 0)
		after := time.Now().UnixMilli()
		raw, err := base64.RawURLEncoding.DecodeString(s.GetToken())
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %d chars: got %d bytes (err %v), want 32 bytes of unpadded base64url", len(s.GetToken()), len(raw), err)
		}
		month := (30 * 24 * time.Hour).Milliseconds()
		if got := s.GetExpiresAt(); got < before+month || got > after+month {
			t.Fatalf("expiresAt %d, want now + 30 days (%d..%d)", got, before+month, after+month)
		}
		// The database holds the token's SHA-256, never the token.
		var tk string
		if err := e.db.QueryRow("SELECT Tk FROM `Session`").Scan(&tk); err != nil {
			t.Fatal(err)
		}
		if got, want := tk, server.HashToken(s.GetToken()); got != want || strings.Contains(tk, s.GetToken()) {
			t.Fatalf("stored Tk %q, want the hash %q", got, want)
		}
		if other := e.session(t, u.GetId(), 0); other.GetToken() == s.GetToken() {
			t.Fatal("two sessions got the same token")
		}
		min := e.session(t, u.GetId(), 60)
		if got := min.GetExpiresAt() - time.Now().UnixMilli(); got > 60_000 || got < 50_000 {
			t.Fatalf("ttl 60 s: expires in %d ms, want about 60000", got)
		}
		e.session(t, u.GetId(), 1)
		e.session(t, u.GetId(), 365*24*3600)

		for _, tc := range []struct {
			user, ttl int64
			code      connect.Code
			field     string
		}{
			{u.GetId(), -1, connect.CodeInvalidArgument, "ttlSeconds:"},
			{u.GetId(), 365*24*3600 + 1, connect.CodeInvalidArgument, "ttlSeconds:"},
			{0, 0, connect.CodeInvalidArgument, "userId:"},
			{-5, 0, connect.CodeInvalidArgument, "userId:"},
			{u.GetId() + 1000, 0, connect.CodeNotFound, "userId:"},
			{u.GetId() + 1000, -1, connect.CodeInvalidArgument, "ttlSeconds:"}, // input before existence
		} {
			_, err := e.client.CreateSession(context.Background(), connect.NewRequest(&profilev1.CreateSessionRequest{UserId: tc.user, TtlSeconds: tc.ttl}))
			wantCode(t, err, tc.code, tc.field)
		}
	})
}

func TestResolveSession(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		s := e.session(t, u.GetId(), 3600)
		e.queries.Reset()
		got, err := e.resolve(s.GetToken())
		if err != nil {
			t.Fatalf("ResolveSession: %v", err)
		}
		if n := e.queries.Load(); n != 1 {
			t.Errorf("ResolveSession ran %d queries, want 1", n)
		}
		if got.GetSessionId() <= 0 || got.GetExpiresAt() != s.GetExpiresAt() || got.GetUser().GetId() != u.GetId() || got.GetUser().GetUserName() != u.GetUserName() {
			t.Fatalf("got %v, want session of user %v expiring at %d", got, u, s.GetExpiresAt())
		}

		unknown := strings.Repeat("A", 43)
		for _, tok := range []string{"", unknown, s.GetToken() + "x", strings.Repeat("y", 10000)} {
			_, err := e.resolve(tok)
			wantCode(t, err, connect.CodeUnauthenticated, "")
			if tok != "" && strings.Contains(err.Error(), tok) {
				t.Fatalf("error %q contains the token", err)
			}
		}

		short := e.session(t, u.GetId(), 1)
		if _, err := e.resolve(short.GetToken()); err != nil {
			t.Fatalf("fresh session: %v", err)
		}
		e.advance(2 * time.Second)
		_, err = e.resolve(short.GetToken())
		wantCode(t, err, connect.CodeUnauthenticated, "")
		if _, err := e.resolve(s.GetToken()); err != nil {
			t.Fatalf("unexpired session after the clock moved: %v", err)
		}
	})
}

func (e *env) resolveMany(tokens ...string) (*profilev1.ResolveSessionsResponse, error) {
	res, err := e.client.ResolveSessions(context.Background(), connect.NewRequest(&profilev1.ResolveSessionsRequest{Tokens: tokens}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// TestResolveSessions: valid, unknown, revoked, expired and malformed tokens, some repeated,
// in one call and one query; each result, in the order asked, is what ResolveSession
// answers for its token alone.
func TestResolveSessions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u, other := e.createUser(t), e.createUser(t)
		active := e.session(t, u.GetId(), 3600)
		otherActive := e.session(t, other.GetId(), 3600)
		revoked := e.session(t, u.GetId(), 3600)
		e.revoke(t, revoked.GetToken())
		expired := e.session(t, other.GetId(), 1)
		e.advance(2 * time.Second)

		unknown := strings.Repeat("A", 43)
		tokens := []string{
			active.GetToken(), unknown, revoked.GetToken(), otherActive.GetToken(), "", expired.GetToken(),
			active.GetToken(), strings.Repeat("y", 10000), revoked.GetToken(), active.GetToken() + "x",
			otherActive.GetToken(), active.GetToken(),
		}
		// The user each token resolves to, 0 for those refused.
		wantUser := []int64{u.GetId(), 0, 0, other.GetId(), 0, 0, u.GetId(), 0, 0, 0, other.GetId(), u.GetId()}

		e.queries.Reset()
		got, err := e.resolveMany(tokens...)
		if err != nil {
			t.Fatalf("ResolveSessions: %v", err)
		}
		if n := e.queries.Load(); n != 1 {
			t.Errorf("ResolveSessions of %d tokens ran %d queries, want 1", len(tokens), n)
		}
		results := got.GetResults()
		if len(results) != len(tokens) {
			t.Fatalf("got %d results for %d tokens", len(results), len(tokens))
		}
		for i, tok := range tokens {
			r := results[i]
			if wantUser[i] != 0 {
				if r.GetErrorCode() != "" || r.GetSession().GetUser().GetId() != wantUser[i] || r.GetSession().GetSessionId() <= 0 {
					t.Errorf("token %d: got %v, want a session of user %d", i, r, wantUser[i])
				}
			} else if r.GetErrorCode() != connect.CodeUnauthenticated.String() || r.GetSession() != nil {
				t.Errorf("token %d: got %v, want unauthenticated and no session", i, r)
			}
			if tok != "" && strings.Contains(r.GetErrorMessage(), tok) {
				t.Errorf("token %d: message %q contains the token", i, r.GetErrorMessage())
			}
			// Exactly what ResolveSession answers for the token alone.
			single, err := e.resolve(tok)
			if err != nil {
				var ce *connect.Error
				if !errors.As(err, &ce) || r.GetErrorCode() != ce.Code().String() || r.GetErrorMessage() != ce.Message() || r.GetSession() != nil {
					t.Errorf("token %d: got %v, ResolveSession answers %v", i, r, err)
				}
				continue
			}
			if r.GetErrorCode() != "" || r.GetErrorMessage() != "" || !proto.Equal(r.GetSession(), single) {
				t.Errorf("token %d: got %v, ResolveSession answers %v", i, r, single)
			}
		}

		// None asked, none answered, nothing queried.
		e.queries.Reset()
		if got, err := e.resolveMany(); err != nil || len(got.GetResults()) != 0 {
			t.Errorf("no tokens: got %v (%v), want no results", got, err)
		}
		// Only malformed tokens: answered without a query.
		if got, err := e.resolveMany("", strings.Repeat("z", 513)); err != nil || len(got.GetResults()) != 2 ||
			got.GetResults()[0].GetErrorCode() != connect.CodeUnauthenticated.String() || got.GetResults()[1].GetErrorCode() != connect.CodeUnauthenticated.String() {
			t.Errorf("malformed tokens: got %v (%v), want two unauthenticated", got, err)
		}
		if n := e.queries.Load(); n != 0 {
			t.Errorf("ResolveSessions without a plausible token ran %d queries, want 0", n)
		}
	})
}

// TestResolveSessionsLimit: MaxResolveSessions tokens are answered in one query; one more
// fails the whole call, naming the limit.
func TestResolveSessionsLimit(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		s := e.session(t, u.GetId(), 3600)
		tokens := make([]string, server.MaxResolveSessions)
		for i := range tokens {
			tokens[i] = fmt.Sprintf("unknown-%d", i)
		}
		tokens[len(tokens)-1] = s.GetToken()
		e.queries.Reset()
		got, err := e.resolveMany(tokens...)
		if err != nil {
			t.Fatalf("ResolveSessions of %d tokens: %v", len(tokens), err)
		}
		if n := e.queries.Load(); n != 1 {
			t.Errorf("ResolveSessions of %d tokens ran %d queries, want 1", len(tokens), n)
		}
		results := got.GetResults()
		if len(results) != len(tokens) {
			t.Fatalf("got %d results for %d tokens", len(results), len(tokens))
		}
		for i, r := range results[:len(results)-1] {
			if r.GetErrorCode() != connect.CodeUnauthenticated.String() {
				t.Fatalf("unknown token %d: got %v, want unauthenticated", i, r)
			}
		}
		if last := results[len(results)-1]; last.GetSession().GetUser().GetId() != u.GetId() {
			t.Errorf("the last token: got %v, want the session of user %d", last, u.GetId())
		}

		_, err = e.resolveMany(append(tokens, s.GetToken())...)
		wantCode(t, err, connect.CodeInvalidArgument, "tokens: at most 256, got 257")
	})
}

func TestRevokeSession(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		s := e.session(t, u.GetId(), 0)
		keep := e.session(t, u.GetId(), 0)
		r, err := e.resolve(s.GetToken())
		if err != nil {
			t.Fatal(err)
		}
		e.revoke(t, s.GetToken())
		_, err = e.resolve(s.GetToken())
		wantCode(t, err, connect.CodeUnauthenticated, "")
		if _, err := e.resolve(keep.GetToken()); err != nil {
			t.Fatalf("other session of the user after a revoke: %v", err)
		}
		sent := e.events.all()
		if len(sent) != 1 {
			t.Fatalf("got %d events, want 1", len(sent))
		}
		ended := sent[0].event.GetSessionEnded()
		if ended.GetSessionId() != r.GetSessionId() || ended.GetState() != profilev1.SessionState_SESSION_STATE_REVOKED || !equal(sent[0].users, []int64{u.GetId()}) {
			t.Fatalf("got event %v to %v, want session %d REVOKED to [%d]", ended, sent[0].users, r.GetSessionId(), u.GetId())
		}

		// Idempotent: again, an unknown token and an expired session succeed without events.
		e.revoke(t, s.GetToken())
		e.revoke(t, strings.Repeat("Z", 43))
		short := e.session(t, u.GetId(), 1)
		e.advance(2 * time.Second)
		e.revoke(t, short.GetToken())
		if got := len(e.events.all()); got != 1 {
			t.Fatalf("got %d events after idempotent revokes, want still 1", got)
		}

		_, err = e.client.RevokeSession(context.Background(), connect.NewRequest(&profilev1.RevokeSessionRequest{}))
		wantCode(t, err, connect.CodeInvalidArgument, "token:")

		// A failed publish does not undo the revocation.
		e.events.mu.Lock()
		e.events.err = errors.New("bus down")
		e.events.mu.Unlock()
		e.revoke(t, keep.GetToken())
		_, err = e.resolve(keep.GetToken())
		wantCode(t, err, connect.CodeUnauthenticated, "")

		// The logs say what happened, but never with a token.
		logs := e.logs.String()
		if !strings.Contains(logs, "session revoked") {
			t.Fatalf("logs lack the revocation:\n%s", logs)
		}
		for _, tok := range []string{s.GetToken(), keep.GetToken(), short.GetToken()} {
			if strings.Contains(logs, tok) || strings.Contains(logs, server.HashToken(tok)) {
				t.Fatalf("logs contain a token or its hash:\n%s", logs)
			}
		}
	})
}

func TestCheckSessions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		ids := map[string]int64{}
		for _, name := range []string{"active", "expired", "revoked"} {
			ttl := int64(3600)
			if name == "expired" {
				ttl = 1
			}
			s := e.session(t, u.GetId(), ttl)
			r, err := e.resolve(s.GetToken())
			if err != nil {
				t.Fatal(err)
			}
			ids[name] = r.GetSessionId()
			if name == "revoked" {
				e.revoke(t, s.GetToken())
			}
		}
		e.advance(2 * time.Second)
		ask := []int64{ids["revoked"], 987654, ids["active"], ids["expired"], ids["active"]}
		e.queries.Reset()
		res, err := e.client.CheckSessions(context.Background(), connect.NewRequest(&profilev1.CheckSessionsRequest{SessionIds: ask}))
		if err != nil {
			t.Fatalf("CheckSessions: %v", err)
		}
		if n := e.queries.Load(); n != 1 {
			t.Errorf("CheckSessions ran %d queries, want 1", n)
		}
		want := []profilev1.SessionState{
			profilev1.SessionState_SESSION_STATE_REVOKED, profilev1.SessionState_SESSION_STATE_REVOKED,
			profilev1.SessionState_SESSION_STATE_ACTIVE, profilev1.SessionState_SESSION_STATE_EXPIRED,
			profilev1.SessionState_SESSION_STATE_ACTIVE,
		}
		got := res.Msg.GetSessions()
		if len(got) != len(want) {
			t.Fatalf("got %d entries, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].GetSessionId() != ask[i] || got[i].GetState() != want[i] {
				t.Errorf("entry %d: got %v, want session %d %v", i, got[i], ask[i], want[i])
			}
		}
	})
}
