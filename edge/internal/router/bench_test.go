package router

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
)

// BenchmarkHandle measures decode + route + reply per frame against an in-memory fake
// upstream (no network): the edge's own cost per client frame.
func BenchmarkHandle(b *testing.B) {
	chat := &fakeChat{
		send: func(r *chatv1.SendMessageRequest) (*chatv1.SendMessageResponse, error) {
			return &chatv1.SendMessageResponse{MessageId: 123456, ChatId: 42, Timestamp: 1700000000123, Status: chatv1.MessageStatus_MESSAGE_STATUS_SENT_TO_SERVER, ClientMessageId: r.ClientMessageId}, nil
		},
		getList: func(*chatv1.GetChatListRequest) (*chatv1.GetChatListResponse, error) {
			chats := make([]*chatv1.ChatInfo, 20)
			for i := range chats {
				chats[i] = &chatv1.ChatInfo{ChatId: int64(i + 1), OtherUserId: int64(i + 2), OtherUserName: "user", OtherFirstName: "First", OtherLastName: "Last", LastMessage: "hola, ¿qué tal?", LastMessageTs: 1700000000123}
			}
			return &chatv1.GetChatListResponse{Chats: chats}, nil
		},
	}
	var n atomic.Int64
	r := New(Config{Chat: chat, RequestTimeout: 20 * time.Second, NewPID: func() string { return fmt.Sprint(n.Add(1)) }})
	for _, bc := range []struct{ name, frame string }{
		{"SEND_CHAT_MESSAGE", `{"type":"SEND_CHAT_MESSAGE","pid":"c-17","payload":{"toUserId":2,"text":"hola, ¿cómo estás? 👋","clientMessageId":"b6f1c1f0-3c1e-4e4b-9d53-2f0c1d5c9a10"}}`},
		{"GET_CHAT_LIST_20", `{"type":"GET_CHAT_LIST","pid":"c-18"}`},
		{"invalid", `{"type":"SEND_CHAT_MESSAGE","pid":"c-19","payload":{"toUserId":"2","text":"x"}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(bc.frame)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Handle(ctx, caller, data)
			}
		})
	}
}
