// Package server implements the profile.v1 Connect handler over a profile.Store: token
// issuing and hashing, visibility of profiles (contacts from the chat service, presence
// from the presence service) and the mapping of domain errors to Connect codes, done in
// one place (toConnect). StreamEvents is served by the root package.
//
// A *Server is safe for concurrent use; it keeps no state besides its dependencies.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/profilesvc/internal/profile"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svcerr"
)

// ContactLister is the part of the chat service the profile service uses
// (chatv1connect.ChatServiceClient satisfies it).
type ContactLister interface {
	ListContactIds(context.Context, *connect.Request[chatv1.ListContactIdsRequest]) (*connect.Response[chatv1.ListContactIdsResponse], error)
}

// PresenceGetter is the part of the presence service the profile service uses
// (presencev1connect.PresenceServiceClient satisfies it).
type PresenceGetter interface {
	GetPresence(context.Context, *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error)
}

// Publisher sends an event to the connections of users (*fanout.Publisher satisfies it).
type Publisher interface {
	Publish(ctx context.Context, event proto.Message, userIDs ...int64) ([]int64, error)
}

// Limits on the size of batch requests, so one call cannot build an unbounded IN list.
const (
	MaxCheckSessions = 10000
	MaxGetUsers      = 1000
	// MaxResolveSessions bounds the tokens of one ResolveSessions call: an edge sends the
	// handshakes that arrived during one call, and the IN list of its query stays short.
	MaxResolveSessions = 256
	// maxTokenLen bounds what is hashed; real tokens are 43 bytes.
	maxTokenLen = 512
)

// Config holds what a Server is built from.
type Config struct {
	Store    profile.Store
	Contacts ContactLister
	Presence PresenceGetter
	Events   Publisher
	Log      *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it to expire sessions.
	Now func() time.Time
}

// Server implements profilev1connect.ProfileServiceHandler, except StreamEvents.
type Server struct {
	profilev1connect.UnimplementedProfileServiceHandler
	store    profile.Store
	contacts ContactLister
	presence PresenceGetter
	events   Publisher
	log      *slog.Logger
	now      func() time.Time
}

var _ profilev1connect.ProfileServiceHandler = (*Server)(nil)

// New returns a server.
func New(c Config) *Server {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{store: c.Store, contacts: c.Contacts, presence: c.Presence, events: c.Events, log: c.Log, now: c.Now}
}

func (s *Server) nowMs() int64 { return s.now().UnixMilli() }

// HashToken is what the Session table stores instead of a token: its SHA-256, in hex.
// The token carries 256 random bits, so a fast unsalted hash is enough: nothing can be
// guessed, and a lookup by hash stays one indexed query.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newToken returns 32 random bytes in unpadded base64url (43 characters).
func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// toConnect maps any error to the Connect error a client sees; it is the only place that
// does (shared/svcerr: domain errors keep their client-safe message, a peer or the
// database out of reach is unavailable, everything else is logged and answered without
// internals).
func (s *Server) toConnect(ctx context.Context, op string, err error) error {
	return svcerr.Mapper{Service: "profile", Log: s.log}.ToConnect(ctx, op, err)
}

// CreateUser registers a user.
func (s *Server) CreateUser(ctx context.Context, req *connect.Request[profilev1.CreateUserRequest]) (*connect.Response[profilev1.CreateUserResponse], error) {
	nu, err := profile.ValidateNewUser(req.Msg)
	if err != nil {
		return nil, s.toConnect(ctx, "create user", err)
	}
	u, err := s.store.CreateUser(ctx, nu, s.nowMs())
	if err != nil {
		return nil, s.toConnect(ctx, "create user", err)
	}
	s.log.InfoContext(ctx, "user created", "user_id", u.GetId())
	return connect.NewResponse(&profilev1.CreateUserResponse{User: u}), nil
}

// CreateSession issues a token for a user; only its hash is stored.
func (s *Server) CreateSession(ctx context.Context, req *connect.Request[profilev1.CreateSessionRequest]) (*connect.Response[profilev1.CreateSessionResponse], error) {
	userID := req.Msg.GetUserId()
	if err := profile.CheckID("userId", userID); err != nil {
		return nil, s.toConnect(ctx, "create session", err)
	}
	ttl, err := profile.SessionTTL(req.Msg.GetTtlSeconds())
	if err != nil {
		return nil, s.toConnect(ctx, "create session", err)
	}
	token, err := newToken()
	if err != nil {
		return nil, s.toConnect(ctx, "create session", err)
	}
	now := s.nowMs()
	expiresAt := now + ttl.Milliseconds()
	id, err := s.store.CreateSession(ctx, userID, HashToken(token), expiresAt, now)
	if err != nil {
		return nil, s.toConnect(ctx, "create session", err)
	}
	s.log.InfoContext(ctx, "session created", "user_id", userID, "session_id", id, "expires_at", expiresAt)
	return connect.NewResponse(&profilev1.CreateSessionResponse{Token: token, ExpiresAt: expiresAt}), nil
}

// RevokeSession ends a session and tells the edges holding its connections to close them.
// The revocation stands even when the event cannot be published: edges also poll
// CheckSessions, so the connections close within its period anyway.
func (s *Server) RevokeSession(ctx context.Context, req *connect.Request[profilev1.RevokeSessionRequest]) (*connect.Response[profilev1.RevokeSessionResponse], error) {
	token := req.Msg.GetToken()
	if token == "" {
		return nil, s.toConnect(ctx, "revoke session", profile.Errorf(profile.CodeInvalid, "token: required"))
	}
	if len(token) > maxTokenLen {
		// No session has such a token; revoking it is a successful no-op.
		return connect.NewResponse(&profilev1.RevokeSessionResponse{}), nil
	}
	ended, err := s.store.RevokeSession(ctx, HashToken(token), s.nowMs())
	if err != nil {
		return nil, s.toConnect(ctx, "revoke session", err)
	}
	if ended != nil {
		s.log.InfoContext(ctx, "session revoked", "user_id", ended.UserID, "session_id", ended.ID)
		if s.events != nil {
			ev := &profilev1.StreamEventsResponse{Event: &profilev1.StreamEventsResponse_SessionEnded{
				SessionEnded: &profilev1.SessionEndedEvent{SessionId: ended.ID, State: profilev1.SessionState_SESSION_STATE_REVOKED},
			}}
			if _, err := s.events.Publish(ctx, ev, ended.UserID); err != nil {
				s.log.WarnContext(ctx, "publish session ended", "user_id", ended.UserID, "session_id", ended.ID, "err", err)
			}
		}
	}
	return connect.NewResponse(&profilev1.RevokeSessionResponse{}), nil
}

// ResolveSession turns a token into its session and user with one query.
func (s *Server) ResolveSession(ctx context.Context, req *connect.Request[profilev1.ResolveSessionRequest]) (*connect.Response[profilev1.ResolveSessionResponse], error) {
	token := req.Msg.GetToken()
	if !plausibleToken(token) {
		return nil, s.toConnect(ctx, "resolve session", errNoSession())
	}
	ses, err := s.store.ResolveSession(ctx, HashToken(token), s.nowMs())
	if err != nil {
		return nil, s.toConnect(ctx, "resolve session", err)
	}
	return connect.NewResponse(sessionResponse(ses)), nil
}

// ResolveSessions resolves many tokens with one query. Each result is what ResolveSession
// answers for its token alone (a session, or the Connect code and message of its error),
// in the order asked; a repeated token gets its answer each time. Only a failure of the
// whole call (too many tokens, the database) fails the call.
func (s *Server) ResolveSessions(ctx context.Context, req *connect.Request[profilev1.ResolveSessionsRequest]) (*connect.Response[profilev1.ResolveSessionsResponse], error) {
	tokens := req.Msg.GetTokens()
	if len(tokens) > MaxResolveSessions {
		return nil, s.toConnect(ctx, "resolve sessions", profile.Errorf(profile.CodeInvalid, "tokens: at most %d, got %d", MaxResolveSessions, len(tokens)))
	}
	// The hash of each plausible token ("" for the others, which are answered without
	// asking the store, as ResolveSession does).
	hashes := make([]string, len(tokens))
	ask := make([]string, 0, len(tokens))
	for i, tok := range tokens {
		if plausibleToken(tok) {
			hashes[i] = HashToken(tok)
			ask = append(ask, hashes[i])
		}
	}
	var found map[string]*profile.Session
	if len(ask) > 0 {
		var err error
		if found, err = s.store.ResolveSessions(ctx, ask, s.nowMs()); err != nil {
			return nil, s.toConnect(ctx, "resolve sessions", err)
		}
	}
	results := make([]*profilev1.ResolveSessionsResult, len(tokens))
	for i, h := range hashes {
		if ses, ok := found[h]; ok {
			results[i] = &profilev1.ResolveSessionsResult{Session: sessionResponse(ses)}
			continue
		}
		results[i] = s.errorResult(ctx, errNoSession())
	}
	return connect.NewResponse(&profilev1.ResolveSessionsResponse{Results: results}), nil
}

// plausibleToken reports whether token may be a session's: empty and overlong ones are
// not looked up (maxTokenLen bounds what is hashed).
func plausibleToken(token string) bool { return token != "" && len(token) <= maxTokenLen }

// errNoSession is the one answer for a token without an active session (unknown, revoked,
// expired or malformed), the same as the store's: a client cannot tell them apart.
func errNoSession() error {
	return profile.Errorf(profile.CodeUnauthenticated, "token: unknown, revoked or expired session")
}

// sessionResponse is the answer of ResolveSession for ses.
func sessionResponse(ses *profile.Session) *profilev1.ResolveSessionResponse {
	return &profilev1.ResolveSessionResponse{SessionId: ses.ID, ExpiresAt: ses.ExpiresAt, User: ses.User}
}

// errorResult is the ResolveSessions result of one token that failed with err: the code
// and message ResolveSession would answer, through the same mapping (toConnect).
func (s *Server) errorResult(ctx context.Context, err error) *profilev1.ResolveSessionsResult {
	code, msg := rpc.ItemError(s.toConnect(ctx, "resolve sessions", err))
	return &profilev1.ResolveSessionsResult{ErrorCode: code, ErrorMessage: msg}
}

// CheckSessions reports the state of each asked session, in the order asked.
func (s *Server) CheckSessions(ctx context.Context, req *connect.Request[profilev1.CheckSessionsRequest]) (*connect.Response[profilev1.CheckSessionsResponse], error) {
	ids := req.Msg.GetSessionIds()
	if len(ids) > MaxCheckSessions {
		return nil, s.toConnect(ctx, "check sessions", profile.Errorf(profile.CodeInvalid, "sessionIds: at most %d, got %d", MaxCheckSessions, len(ids)))
	}
	unique := slices.Clone(ids)
	slices.Sort(unique)
	unique = slices.Compact(unique)
	states, err := s.store.CheckSessions(ctx, unique, s.nowMs())
	if err != nil {
		return nil, s.toConnect(ctx, "check sessions", err)
	}
	out := make([]*profilev1.SessionStatus, len(ids))
	for i, id := range ids {
		out[i] = &profilev1.SessionStatus{SessionId: id, State: states[id]}
	}
	return connect.NewResponse(&profilev1.CheckSessionsResponse{Sessions: out}), nil
}

// ListCountries lists the ISO 3166-1 countries by id.
func (s *Server) ListCountries(ctx context.Context, _ *connect.Request[profilev1.ListCountriesRequest]) (*connect.Response[profilev1.ListCountriesResponse], error) {
	cs, err := s.store.ListCountries(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, "list countries", err)
	}
	return connect.NewResponse(&profilev1.ListCountriesResponse{Countries: cs}), nil
}

// Page sizes of ListUsers.
const (
	DefaultListUsers = 100
	MaxListUsers     = 1000
)

// ListUsers returns one page of users by ascending id (one query: a page and one more row
// tells whether another page follows).
func (s *Server) ListUsers(ctx context.Context, req *connect.Request[profilev1.ListUsersRequest]) (*connect.Response[profilev1.ListUsersResponse], error) {
	after, limit := req.Msg.GetAfterId(), int(req.Msg.GetLimit())
	switch {
	case after < 0:
		return nil, s.toConnect(ctx, "list users", profile.Errorf(profile.CodeInvalid, "afterId: must be 0 or a user id, got %d", after))
	case limit < 0 || limit > MaxListUsers:
		return nil, s.toConnect(ctx, "list users", profile.Errorf(profile.CodeInvalid, "limit: 1 to %d (0 for %d), got %d", MaxListUsers, DefaultListUsers, limit))
	case limit == 0:
		limit = DefaultListUsers
	}
	users, err := s.store.ListUsers(ctx, after, limit+1)
	if err != nil {
		return nil, s.toConnect(ctx, "list users", err)
	}
	res := &profilev1.ListUsersResponse{Users: users}
	if len(users) > limit {
		res.Users = users[:limit]
		res.NextAfterId = users[limit-1].GetId()
	}
	return connect.NewResponse(res), nil
}

// GetUsers returns the users found by id (one query) and by userName (one query): those
// asked by id first, then by name, each in the order asked, repeats and unknowns left out.
func (s *Server) GetUsers(ctx context.Context, req *connect.Request[profilev1.GetUsersRequest]) (*connect.Response[profilev1.GetUsersResponse], error) {
	ids, names := req.Msg.GetUserIds(), req.Msg.GetUserNames()
	if len(ids) > MaxGetUsers {
		return nil, s.toConnect(ctx, "get users", profile.Errorf(profile.CodeInvalid, "userIds: at most %d, got %d", MaxGetUsers, len(ids)))
	}
	if len(names) > MaxGetUsers {
		return nil, s.toConnect(ctx, "get users", profile.Errorf(profile.CodeInvalid, "userNames: at most %d, got %d", MaxGetUsers, len(names)))
	}
	var askIDs []int64
	seenID := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if id > 0 && !seenID[id] {
			seenID[id] = true
			askIDs = append(askIDs, id)
		}
	}
	var askNames []string
	seenName := make(map[string]bool, len(names))
	for _, n := range names {
		n = profile.FoldUserName(n)
		if profile.CheckUserName(n) == nil && !seenName[n] {
			seenName[n] = true
			askNames = append(askNames, n)
		}
	}
	byID, err := s.store.UsersByID(ctx, askIDs)
	if err != nil {
		return nil, s.toConnect(ctx, "get users", err)
	}
	byName, err := s.store.UsersByName(ctx, askNames)
	if err != nil {
		return nil, s.toConnect(ctx, "get users", err)
	}
	idIndex := make(map[int64]*profilev1.User, len(byID))
	for _, u := range byID {
		idIndex[u.GetId()] = u
	}
	nameIndex := make(map[string]*profilev1.User, len(byName))
	for _, u := range byName {
		nameIndex[u.GetUserName()] = u
	}
	out := make([]*profilev1.User, 0, len(byID)+len(byName))
	for _, id := range askIDs {
		if u := idIndex[id]; u != nil {
			out = append(out, u)
		}
	}
	for _, n := range askNames {
		if u := nameIndex[n]; u != nil {
			out = append(out, u)
		}
	}
	return connect.NewResponse(&profilev1.GetUsersResponse{Users: out}), nil
}

// GetProfile returns a profile as seen by a viewer.
func (s *Server) GetProfile(ctx context.Context, req *connect.Request[profilev1.GetProfileRequest]) (*connect.Response[profilev1.GetProfileResponse], error) {
	viewer, user := req.Msg.GetViewerId(), req.Msg.GetUserId()
	if err := profile.CheckID("viewerId", viewer); err != nil {
		return nil, s.toConnect(ctx, "get profile", err)
	}
	if err := profile.CheckID("userId", user); err != nil {
		return nil, s.toConnect(ctx, "get profile", err)
	}
	p, err := s.profileFor(ctx, viewer, user)
	if err != nil {
		return nil, s.toConnect(ctx, "get profile", err)
	}
	return connect.NewResponse(&profilev1.GetProfileResponse{Profile: p}), nil
}

// profileFor loads a profile and applies what viewer may see: email, phone and presence
// only for the user and their accepted contacts. The chat service is asked once (the
// viewer's contacts) and the presence service once, and only when their answer matters.
// The first peer call runs beside the database reads, so it adds no latency of its own;
// a missing user still answers not_found whatever the peers say.
func (s *Server) profileFor(ctx context.Context, viewer, user int64) (*profilev1.ProfileData, error) {
	self := viewer == user
	type peerResult struct {
		contact  bool
		presence *presencev1.Presence
		err      error
	}
	peer := make(chan peerResult, 1) // buffered: the sender never waits for an early return
	go func() {
		if self {
			peer <- peerResult{presence: s.getPresence(ctx, user)}
			return
		}
		ok, err := s.isContact(ctx, viewer, user)
		peer <- peerResult{contact: ok, err: err}
	}()
	p, err := s.store.Profile(ctx, user)
	if err != nil {
		return nil, err
	}
	r := <-peer
	if r.err != nil {
		return nil, r.err
	}
	if !self && !r.contact {
		p.Email, p.Phone = "", ""
		return p, nil
	}
	pr := r.presence
	if !self {
		pr = s.getPresence(ctx, user)
	}
	p.IsOnline, p.LastSeen = pr.GetIsOnline(), pr.GetLastSeen()
	return p, nil
}

// isContact asks the chat service whether user is an accepted contact of viewer. Without
// that answer nobody can tell whether email and phone may be shown, so a failure is
// unavailable rather than a guess.
func (s *Server) isContact(ctx context.Context, viewer, user int64) (bool, error) {
	if s.contacts == nil {
		return false, profile.Errorf(profile.CodeUnavailable, "contacts: chat service unavailable")
	}
	res, err := s.contacts.ListContactIds(ctx, connect.NewRequest(&chatv1.ListContactIdsRequest{UserIds: []int64{viewer}}))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return false, ctxErr
		}
		s.log.WarnContext(ctx, "list contacts", "user_id", viewer, "err", err)
		return false, profile.Errorf(profile.CodeUnavailable, "contacts: chat service unavailable")
	}
	for _, uc := range res.Msg.GetContacts() {
		if uc.GetUserId() == viewer && slices.Contains(uc.GetContactIds(), user) {
			return true, nil
		}
	}
	return false, nil
}

// getPresence asks the presence service for one user's presence, in one GetPresence call.
// Presence is secondary to the profile: when the presence service fails, it returns nil
// (offline, lastSeen 0) and logs the failure.
func (s *Server) getPresence(ctx context.Context, user int64) *presencev1.Presence {
	if s.presence == nil {
		return nil
	}
	res, err := s.presence.GetPresence(ctx, connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: []int64{user}}))
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "get presence", "user_id", user, "err", err)
		}
		return nil
	}
	for _, pr := range res.Msg.GetPresences() {
		if pr.GetUserId() == user {
			return pr
		}
	}
	return nil
}

// UpdateProfile validates the whole update, applies it in one transaction and returns the
// profile as its owner sees it.
func (s *Server) UpdateProfile(ctx context.Context, req *connect.Request[profilev1.UpdateProfileRequest]) (*connect.Response[profilev1.UpdateProfileResponse], error) {
	u, err := profile.ValidateUpdate(req.Msg)
	if err != nil {
		return nil, s.toConnect(ctx, "update profile", err)
	}
	if err := s.store.UpdateProfile(ctx, u); err != nil {
		return nil, s.toConnect(ctx, "update profile", err)
	}
	s.log.InfoContext(ctx, "profile updated", "user_id", u.UserID)
	p, err := s.profileFor(ctx, u.UserID, u.UserID)
	if err != nil {
		return nil, s.toConnect(ctx, "update profile", err)
	}
	return connect.NewResponse(&profilev1.UpdateProfileResponse{Profile: p}), nil
}
