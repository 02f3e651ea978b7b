package router

import (
	"context"
	"strings"
	"unicode/utf8"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/frames"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
)

// Limits checked at the edge as well as in the chat service, so that obviously bad input
// costs no RPC; the service stays the authority.
const (
	maxTextRunes          = 2000
	maxClientMessageBytes = 64
	defaultPageLimit      = 50
	maxPageLimit          = 200
)

func handleGetChatList(ctx context.Context, r *Router, c Caller, _ []byte) (string, any, error) {
	res, err := r.cfg.Chat.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: c.UserID}))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeChatList, frames.ChatListFrom(res.Msg), nil
}

func handleSendChatMessage(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	o, ferr := frames.ParseObject(payload, "payload")
	if ferr != nil {
		return "", nil, ferr
	}
	toUserID, ferr := o.UserID("toUserId", false)
	if ferr != nil {
		return "", nil, ferr
	}
	chatID, ferr := o.ID("chatId", false)
	if ferr != nil {
		return "", nil, ferr
	}
	if toUserID == 0 && chatID == 0 {
		return "", nil, frames.Invalid("toUserId or chatId is required")
	}
	if toUserID == c.UserID {
		return "", nil, frames.Invalid("toUserId must not be yourself")
	}
	text, ferr := o.RequiredString("text")
	if ferr != nil {
		return "", nil, ferr
	}
	cmid, ferr := o.String("clientMessageId")
	if ferr != nil {
		return "", nil, ferr
	}
	if cmid != nil && (len(*cmid) == 0 || len(*cmid) > maxClientMessageBytes) {
		return "", nil, frames.Invalid("clientMessageId must be 1-%d bytes", maxClientMessageBytes)
	}
	trimmed := strings.TrimSpace(text)
	if trimmed == "" {
		return "", nil, frames.Invalid("text must not be empty")
	}
	if utf8.RuneCountInString(trimmed) > maxTextRunes {
		return "", nil, &frames.Error{Code: 413, Message: "text is longer than 2000 characters"}
	}
	req := &chatv1.SendMessageRequest{
		UserId: c.UserID, ToUserId: toUserID, ChatId: chatID, Text: text, OriginConnectionId: c.ConnID,
	}
	if cmid != nil {
		req.ClientMessageId = *cmid
	}
	res, err := r.cfg.Chat.SendMessage(ctx, connect.NewRequest(req))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeServerAck, frames.SendAckFrom(res.Msg), nil
}

func handleMessagesRead(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	o, ferr := frames.ParseObject(payload, "payload")
	if ferr != nil {
		return "", nil, ferr
	}
	chatID, ferr := o.ID("chatId", true)
	if ferr != nil {
		return "", nil, ferr
	}
	upTo, ferr := o.ID("upToMessageId", false)
	if ferr != nil {
		return "", nil, ferr
	}
	res, err := r.cfg.Chat.MarkRead(ctx, connect.NewRequest(&chatv1.MarkReadRequest{
		UserId: c.UserID, ChatId: chatID, UpToMessageId: upTo, OriginConnectionId: c.ConnID,
	}))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeServerAck, frames.ReadAck{ChatID: frames.FormatID(chatID), Updated: res.Msg.GetUpdated()}, nil
}

func handleTypingOn(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	return setTyping(ctx, r, c, payload, true)
}

func handleTypingOff(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	return setTyping(ctx, r, c, payload, false)
}

func setTyping(ctx context.Context, r *Router, c Caller, payload []byte, on bool) (string, any, error) {
	o, ferr := frames.ParseObject(payload, "payload")
	if ferr != nil {
		return "", nil, ferr
	}
	chatID, ferr := o.ID("chatId", true)
	if ferr != nil {
		return "", nil, ferr
	}
	_, err := r.cfg.Chat.SetTyping(ctx, connect.NewRequest(&chatv1.SetTypingRequest{
		UserId: c.UserID, ChatId: chatID, IsTyping: on, OriginConnectionId: c.ConnID,
	}))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeServerAck, frames.Empty{}, nil
}

func handleGetChatMessages(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	o, ferr := frames.ParseObject(payload, "payload")
	if ferr != nil {
		return "", nil, ferr
	}
	chatID, ferr := o.ID("chatId", true)
	if ferr != nil {
		return "", nil, ferr
	}
	before, ferr := o.ID("beforeId", false)
	if ferr != nil {
		return "", nil, ferr
	}
	after, ferr := o.ID("afterId", false)
	if ferr != nil {
		return "", nil, ferr
	}
	if before != 0 && after != 0 {
		return "", nil, frames.Invalid("beforeId and afterId cannot both be given")
	}
	limit, ferr := o.Int("limit", defaultPageLimit, 1, maxPageLimit)
	if ferr != nil {
		return "", nil, ferr
	}
	res, err := r.cfg.Chat.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{
		UserId: c.UserID, ChatId: chatID, BeforeId: before, AfterId: after, Limit: int32(limit),
	}))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeChatMessages, frames.ChatMessagesFrom(res.Msg), nil
}
