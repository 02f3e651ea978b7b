package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/charla/charla/edge/internal/sendbatch"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

const me = int64(7)

var caller = Caller{UserID: me, ConnID: "edge1-c1"}

// fixture is a router over fakes that record the last request they saw.
type fixture struct {
	r       *Router
	chat    *fakeChat
	profile *fakeProfile
	notify  *fakeNotify
	lastReq last
}

// last holds the last request a fake saw.
type last struct {
	mu sync.Mutex
	v  any
}

func (l *last) Store(v any) { l.mu.Lock(); l.v = v; l.mu.Unlock() }

func (l *last) Load() any { l.mu.Lock(); defer l.mu.Unlock(); return l.v }

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{}
	rec := func(m any) { f.lastReq.Store(m) }
	f.chat = &fakeChat{
		getList: func(r *chatv1.GetChatListRequest) (*chatv1.GetChatListResponse, error) {
			rec(r)
			return &chatv1.GetChatListResponse{}, nil
		},
		send: func(r *chatv1.SendMessageRequest) (*chatv1.SendMessageResponse, error) {
			rec(r)
			return &chatv1.SendMessageResponse{MessageId: 11, ChatId: 3, Timestamp: 1700000000123, Status: chatv1.MessageStatus_MESSAGE_STATUS_SENT_TO_SERVER, ClientMessageId: r.ClientMessageId}, nil
		},
		markRead: func(r *chatv1.MarkReadRequest) (*chatv1.MarkReadResponse, error) {
			rec(r)
			return &chatv1.MarkReadResponse{ChatId: r.ChatId, Updated: 2}, nil
		},
		typing: func(r *chatv1.SetTypingRequest) (*chatv1.SetTypingResponse, error) {
			rec(r)
			return &chatv1.SetTypingResponse{}, nil
		},
		messages: func(r *chatv1.GetMessagesRequest) (*chatv1.GetMessagesResponse, error) {
			rec(r)
			return &chatv1.GetMessagesResponse{ChatId: r.ChatId}, nil
		},
	}
	f.profile = &fakeProfile{
		get: func(r *profilev1.GetProfileRequest) (*profilev1.GetProfileResponse, error) {
			rec(r)
			return &profilev1.GetProfileResponse{Profile: &profilev1.ProfileData{Id: r.UserId, UserName: "u"}}, nil
		},
		update: func(r *profilev1.UpdateProfileRequest) (*profilev1.UpdateProfileResponse, error) {
			rec(r)
			return &profilev1.UpdateProfileResponse{Profile: &profilev1.ProfileData{Id: r.UserId}}, nil
		},
	}
	f.notify = &fakeNotify{
		list: func(r *notifyv1.ListNotificationsRequest) (*notifyv1.ListNotificationsResponse, error) {
			rec(r)
			return &notifyv1.ListNotificationsResponse{UnreadCount: 4}, nil
		},
		markRead: func(r *notifyv1.MarkReadRequest) (*notifyv1.MarkReadResponse, error) {
			rec(r)
			return &notifyv1.MarkReadResponse{Updated: 1}, nil
		},
	}
	var n atomic.Int64
	f.r = New(Config{
		Chat: f.chat, Profile: f.profile, Notify: f.notify,
		RequestTimeout: 5 * time.Second,
		NewPID:         func() string { return fmt.Sprintf("gen-%d", n.Add(1)) },
	})
	return f
}

type reply struct {
	PID     string          `json:"pid"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func (f *fixture) do(t *testing.T, frame string) reply {
	t.Helper()
	out := f.r.Handle(context.Background(), caller, []byte(frame))
	var r reply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("reply %s is not JSON: %v", out, err)
	}
	return r
}

func errorCode(t *testing.T, r reply) int {
	t.Helper()
	if r.Type != "ERROR_NOTIFICATION" {
		return 0
	}
	var p struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatalf("error payload %s: %v", r.Payload, err)
	}
	if p.Message == "" {
		t.Errorf("error reply %s has no message", r.Payload)
	}
	return p.Code
}

func TestEnvelope(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("p", 64)
	tests := []struct {
		name     string
		frame    string
		wantPID  string // "gen" for a generated one
		wantType string
		wantCode int
	}{
		{"not json", `{"type":`, "gen", "ERROR_NOTIFICATION", 400},
		{"array", `[1,2]`, "gen", "ERROR_NOTIFICATION", 400},
		{"string", `"GET_CHAT_LIST"`, "gen", "ERROR_NOTIFICATION", 400},
		{"no pid", `{"type":"GET_CHAT_LIST"}`, "gen", "CHAT_LIST", 0},
		{"null pid", `{"type":"GET_CHAT_LIST","pid":null}`, "gen", "CHAT_LIST", 0},
		{"empty pid", `{"type":"GET_CHAT_LIST","pid":""}`, "gen", "CHAT_LIST", 0},
		{"pid echoed", `{"type":"GET_CHAT_LIST","pid":"c-1"}`, "c-1", "CHAT_LIST", 0},
		{"pid of 64 bytes", `{"type":"GET_CHAT_LIST","pid":"` + long + `"}`, long, "CHAT_LIST", 0},
		{"pid of 65 bytes", `{"type":"GET_CHAT_LIST","pid":"` + long + `x"}`, "gen", "ERROR_NOTIFICATION", 400},
		{"pid number", `{"type":"GET_CHAT_LIST","pid":5}`, "gen", "ERROR_NOTIFICATION", 400},
		{"pid object", `{"type":"GET_CHAT_LIST","pid":{}}`, "gen", "ERROR_NOTIFICATION", 400},
		{"missing type", `{"pid":"c-2"}`, "c-2", "ERROR_NOTIFICATION", 400},
		{"null type", `{"pid":"c-2","type":null}`, "c-2", "ERROR_NOTIFICATION", 400},
		{"type number", `{"pid":"c-3","type":5}`, "c-3", "ERROR_NOTIFICATION", 400},
		{"type wrong case", `{"pid":"c-4","type":"get_chat_list"}`, "c-4", "ERROR_NOTIFICATION", 400},
		{"unknown type", `{"pid":"c-5","type":"HELLO"}`, "c-5", "ERROR_NOTIFICATION", 400},
		{"server type", `{"pid":"c-5","type":"SERVER_ACK"}`, "c-5", "ERROR_NOTIFICATION", 400},
		{"payload ignored when none taken", `{"pid":"c-6","type":"GET_CHAT_LIST","payload":"x"}`, "c-6", "CHAT_LIST", 0},
		{"payload array on GET_MY_PROFILE ignored", `{"pid":"c-6","type":"GET_MY_PROFILE","payload":[1]}`, "c-6", "MY_PROFILE_DATA", 0},
		{"payload not object", `{"pid":"c-7","type":"GET_NOTIFICATIONS","payload":"x"}`, "c-7", "ERROR_NOTIFICATION", 400},
		{"payload null is empty", `{"pid":"c-8","type":"GET_NOTIFICATIONS","payload":null}`, "c-8", "NOTIFICATION_LIST", 0},
		{"payload absent is empty", `{"pid":"c-8","type":"GET_NOTIFICATIONS"}`, "c-8", "NOTIFICATION_LIST", 0},
		{"unknown keys ignored", `{"pid":"c-9","type":"GET_NOTIFICATIONS","payload":{"zzz":1},"extra":true}`, "c-9", "NOTIFICATION_LIST", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			got := f.do(t, tt.frame)
			if tt.wantPID == "gen" {
				if !strings.HasPrefix(got.PID, "gen-") {
					t.Errorf("pid: got %q, want a generated one", got.PID)
				}
			} else if got.PID != tt.wantPID {
				t.Errorf("pid: got %q, want %q", got.PID, tt.wantPID)
			}
			if got.Type != tt.wantType {
				t.Errorf("type: got %q, want %q (payload %s)", got.Type, tt.wantType, got.Payload)
			}
			if code := errorCode(t, got); code != tt.wantCode {
				t.Errorf("code: got %d, want %d", code, tt.wantCode)
			}
		})
	}
}

// TestValidation checks input rules: a bad frame gets its code and costs no RPC.
func TestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		typ      string
		payload  string
		wantCode int // 0: accepted and forwarded
	}{
		{"send ok", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":"hola"}`, 0},
		{"send by chat", "SEND_CHAT_MESSAGE", `{"chatId":"3","text":"hola"}`, 0},
		{"send both", "SEND_CHAT_MESSAGE", `{"chatId":"3","toUserId":2,"text":"hola","clientMessageId":"k1"}`, 0},
		{"send fromUserId ignored", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":"hola","fromUserId":99}`, 0},
		{"send no recipient", "SEND_CHAT_MESSAGE", `{"text":"hola"}`, 400},
		{"send to self", "SEND_CHAT_MESSAGE", `{"toUserId":7,"text":"hola"}`, 400},
		{"send user id string", "SEND_CHAT_MESSAGE", `{"toUserId":"2","text":"hola"}`, 400},
		{"send user id fraction", "SEND_CHAT_MESSAGE", `{"toUserId":2.5,"text":"hola"}`, 400},
		{"send user id 2.0", "SEND_CHAT_MESSAGE", `{"toUserId":2.0,"text":"hola"}`, 400},
		{"send user id exponent", "SEND_CHAT_MESSAGE", `{"toUserId":2e0,"text":"hola"}`, 400},
		{"send user id out of range", "SEND_CHAT_MESSAGE", `{"toUserId":9223372036854775808,"text":"hola"}`, 400},
		{"send user id max int64", "SEND_CHAT_MESSAGE", `{"toUserId":9223372036854775807,"text":"hola"}`, 0},
		{"send user id zero", "SEND_CHAT_MESSAGE", `{"toUserId":0,"text":"hola"}`, 400},
		{"send user id negative", "SEND_CHAT_MESSAGE", `{"toUserId":-2,"text":"hola"}`, 400},
		{"send user id null is absent", "SEND_CHAT_MESSAGE", `{"toUserId":null,"chatId":"3","text":"hola"}`, 0},
		{"send chat id number", "SEND_CHAT_MESSAGE", `{"chatId":3,"text":"hola"}`, 400},
		{"send chat id leading zero", "SEND_CHAT_MESSAGE", `{"chatId":"03","text":"hola"}`, 400},
		{"send chat id zero", "SEND_CHAT_MESSAGE", `{"chatId":"0","text":"hola"}`, 400},
		{"send chat id abc", "SEND_CHAT_MESSAGE", `{"chatId":"abc","text":"hola"}`, 400},
		{"send chat id signed", "SEND_CHAT_MESSAGE", `{"chatId":"+3","text":"hola"}`, 400},
		{"send chat id overflow", "SEND_CHAT_MESSAGE", `{"chatId":"9223372036854775808","text":"hola"}`, 400},
		{"send no text", "SEND_CHAT_MESSAGE", `{"toUserId":2}`, 400},
		{"send text null", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":null}`, 400},
		{"send text number", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":5}`, 400},
		{"send blank text", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":" \n\t "}`, 400},
		{"send text 2000", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":"` + strings.Repeat("ñ", 2000) + `"}`, 0},
		{"send text 2001", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":"` + strings.Repeat("ñ", 2001) + `"}`, 413},
		{"send text 2000 padded", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":"  ` + strings.Repeat("a", 2000) + `  "}`, 0},
		{"send 400 before 413", "SEND_CHAT_MESSAGE", `{"toUserId":"x","text":"` + strings.Repeat("a", 2001) + `"}`, 400},
		{"send cmid empty", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":"a","clientMessageId":""}`, 400},
		{"send cmid 65", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":"a","clientMessageId":"` + strings.Repeat("k", 65) + `"}`, 400},
		{"send cmid number", "SEND_CHAT_MESSAGE", `{"toUserId":2,"text":"a","clientMessageId":5}`, 400},
		{"read ok", "MESSAGES_READ", `{"chatId":"3"}`, 0},
		{"read up to", "MESSAGES_READ", `{"chatId":"3","upToMessageId":"10"}`, 0},
		{"read no chat", "MESSAGES_READ", `{}`, 400},
		{"read bad up to", "MESSAGES_READ", `{"chatId":"3","upToMessageId":"x"}`, 400},
		{"read up to number", "MESSAGES_READ", `{"chatId":"3","upToMessageId":10}`, 400},
		{"typing on", "TYPING_INDICATOR_ON", `{"chatId":"3"}`, 0},
		{"typing off", "TYPING_INDICATOR_OFF", `{"chatId":"3"}`, 0},
		{"typing no chat", "TYPING_INDICATOR_ON", `{}`, 400},
		{"typing chat 007", "TYPING_INDICATOR_OFF", `{"chatId":"007"}`, 400},
		{"user profile", "GET_USER_PROFILE", `{"userId":2}`, 0},
		{"user profile missing", "GET_USER_PROFILE", `{}`, 400},
		{"user profile string id", "GET_USER_PROFILE", `{"userId":"2"}`, 400},
		{"user profile exponent", "GET_USER_PROFILE", `{"userId":1e2}`, 400},
		{"notifications ok", "GET_NOTIFICATIONS", `{"limit":200,"before":"9","unreadOnly":true}`, 0},
		{"notifications limit 0", "GET_NOTIFICATIONS", `{"limit":0}`, 400},
		{"notifications limit 201", "GET_NOTIFICATIONS", `{"limit":201}`, 400},
		{"notifications limit fraction", "GET_NOTIFICATIONS", `{"limit":1.5}`, 400},
		{"notifications limit string", "GET_NOTIFICATIONS", `{"limit":"5"}`, 400},
		{"notifications bad before", "GET_NOTIFICATIONS", `{"before":"0"}`, 400},
		{"notifications unreadOnly string", "GET_NOTIFICATIONS", `{"unreadOnly":"yes"}`, 400},
		{"mark one", "MARK_NOTIFICATION_READ", `{"notificationId":"5"}`, 0},
		{"mark all", "MARK_NOTIFICATION_READ", `{"all":true}`, 0},
		{"mark one with all false", "MARK_NOTIFICATION_READ", `{"notificationId":"5","all":false}`, 0},
		{"mark both", "MARK_NOTIFICATION_READ", `{"notificationId":"5","all":true}`, 400},
		{"mark neither", "MARK_NOTIFICATION_READ", `{}`, 400},
		{"mark all false", "MARK_NOTIFICATION_READ", `{"all":false}`, 400},
		{"mark bad id", "MARK_NOTIFICATION_READ", `{"notificationId":"x"}`, 400},
		{"messages ok", "GET_CHAT_MESSAGES", `{"chatId":"3","beforeId":"10","limit":1}`, 0},
		{"messages after", "GET_CHAT_MESSAGES", `{"chatId":"3","afterId":"10"}`, 0},
		{"messages both cursors", "GET_CHAT_MESSAGES", `{"chatId":"3","beforeId":"10","afterId":"2"}`, 400},
		{"messages limit 0", "GET_CHAT_MESSAGES", `{"chatId":"3","limit":0}`, 400},
		{"messages limit 201", "GET_CHAT_MESSAGES", `{"chatId":"3","limit":201}`, 400},
		{"messages no chat", "GET_CHAT_MESSAGES", `{}`, 400},
		{"update ok", "UPDATE_MY_PROFILE", `{"firstName":"Ana","countryId":724,"phone":null}`, 0},
		{"update empty", "UPDATE_MY_PROFILE", `{}`, 0},
		{"update email", "UPDATE_MY_PROFILE", `{"email":"a@b.c"}`, 400},
		{"update id", "UPDATE_MY_PROFILE", `{"id":7}`, 400},
		{"update name wrong type", "UPDATE_MY_PROFILE", `{"firstName":5}`, 400},
		{"update country string", "UPDATE_MY_PROFILE", `{"countryId":"724"}`, 400},
		{"update curriculum", "UPDATE_MY_PROFILE", `{"curriculum":{"skills":[{"id":"4","name":"Go","level":5,"countryName":"x"}],"education":[]}}`, 0},
		{"update curriculum unknown section", "UPDATE_MY_PROFILE", `{"curriculum":{"hobbies":[]}}`, 400},
		{"update curriculum unknown item key", "UPDATE_MY_PROFILE", `{"curriculum":{"skills":[{"name":"Go","color":"red"}]}}`, 400},
		{"update curriculum section not array", "UPDATE_MY_PROFILE", `{"curriculum":{"skills":{}}}`, 400},
		{"update curriculum item not object", "UPDATE_MY_PROFILE", `{"curriculum":{"skills":[5]}}`, 400},
		{"update curriculum item null", "UPDATE_MY_PROFILE", `{"curriculum":{"skills":[null]}}`, 400},
		{"update curriculum bad item id", "UPDATE_MY_PROFILE", `{"curriculum":{"skills":[{"id":"x","name":"Go"}]}}`, 400},
		{"update curriculum level string", "UPDATE_MY_PROFILE", `{"curriculum":{"skills":[{"name":"Go","level":"5"}]}}`, 400},
		{"update curriculum not object", "UPDATE_MY_PROFILE", `{"curriculum":[]}`, 400},
		{"update payload not object", "UPDATE_MY_PROFILE", `[]`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			frame := fmt.Sprintf(`{"pid":"p1","type":%q,"payload":%s}`, tt.typ, tt.payload)
			got := f.do(t, frame)
			if got.PID != "p1" {
				t.Errorf("pid: got %q, want p1", got.PID)
			}
			if code := errorCode(t, got); code != tt.wantCode {
				t.Errorf("code: got %d, want %d (reply %s %s)", code, tt.wantCode, got.Type, got.Payload)
			}
			forwarded := f.lastReq.Load() != nil
			if forwarded != (tt.wantCode == 0) {
				t.Errorf("forwarded to the service: got %v, want %v", forwarded, tt.wantCode == 0)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame string
		want  any
	}{
		{"send", `{"type":"SEND_CHAT_MESSAGE","payload":{"toUserId":2,"chatId":"3","text":" hola ","clientMessageId":"k"}}`,
			&chatv1.SendMessageRequest{UserId: me, ToUserId: 2, ChatId: 3, Text: " hola ", ClientMessageId: "k", OriginConnectionId: caller.ConnID}},
		{"read", `{"type":"MESSAGES_READ","payload":{"chatId":"3","upToMessageId":"9"}}`,
			&chatv1.MarkReadRequest{UserId: me, ChatId: 3, UpToMessageId: 9, OriginConnectionId: caller.ConnID}},
		{"typing", `{"type":"TYPING_INDICATOR_ON","payload":{"chatId":"3"}}`,
			&chatv1.SetTypingRequest{UserId: me, ChatId: 3, IsTyping: true, OriginConnectionId: caller.ConnID}},
		{"messages default limit", `{"type":"GET_CHAT_MESSAGES","payload":{"chatId":"3","afterId":"4"}}`,
			&chatv1.GetMessagesRequest{UserId: me, ChatId: 3, AfterId: 4, Limit: 50}},
		{"my profile", `{"type":"GET_MY_PROFILE"}`, &profilev1.GetProfileRequest{ViewerId: me, UserId: me}},
		{"user profile", `{"type":"GET_USER_PROFILE","payload":{"userId":2}}`, &profilev1.GetProfileRequest{ViewerId: me, UserId: 2}},
		{"notifications", `{"type":"GET_NOTIFICATIONS","payload":{"before":"8","unreadOnly":true}}`,
			&notifyv1.ListNotificationsRequest{UserId: me, Limit: 50, BeforeId: 8, UnreadOnly: true}},
		{"mark all", `{"type":"MARK_NOTIFICATION_READ","payload":{"all":true}}`, &notifyv1.MarkReadRequest{UserId: me, All: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if r := f.do(t, tt.frame); r.Type == "ERROR_NOTIFICATION" {
				t.Fatalf("got error %s", r.Payload)
			}
			got := f.lastReq.Load()
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("request: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUpdateProfileRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.do(t, `{"type":"UPDATE_MY_PROFILE","payload":{"firstName":"Ana","summary":"","countryId":0,"lastName":null,
		"curriculum":{"education":[{"id":"4","institution":"UNAM","countryId":484,"countryName":"Mexico"},{"institution":"MIT"}],"skills":[],"projects":null}}}`)
	if r.Type != "MY_PROFILE_DATA" {
		t.Fatalf("type: got %s %s, want MY_PROFILE_DATA", r.Type, r.Payload)
	}
	got := f.lastReq.Load().(*profilev1.UpdateProfileRequest)
	if got.FirstName == nil || *got.FirstName != "Ana" || got.Summary == nil || *got.Summary != "" || got.LastName != nil || got.Phone != nil {
		t.Errorf("fields: got %v", got)
	}
	if got.CountryId == nil || *got.CountryId != 0 {
		t.Errorf("countryId: got %v, want 0 (clear)", got.CountryId)
	}
	if n := len(got.GetEducation().GetItems()); n != 2 || got.Education.Items[0].Id != 4 || got.Education.Items[1].Id != 0 || got.Education.Items[0].CountryId != 484 {
		t.Errorf("education: got %v", got.GetEducation())
	}
	if got.Skills == nil || len(got.Skills.Items) != 0 {
		t.Errorf("skills: got %v, want an empty section (clears it)", got.Skills)
	}
	if got.Projects != nil || got.Experience != nil {
		t.Errorf("projects, experience: got %v, %v, want nil (left as is)", got.Projects, got.Experience)
	}
}

func TestUpdateProfileNamesUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct{ payload, want string }{
		{`{"email":"x","userName":"y"}`, `email`},
		{`{"email":"x","userName":"y"}`, `userName`},
		{`{"curriculum":{"skills":[{"name":"Go","color":1}]}}`, `curriculum.skills[0].color`},
		{`{"curriculum":{"pets":[]}}`, `curriculum.pets`},
	}
	for _, tt := range tests {
		f := newFixture(t)
		r := f.do(t, `{"type":"UPDATE_MY_PROFILE","payload":`+tt.payload+`}`)
		if !strings.Contains(string(r.Payload), tt.want) {
			t.Errorf("%s: got %s, want a message naming %s", tt.payload, r.Payload, tt.want)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err         error
		wantCode    int
		wantMessage string // "" means the service's message must not leak
	}{
		{connect.NewError(connect.CodeInvalidArgument, errors.New("text: must not be empty")), 400, "text: must not be empty"},
		{connect.NewError(connect.CodeOutOfRange, errors.New("text: too long")), 413, "text: too long"},
		{connect.NewError(connect.CodeNotFound, errors.New("chat not found")), 404, "chat not found"},
		{connect.NewError(connect.CodePermissionDenied, errors.New("not a contact")), 403, "not a contact"},
		{connect.NewError(connect.CodeAlreadyExists, errors.New("clientMessageId reused")), 409, "clientMessageId reused"},
		{connect.NewError(connect.CodeResourceExhausted, errors.New("slow down")), 429, ""},
		{connect.NewError(connect.CodeUnavailable, errors.New("dial tcp 10.0.0.1: refused")), 503, ""},
		// The edge's own push-back (its queue of sends is full): 503 that says so.
		{connect.NewError(connect.CodeUnavailable, sendbatch.ErrBusy), 503, "server busy: try again shortly"},
		{connect.NewError(connect.CodeDeadlineExceeded, errors.New("ctx")), 504, ""},
		{connect.NewError(connect.CodeInternal, errors.New("SELECT * FROM ChatMessage failed")), 500, ""},
		{connect.NewError(connect.CodeUnauthenticated, errors.New("bad internal token")), 500, ""},
		{connect.NewError(connect.CodeUnknown, errors.New("panic: boom")), 500, ""},
		// A call whose connection broke: Connect reports a body cut short as unknown or as
		// an internal protocol error, yet the service is only away (PROTOCOL.md §3: 503).
		{connect.NewError(connect.CodeUnknown, fmt.Errorf("read message: %w", io.ErrUnexpectedEOF)), 503, ""},
		{connect.NewError(connect.CodeInternal, fmt.Errorf("protocol error: incomplete envelope: %w", io.ErrUnexpectedEOF)), 503, ""},
		{connect.NewError(connect.CodeUnknown, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), 503, ""},
		{errors.New("plain error"), 500, ""},
	}
	for _, tt := range tests {
		t.Run(connect.CodeOf(tt.err).String(), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.chat.getList = func(*chatv1.GetChatListRequest) (*chatv1.GetChatListResponse, error) { return nil, tt.err }
			r := f.do(t, `{"pid":"e","type":"GET_CHAT_LIST"}`)
			if code := errorCode(t, r); code != tt.wantCode {
				t.Errorf("code: got %d, want %d", code, tt.wantCode)
			}
			var p struct{ Message string }
			_ = json.Unmarshal(r.Payload, &p)
			if tt.wantMessage != "" && p.Message != tt.wantMessage {
				t.Errorf("message: got %q, want %q", p.Message, tt.wantMessage)
			}
			var ce *connect.Error
			if tt.wantMessage == "" && errors.As(tt.err, &ce) && strings.Contains(p.Message, ce.Message()) {
				t.Errorf("message %q leaks the service's %q", p.Message, ce.Message())
			}
			if r.PID != "e" {
				t.Errorf("pid: got %q, want e", r.PID)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	blocking := &fakeChat{}
	var n atomic.Int64
	r := New(Config{Chat: blockingChat{blocking}, RequestTimeout: 20 * time.Millisecond, NewPID: func() string { return fmt.Sprint(n.Add(1)) }})
	out := r.Handle(context.Background(), caller, []byte(`{"pid":"t","type":"GET_CHAT_LIST"}`))
	var got reply
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if code := errorCode(t, got); code != 504 {
		t.Errorf("code: got %d, want 504 (%s)", code, got.Payload)
	}
}

type blockingChat struct{ *fakeChat }

func (blockingChat) GetChatList(ctx context.Context, _ *connect.Request[chatv1.GetChatListRequest]) (*connect.Response[chatv1.GetChatListResponse], error) {
	<-ctx.Done()
	return nil, connect.NewError(connect.CodeDeadlineExceeded, ctx.Err())
}

func payloadOf(t *testing.T, r reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Payload, &m); err != nil {
		t.Fatalf("payload %s: %v", r.Payload, err)
	}
	return m
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("payload:\n got %s\nwant %s", got, want)
	}
}

func TestReplyShapes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Empty lists are [] and empty curricula have six [] sections.
	jsonEqual(t, f.do(t, `{"type":"GET_CHAT_LIST"}`).Payload, `{"chats":[]}`)
	jsonEqual(t, f.do(t, `{"type":"GET_NOTIFICATIONS"}`).Payload, `{"notifications":[],"unreadCount":4}`)
	jsonEqual(t, f.do(t, `{"type":"GET_CHAT_MESSAGES","payload":{"chatId":"3"}}`).Payload, `{"chatId":"3","messages":[],"hasMore":false}`)
	jsonEqual(t, f.do(t, `{"type":"TYPING_INDICATOR_OFF","payload":{"chatId":"3"}}`).Payload, `{}`)
	jsonEqual(t, f.do(t, `{"type":"MESSAGES_READ","payload":{"chatId":"3"}}`).Payload, `{"chatId":"3","updated":2}`)
	jsonEqual(t, f.do(t, `{"type":"MARK_NOTIFICATION_READ","payload":{"all":true}}`).Payload, `{"updated":1}`)
	jsonEqual(t, f.do(t, `{"type":"SEND_CHAT_MESSAGE","payload":{"toUserId":2,"text":"x"}}`).Payload,
		`{"messageId":"11","chatId":"3","timestamp":1700000000123,"status":"sent_to_server"}`)
	jsonEqual(t, f.do(t, `{"type":"SEND_CHAT_MESSAGE","payload":{"toUserId":2,"text":"x","clientMessageId":"k"}}`).Payload,
		`{"messageId":"11","chatId":"3","timestamp":1700000000123,"status":"sent_to_server","clientMessageId":"k"}`)
	jsonEqual(t, f.do(t, `{"type":"GET_USER_PROFILE","payload":{"userId":2}}`).Payload,
		`{"id":2,"userName":"u","firstName":"","lastName":"","email":"","phone":"","picture":"","summary":"","countryId":0,"countryName":"","isOnline":false,"lastSeen":0,
		  "curriculum":{"education":[],"experience":[],"certifications":[],"skills":[],"languages":[],"projects":[]}}`)

	f.chat.getList = func(*chatv1.GetChatListRequest) (*chatv1.GetChatListResponse, error) {
		return &chatv1.GetChatListResponse{Chats: []*chatv1.ChatInfo{{ChatId: 3, OtherUserId: 2, OtherUserName: "bob", OtherFirstName: "Bob", OtherLastName: "B", IsOtherOnline: true, LastMessage: "hi", LastMessageTs: 5, UnreadCount: 1}}}, nil
	}
	jsonEqual(t, f.do(t, `{"type":"GET_CHAT_LIST"}`).Payload,
		`{"chats":[{"chatId":"3","otherUserId":2,"otherUserName":"bob","otherFirstName":"Bob","otherLastName":"B","otherPicture":"","isOtherOnline":true,"lastMessage":"hi","lastMessageTs":5,"unreadCount":1}]}`)

	f.chat.messages = func(*chatv1.GetMessagesRequest) (*chatv1.GetMessagesResponse, error) {
		return &chatv1.GetMessagesResponse{ChatId: 3, HasMore: true, Messages: []*chatv1.ChatMessage{
			{Id: 10, ChatId: 3, FromUserId: 2, ToUserId: 7, Text: "a", Timestamp: 9, Status: chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED},
			{Id: 12, ChatId: 3, FromUserId: 7, ToUserId: 2, Text: "b", Timestamp: 10, Status: chatv1.MessageStatus_MESSAGE_STATUS_READ, ClientMessageId: "k"},
		}}, nil
	}
	jsonEqual(t, f.do(t, `{"type":"GET_CHAT_MESSAGES","payload":{"chatId":"3"}}`).Payload,
		`{"chatId":"3","hasMore":true,"messages":[
		  {"id":"10","chatId":"3","fromUserId":2,"toUserId":7,"text":"a","timestamp":9,"status":"delivered"},
		  {"id":"12","chatId":"3","fromUserId":7,"toUserId":2,"text":"b","timestamp":10,"status":"read","clientMessageId":"k"}]}`)

	payload, _ := structpb.NewStruct(map[string]any{"chatId": "3", "fromUserId": 2})
	f.notify.list = func(*notifyv1.ListNotificationsRequest) (*notifyv1.ListNotificationsResponse, error) {
		return &notifyv1.ListNotificationsResponse{UnreadCount: 1, Notifications: []*notifyv1.Notification{
			{Id: 5, UserId: me, Type: "new_message", Title: "t", Message: "m", CreatedAt: 1700000000123, Payload: payload},
			{Id: 4, UserId: me, Type: "x", Title: "t", CreatedAt: 1700000000000, IsRead: true},
		}}, nil
	}
	jsonEqual(t, f.do(t, `{"type":"GET_NOTIFICATIONS"}`).Payload,
		`{"unreadCount":1,"notifications":[
		  {"id":"5","type":"new_message","title":"t","message":"m","timestamp":"2023-11-14T22:13:20.123Z","isRead":false,"payload":{"chatId":"3","fromUserId":2}},
		  {"id":"4","type":"x","title":"t","message":"","timestamp":"2023-11-14T22:13:20.000Z","isRead":true,"payload":{}}]}`)

	f.profile.get = func(r *profilev1.GetProfileRequest) (*profilev1.GetProfileResponse, error) {
		return &profilev1.GetProfileResponse{Profile: &profilev1.ProfileData{Id: me, UserName: "ana", CountryId: 724, CountryName: "Spain", LastSeen: 3,
			Curriculum: &profilev1.Curriculum{
				Education:      []*profilev1.EducationItem{{Id: 1, Institution: "UCM", CountryId: 724, CountryName: "Spain"}},
				Experience:     []*profilev1.ExperienceItem{{Id: 2, Company: "C", Position: "P"}},
				Certifications: []*profilev1.CertificationItem{{Id: 3, Name: "N"}},
				Skills:         []*profilev1.SkillItem{{Id: 4, Name: "Go", Level: proto.Int32(5)}},
				Languages:      []*profilev1.LanguageItem{{Id: 5, Name: "es", Proficiency: "native"}},
				Projects:       []*profilev1.ProjectItem{{Id: 6, Name: "x", Url: "https://x"}},
			}}}, nil
	}
	got := payloadOf(t, f.do(t, `{"type":"GET_MY_PROFILE"}`))
	cv := got["curriculum"].(map[string]any)
	wantCV := `{"education":[{"id":"1","institution":"UCM","degree":"","fieldOfStudy":"","campus":"","startDate":"","graduationDate":"","countryId":724,"countryName":"Spain"}],
	  "experience":[{"id":"2","company":"C","position":"P","description":"","startDate":"","endDate":"","countryId":0,"countryName":""}],
	  "certifications":[{"id":"3","name":"N","issuer":"","issueDate":"","credentialUrl":""}],
	  "skills":[{"id":"4","name":"Go","level":5}],
	  "languages":[{"id":"5","name":"es","proficiency":"native"}],
	  "projects":[{"id":"6","name":"x","description":"","url":"https://x","startDate":"","endDate":""}]}`
	b, _ := json.Marshal(cv)
	jsonEqual(t, b, wantCV)
}

func TestRateLimitedReply(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct{ frame, wantPID string }{
		{`{"pid":"r1","type":"GET_CHAT_LIST"}`, "r1"},
		{`{"pid":"r2","type":"NOPE"}`, "r2"},
		{`garbage`, "gen"},
		{`{"pid":7}`, "gen"},
	} {
		var got reply
		if err := json.Unmarshal(f.r.HandleRateLimited([]byte(tt.frame)), &got); err != nil {
			t.Fatal(err)
		}
		if code := errorCode(t, got); code != 429 {
			t.Errorf("%s: code: got %d, want 429", tt.frame, code)
		}
		if (tt.wantPID == "gen" && !strings.HasPrefix(got.PID, "gen-")) || (tt.wantPID != "gen" && got.PID != tt.wantPID) {
			t.Errorf("%s: pid: got %q, want %s", tt.frame, got.PID, tt.wantPID)
		}
	}
	if f.lastReq.Load() != nil {
		t.Errorf("a rate-limited frame was executed")
	}
}
