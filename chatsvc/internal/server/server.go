package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/chatsvc/internal/store"
	"github.com/charla/charla/chatsvc/internal/typing"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/svcerr"
)

// Profiles is the part of the profile service the chat service uses.
type Profiles interface {
	GetUsers(context.Context, *connect.Request[profilev1.GetUsersRequest]) (*connect.Response[profilev1.GetUsersResponse], error)
}

// Presence is the part of the presence service the chat service uses.
type Presence interface {
	GetPresence(context.Context, *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error)
}

// Notifier is the part of the notification service the chat service uses.
type Notifier interface {
	CreateNotification(context.Context, *connect.Request[notifyv1.CreateNotificationRequest]) (*connect.Response[notifyv1.CreateNotificationResponse], error)
}

// Publisher raises events (a *fanout.Publisher in production). It returns the users with no
// connection anywhere.
type Publisher interface {
	Publish(ctx context.Context, event proto.Message, userIDs ...int64) (unrouted []int64, err error)
	// PublishOnce is Publish under an idempotency key (fanout.Publisher.PublishOnce).
	PublishOnce(ctx context.Context, key string, event proto.Message, userIDs ...int64) (unrouted []int64, err error)
}

// Config holds what a Server is built from.
type Config struct {
	Store     *store.Store
	Profiles  Profiles
	Presence  Presence
	Notifier  Notifier
	Publisher Publisher
	Log       *slog.Logger
	// Now is the clock (typing windows, message times); nil means time.Now.
	Now func() time.Time
	// MaxBatch bounds a group commit; 0 means store.DefaultMaxBatch.
	MaxBatch int
}

// Server implements chatv1connect.ChatServiceHandler except StreamEvents, which the root
// package serves from the bus.
type Server struct {
	chatv1connect.UnimplementedChatServiceHandler

	store    *store.Store
	writer   *store.Writer
	profiles Profiles
	presence Presence
	notifier Notifier
	pub      Publisher
	log      *slog.Logger
	now      func() time.Time
	typing   *typing.Tracker
	names    userNames
	pairs    chatPairs

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

var _ chatv1connect.ChatServiceHandler = (*Server)(nil)

// New returns a server and starts its message writer and typing janitor; Close stops them.
func New(cfg Config) *Server {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		store:    cfg.Store,
		writer:   cfg.Store.NewWriter(cfg.MaxBatch, now),
		profiles: cfg.Profiles,
		presence: cfg.Presence,
		notifier: cfg.Notifier,
		pub:      cfg.Publisher,
		log:      log,
		now:      now,
		typing:   typing.New(now),
		names:    userNames{m: make(map[int64]string)},
		pairs:    chatPairs{byID: make(map[int64][2]int64), byPair: make(map[[2]int64]int64)},
		stop:     make(chan struct{}),
	}
	s.wg.Add(1)
	go s.sweepTyping()
	return s
}

// WriterStats returns the group-commit writer's batches and messages so far.
func (s *Server) WriterStats() (batches, messages int64) { return s.writer.Stats() }

// Close stops the writer (after storing what is queued) and the typing janitor.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	err := s.writer.Close()
	return errors.Join(err, s.store.Close())
}

// sweepTyping drops stale typing states now and then, so the map does not grow with every
// chat anyone ever typed in.
func (s *Server) sweepTyping() {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.typing.Sweep()
		}
	}
}

// publishTimeout bounds how long a call waits for the publication of one event (the
// offline lookup and the append to the user event log, retried while the log is
// unreachable: NATS restarting). Past it the publisher keeps the event and appends it when
// the log is back (fanout.ErrKept). It stays as long as JetStream's duplicate window
// (eventlog.DedupeWindow): an attempt whose outcome is unknown (its acknowledgement late,
// NATS overloaded) may still be stored, and a retry of a keyed event within the window is
// recognised as the same record. With 10 s, a soak on an overloaded NATS kept thousands
// of events whose retries came minutes later and were stored a second time.
const publishTimeout = eventlog.DedupeWindow

// peerTimeout bounds a call to another service made on the way (a notification).
const peerTimeout = 5 * time.Second

// errShuttingDown answers a message sent while the writer is closing.
var errShuttingDown = chat.Errorf(chat.CodeUnavailable, "chat service shutting down")

// toConnect maps any error to the Connect error a client sees; it is the only place that
// does (shared/svcerr: domain errors keep their client-safe message, a peer or the
// database out of reach is unavailable, everything else is logged and answered without
// internals).
func (s *Server) toConnect(ctx context.Context, op string, user int64, err error) error {
	if errors.Is(err, store.ErrWriterClosed) {
		err = errShuttingDown
	}
	return svcerr.Mapper{Service: "chat", Log: s.log}.ToConnect(ctx, op, err, "user_id", user)
}

// userNames caches userNames, which never change once a user exists.
type userNames struct {
	mu sync.RWMutex
	m  map[int64]string
}

// maxCachedNames bounds the cache; past it the cache starts over.
const maxCachedNames = 200_000

func (n *userNames) put(id int64, name string) {
	n.mu.Lock()
	if len(n.m) >= maxCachedNames {
		n.m = make(map[int64]string)
	}
	n.m[id] = name
	n.mu.Unlock()
}

// users returns the userNames of ids that exist, asking the profile service only for the
// ones not cached, in one call. When that call fails, the names from the cache come back
// beside the error.
func (s *Server) users(ctx context.Context, ids ...int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	var missing []int64
	s.names.mu.RLock()
	for _, id := range ids {
		if name, ok := s.names.m[id]; ok {
			out[id] = name
		} else if !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	s.names.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	found, err := s.getUsers(ctx, missing)
	if err != nil {
		return out, err
	}
	for _, u := range found {
		out[u.GetId()] = u.GetUserName()
	}
	return out, nil
}

// getUsers fetches users from the profile service (one call) and caches their userNames.
func (s *Server) getUsers(ctx context.Context, ids []int64) ([]*profilev1.User, error) {
	res, err := s.profiles.GetUsers(ctx, connect.NewRequest(&profilev1.GetUsersRequest{UserIds: ids}))
	if err != nil {
		return nil, svcerr.Peer("profile", err)
	}
	for _, u := range res.Msg.GetUsers() {
		s.names.put(u.GetId(), u.GetUserName())
	}
	return res.Msg.GetUsers(), nil
}

// publish raises an event and logs a failure: the state it announces is already stored,
// so clients catch up from it (GET_CHAT_LIST, GET_CHAT_MESSAGES) even when it is lost.
// The event goes out even if the caller has gone: the change it announces is committed.
func (s *Server) publish(ctx context.Context, ev *chatv1.StreamEventsResponse, users ...int64) []int64 {
	return s.publishOnce(ctx, "", ev, users...)
}

// publishOnce is publish under an idempotency key (empty: none).
func (s *Server) publishOnce(ctx context.Context, key string, ev *chatv1.StreamEventsResponse, users ...int64) []int64 {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	unrouted, err := s.pub.PublishOnce(ctx, key, ev, users...)
	if errors.Is(err, fanout.ErrKept) {
		s.log.WarnContext(ctx, "chat event waits for the event log", "users", users, "err", err)
	} else if err != nil {
		s.log.ErrorContext(ctx, "publish chat event", "users", users, "err", err)
	}
	return unrouted
}

// chatPairs caches which two users a chat belongs to. A Contact row is never deleted and
// its users never change (only its Status does), so the cache is never stale, whatever
// other processes do; the status is always read from the database.
type chatPairs struct {
	mu     sync.RWMutex
	byID   map[int64][2]int64
	byPair map[[2]int64]int64
}

// maxCachedPairs bounds the cache; past it the cache starts over.
const maxCachedPairs = 500_000

func (p *chatPairs) put(c chat.Contact) {
	p.mu.Lock()
	if len(p.byID) >= maxCachedPairs {
		p.byID = make(map[int64][2]int64)
		p.byPair = make(map[[2]int64]int64)
	}
	p.byID[c.ID] = [2]int64{c.UserID1, c.UserID2}
	p.byPair[[2]int64{c.UserID1, c.UserID2}] = c.ID
	p.mu.Unlock()
}

// members returns the chat whose id is chatID with its users (status unknown).
func (s *Server) members(ctx context.Context, chatID int64) (chat.Contact, bool, error) {
	s.pairs.mu.RLock()
	users, ok := s.pairs.byID[chatID]
	s.pairs.mu.RUnlock()
	if ok {
		return chat.Contact{ID: chatID, UserID1: users[0], UserID2: users[1]}, true, nil
	}
	c, found, err := s.store.ContactByID(ctx, chatID)
	if err != nil || !found {
		return chat.Contact{}, false, err
	}
	s.pairs.put(c)
	return c, true, nil
}

// chatBetween returns the chat of two users (status unknown), if they ever were contacts.
func (s *Server) chatBetween(ctx context.Context, a, b int64) (chat.Contact, bool, error) {
	u1, u2 := chat.Pair(a, b)
	s.pairs.mu.RLock()
	id, ok := s.pairs.byPair[[2]int64{u1, u2}]
	s.pairs.mu.RUnlock()
	if ok {
		return chat.Contact{ID: id, UserID1: u1, UserID2: u2}, true, nil
	}
	c, found, err := s.store.ContactByPair(ctx, a, b)
	if err != nil || !found {
		return chat.Contact{}, false, err
	}
	s.pairs.put(c)
	return c, true, nil
}

// memberChat returns the chat when user is one of its pair (status unknown); otherwise
// ErrChatNotFound. History and read receipts need no more: they stay open after removal.
func (s *Server) memberChat(ctx context.Context, user, chatID int64) (chat.Contact, error) {
	c, found, err := s.members(ctx, chatID)
	if err != nil {
		return chat.Contact{}, err
	}
	if !found || !c.Has(user) {
		return chat.Contact{}, chat.ErrChatNotFound
	}
	return c, nil
}

// ownChat returns the contact behind chatID when user is one of its pair; otherwise
// ErrChatNotFound (someone else's chat looks missing).
func (s *Server) ownChat(ctx context.Context, user, chatID int64) (chat.Contact, error) {
	c, found, err := s.store.ContactByID(ctx, chatID)
	if err != nil {
		return chat.Contact{}, err
	}
	if !found || !c.Has(user) {
		return chat.Contact{}, chat.ErrChatNotFound
	}
	s.pairs.put(c)
	return c, nil
}

func checkChatID(id int64) error {
	if id <= 0 {
		return chat.Errorf(chat.CodeInvalid, "chatId: must be a positive id")
	}
	return nil
}
