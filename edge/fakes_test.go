package edge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
)

// fakes are the four services, in memory, served over loopback Connect: tokens "tok-N"
// belong to user N with session N; events pushed on the channels go out on the streams.
type fakes struct {
	chatv1connect.UnimplementedChatServiceHandler
	profile  fakeProfile
	notify   fakeNotify
	presence fakePresence

	chatEvents chan *chatv1.StreamEventsResponse
	holdMarker chan struct{} // when set, the chat stream sends its marker once it is closed

	mu        sync.Mutex
	delivered map[int64][]int64 // recipient → message ids
	deliverCh chan struct{}
}

type fakeProfile struct {
	profilev1connect.UnimplementedProfileServiceHandler
	events   chan *profilev1.StreamEventsResponse
	mu       sync.Mutex
	revoked  map[int64]bool
	resolves int
}

type fakeNotify struct {
	notifyv1connect.UnimplementedNotificationServiceHandler
}

type fakePresence struct {
	presencev1connect.UnimplementedPresenceServiceHandler
	log *eventlog.Memory // the user event log, served as the presence service does
	// breakLog, when a value arrives, ends the open StreamUserEvents with that error.
	breakLog  chan error
	logOpens  chan *presencev1.StreamUserEventsRequest // every StreamUserEvents request
	mu        sync.Mutex
	conns     map[string]int64 // connection id → user
	connected chan string
	// Connect answers the user's last seq when asked, as the presence service does, unless
	// noLastSeq (a service whose log could not be read); reads counts ReadUserEvents.
	noLastSeq bool
	reads     atomic.Int64
}

func newFakes(tb testing.TB) (*fakes, *peers.Clients) {
	tb.Helper()
	f := &fakes{
		chatEvents: make(chan *chatv1.StreamEventsResponse, 16),
		delivered:  map[int64][]int64{},
		deliverCh:  make(chan struct{}, 100),
	}
	f.profile.events = make(chan *profilev1.StreamEventsResponse, 16)
	f.profile.revoked = map[int64]bool{}
	f.presence.conns = map[string]int64{}
	f.presence.log = eventlog.NewMemory(eventlog.Options{})
	f.presence.breakLog = make(chan error, 1)
	f.presence.logOpens = make(chan *presencev1.StreamUserEventsRequest, 100)
	f.presence.connected = make(chan string, 100000)
	// Like the real services, do not gzip tiny replies.
	small := connect.WithCompressMinBytes(1024)
	mux := rpc.NewMux(
		rpc.Service{Name: chatv1connect.ChatServiceName, Path: "/" + chatv1connect.ChatServiceName + "/", Handler: handlerOf(chatv1connect.NewChatServiceHandler(f, small))},
		rpc.Service{Name: profilev1connect.ProfileServiceName, Path: "/" + profilev1connect.ProfileServiceName + "/", Handler: handlerOf(profilev1connect.NewProfileServiceHandler(&f.profile, small))},
		rpc.Service{Name: notifyv1connect.NotificationServiceName, Path: "/" + notifyv1connect.NotificationServiceName + "/", Handler: handlerOf(notifyv1connect.NewNotificationServiceHandler(&f.notify, small))},
		rpc.Service{Name: presencev1connect.PresenceServiceName, Path: "/" + presencev1connect.PresenceServiceName + "/", Handler: handlerOf(presencev1connect.NewPresenceServiceHandler(&f.presence, small))},
	)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = rpc.Protocols()
	srv.Start()
	tb.Cleanup(srv.Close)
	return f, peers.New(peers.Same(strings.TrimPrefix(srv.URL, "http://")), "", nil)
}

func handlerOf(_ string, h http.Handler) http.Handler { return h }

func (f *fakes) StreamEvents(ctx context.Context, _ *connect.Request[chatv1.StreamEventsRequest], s *connect.ServerStream[chatv1.StreamEventsResponse]) error {
	if f.holdMarker != nil {
		select {
		case <-f.holdMarker:
		case <-ctx.Done():
			return nil
		}
	}
	if err := s.Send(&chatv1.StreamEventsResponse{}); err != nil { // the subscribed marker, as fanout.Serve sends it
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-f.chatEvents:
			if ev.GetTypingIndicator() == nil {
				// Sequenced: through the user event log, as fanout.Publisher does.
				f.presence.appendEvent("chat", ev.GetExcludeConnectionId(), ev, ev.GetUserIds())
				continue
			}
			if err := s.Send(ev); err != nil {
				return err
			}
		}
	}
}

func (f *fakes) GetChatList(context.Context, *connect.Request[chatv1.GetChatListRequest]) (*connect.Response[chatv1.GetChatListResponse], error) {
	return connect.NewResponse(&chatv1.GetChatListResponse{}), nil
}

func (f *fakes) MarkDelivered(_ context.Context, r *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error) {
	f.mu.Lock()
	var n int64
	if r.Msg.GetUserId() != 0 {
		f.delivered[r.Msg.GetUserId()] = append(f.delivered[r.Msg.GetUserId()], r.Msg.GetMessageIds()...)
		n += int64(len(r.Msg.GetMessageIds()))
	}
	for _, rc := range r.Msg.GetReceipts() {
		f.delivered[rc.GetUserId()] = append(f.delivered[rc.GetUserId()], rc.GetMessageIds()...)
		n += int64(len(rc.GetMessageIds()))
	}
	f.mu.Unlock()
	f.deliverCh <- struct{}{}
	return connect.NewResponse(&chatv1.MarkDeliveredResponse{Updated: n}), nil
}

func (p *fakeProfile) ResolveSession(_ context.Context, r *connect.Request[profilev1.ResolveSessionRequest]) (*connect.Response[profilev1.ResolveSessionResponse], error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(r.Msg.GetToken(), "tok-"), 10, 64)
	p.mu.Lock()
	p.resolves++
	revoked := p.revoked[n]
	p.mu.Unlock()
	if err != nil || n <= 0 || revoked {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown token"))
	}
	return connect.NewResponse(&profilev1.ResolveSessionResponse{SessionId: n, ExpiresAt: time.Now().Add(time.Hour).UnixMilli(),
		User: &profilev1.User{Id: n, UserName: "u" + strconv.FormatInt(n, 10)}}), nil
}

// ResolveSessions answers each token as ResolveSession does, an error as a result of its own.
func (p *fakeProfile) ResolveSessions(ctx context.Context, r *connect.Request[profilev1.ResolveSessionsRequest]) (*connect.Response[profilev1.ResolveSessionsResponse], error) {
	out := &profilev1.ResolveSessionsResponse{}
	for _, tok := range r.Msg.GetTokens() {
		res, err := p.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: tok}))
		if err != nil {
			out.Results = append(out.Results, &profilev1.ResolveSessionsResult{ErrorCode: connect.CodeOf(err).String(), ErrorMessage: err.Error()})
			continue
		}
		out.Results = append(out.Results, &profilev1.ResolveSessionsResult{Session: res.Msg})
	}
	return connect.NewResponse(out), nil
}

func (p *fakeProfile) CheckSessions(_ context.Context, r *connect.Request[profilev1.CheckSessionsRequest]) (*connect.Response[profilev1.CheckSessionsResponse], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := &profilev1.CheckSessionsResponse{}
	for _, id := range r.Msg.GetSessionIds() {
		st := profilev1.SessionState_SESSION_STATE_ACTIVE
		if p.revoked[id] {
			st = profilev1.SessionState_SESSION_STATE_REVOKED
		}
		res.Sessions = append(res.Sessions, &profilev1.SessionStatus{SessionId: id, State: st})
	}
	return connect.NewResponse(res), nil
}

func (p *fakeProfile) StreamEvents(ctx context.Context, _ *connect.Request[profilev1.StreamEventsRequest], s *connect.ServerStream[profilev1.StreamEventsResponse]) error {
	if err := s.Send(&profilev1.StreamEventsResponse{}); err != nil { // the subscribed marker, as fanout.Serve sends it
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-p.events:
			if err := s.Send(ev); err != nil {
				return err
			}
		}
	}
}

func (n *fakeNotify) StreamEvents(ctx context.Context, _ *connect.Request[notifyv1.StreamEventsRequest], s *connect.ServerStream[notifyv1.StreamEventsResponse]) error {
	if err := s.Send(&notifyv1.StreamEventsResponse{}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (p *fakePresence) RegisterEdge(context.Context, *connect.Request[presencev1.RegisterEdgeRequest]) (*connect.Response[presencev1.RegisterEdgeResponse], error) {
	return connect.NewResponse(&presencev1.RegisterEdgeResponse{LeaseMs: 30000}), nil
}

func (p *fakePresence) Heartbeat(context.Context, *connect.Request[presencev1.HeartbeatRequest]) (*connect.Response[presencev1.HeartbeatResponse], error) {
	return connect.NewResponse(&presencev1.HeartbeatResponse{}), nil
}

func (p *fakePresence) Connect(_ context.Context, r *connect.Request[presencev1.ConnectRequest]) (*connect.Response[presencev1.ConnectResponse], error) {
	p.mu.Lock()
	p.conns[r.Msg.GetConnectionId()] = r.Msg.GetUserId()
	p.mu.Unlock()
	select {
	case p.connected <- r.Msg.GetConnectionId():
	default:
	}
	res := &presencev1.ConnectResponse{}
	if r.Msg.GetWantLastSeq() && !p.noLastSeq {
		last, err := p.log.LastSeq(context.Background(), r.Msg.GetUserId())
		if err != nil {
			return nil, err
		}
		res.LastSeq = &last
	}
	return connect.NewResponse(res), nil
}

// ConnectMany answers each connection as Connect does, an error as a result of its own.
func (p *fakePresence) ConnectMany(ctx context.Context, r *connect.Request[presencev1.ConnectManyRequest]) (*connect.Response[presencev1.ConnectManyResponse], error) {
	out := &presencev1.ConnectManyResponse{}
	for _, m := range r.Msg.GetConnections() {
		res, err := p.Connect(ctx, connect.NewRequest(m))
		if err != nil {
			out.Results = append(out.Results, &presencev1.ConnectManyResult{ErrorCode: connect.CodeOf(err).String(), ErrorMessage: err.Error()})
			continue
		}
		out.Results = append(out.Results, &presencev1.ConnectManyResult{Response: res.Msg})
	}
	return connect.NewResponse(out), nil
}

func (p *fakePresence) Disconnect(_ context.Context, r *connect.Request[presencev1.DisconnectRequest]) (*connect.Response[presencev1.DisconnectResponse], error) {
	p.mu.Lock()
	delete(p.conns, r.Msg.GetConnectionId())
	p.mu.Unlock()
	return connect.NewResponse(&presencev1.DisconnectResponse{}), nil
}

// DisconnectMany records each connection as Disconnect does.
func (p *fakePresence) DisconnectMany(ctx context.Context, r *connect.Request[presencev1.DisconnectManyRequest]) (*connect.Response[presencev1.DisconnectManyResponse], error) {
	out := &presencev1.DisconnectManyResponse{}
	for _, m := range r.Msg.GetConnections() {
		res, err := p.Disconnect(ctx, connect.NewRequest(m))
		if err != nil {
			return nil, err
		}
		out.Results = append(out.Results, &presencev1.DisconnectManyResult{Response: res.Msg})
	}
	return connect.NewResponse(out), nil
}

func (p *fakePresence) GetPresence(context.Context, *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	return connect.NewResponse(&presencev1.GetPresenceResponse{}), nil
}

func (p *fakePresence) StreamEvents(ctx context.Context, _ *connect.Request[presencev1.StreamEventsRequest], s *connect.ServerStream[presencev1.StreamEventsResponse]) error {
	if err := s.Send(&presencev1.StreamEventsResponse{}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// appendEvent appends ev (a service's StreamEventsResponse) to the user event log for users.
func (p *fakePresence) appendEvent(service, exclude string, ev proto.Message, users []int64) {
	msg := proto.Clone(ev)
	m := msg.ProtoReflect()
	m.Clear(m.Descriptor().Fields().ByName("user_ids"))
	data, err := proto.Marshal(msg)
	if err != nil {
		panic(err)
	}
	if _, err := p.log.Append(context.Background(), eventlog.Event{Service: service, Exclude: exclude, Data: data}, users); err != nil {
		panic(err)
	}
}

func (p *fakePresence) StreamUserEvents(ctx context.Context, r *connect.Request[presencev1.StreamUserEventsRequest], s *connect.ServerStream[presencev1.StreamUserEventsResponse]) error {
	select {
	case p.logOpens <- r.Msg:
	default:
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	broken := make(chan error, 1)
	go func() {
		select {
		case err := <-p.breakLog:
			broken <- err
			cancel()
		case <-ctx.Done():
		}
	}()
	served := fanout.ServeLog(ctx, p.log, logging.Discard(), r.Msg.GetEdgeId(), r.Msg.AfterPosition, s.Send)
	select {
	case err := <-broken:
		return err // the test broke the stream: end it with the test's error
	default:
		return served
	}
}

func (p *fakePresence) ReadUserEvents(ctx context.Context, r *connect.Request[presencev1.ReadUserEventsRequest]) (*connect.Response[presencev1.ReadUserEventsResponse], error) {
	p.reads.Add(1)
	res, err := fanout.ReadUserEvents(ctx, p.log, r.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(res), nil
}
