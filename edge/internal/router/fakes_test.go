package router

import (
	"context"
	"sync"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
)

// fakeChat answers the chat calls the router makes; unset functions panic through the
// embedded nil interface, which shows up as a test failure.
type fakeChat struct {
	chatv1connect.ChatServiceClient
	mu       sync.Mutex
	calls    int
	getList  func(*chatv1.GetChatListRequest) (*chatv1.GetChatListResponse, error)
	send     func(*chatv1.SendMessageRequest) (*chatv1.SendMessageResponse, error)
	markRead func(*chatv1.MarkReadRequest) (*chatv1.MarkReadResponse, error)
	typing   func(*chatv1.SetTypingRequest) (*chatv1.SetTypingResponse, error)
	messages func(*chatv1.GetMessagesRequest) (*chatv1.GetMessagesResponse, error)
}

func (f *fakeChat) count() {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
}

func (f *fakeChat) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func wrap[T any](m *T, err error) (*connect.Response[T], error) {
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(m), nil
}

func (f *fakeChat) GetChatList(_ context.Context, r *connect.Request[chatv1.GetChatListRequest]) (*connect.Response[chatv1.GetChatListResponse], error) {
	f.count()
	return wrap(f.getList(r.Msg))
}

func (f *fakeChat) SendMessage(_ context.Context, r *connect.Request[chatv1.SendMessageRequest]) (*connect.Response[chatv1.SendMessageResponse], error) {
	f.count()
	return wrap(f.send(r.Msg))
}

func (f *fakeChat) MarkRead(_ context.Context, r *connect.Request[chatv1.MarkReadRequest]) (*connect.Response[chatv1.MarkReadResponse], error) {
	f.count()
	return wrap(f.markRead(r.Msg))
}

func (f *fakeChat) SetTyping(_ context.Context, r *connect.Request[chatv1.SetTypingRequest]) (*connect.Response[chatv1.SetTypingResponse], error) {
	f.count()
	return wrap(f.typing(r.Msg))
}

func (f *fakeChat) GetMessages(ctx context.Context, r *connect.Request[chatv1.GetMessagesRequest]) (*connect.Response[chatv1.GetMessagesResponse], error) {
	f.count()
	return wrap(f.messages(r.Msg))
}

type fakeProfile struct {
	profilev1connect.ProfileServiceClient
	get    func(*profilev1.GetProfileRequest) (*profilev1.GetProfileResponse, error)
	update func(*profilev1.UpdateProfileRequest) (*profilev1.UpdateProfileResponse, error)
}

func (f *fakeProfile) GetProfile(_ context.Context, r *connect.Request[profilev1.GetProfileRequest]) (*connect.Response[profilev1.GetProfileResponse], error) {
	return wrap(f.get(r.Msg))
}

func (f *fakeProfile) UpdateProfile(_ context.Context, r *connect.Request[profilev1.UpdateProfileRequest]) (*connect.Response[profilev1.UpdateProfileResponse], error) {
	return wrap(f.update(r.Msg))
}

type fakeNotify struct {
	notifyv1connect.NotificationServiceClient
	list     func(*notifyv1.ListNotificationsRequest) (*notifyv1.ListNotificationsResponse, error)
	markRead func(*notifyv1.MarkReadRequest) (*notifyv1.MarkReadResponse, error)
}

func (f *fakeNotify) ListNotifications(_ context.Context, r *connect.Request[notifyv1.ListNotificationsRequest]) (*connect.Response[notifyv1.ListNotificationsResponse], error) {
	return wrap(f.list(r.Msg))
}

func (f *fakeNotify) MarkRead(_ context.Context, r *connect.Request[notifyv1.MarkReadRequest]) (*connect.Response[notifyv1.MarkReadResponse], error) {
	return wrap(f.markRead(r.Msg))
}
