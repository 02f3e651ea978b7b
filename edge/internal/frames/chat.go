package frames

import (
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
)

// Message statuses on the wire.
const (
	StatusSentToServer = "sent_to_server"
	StatusDelivered    = "delivered"
	StatusRead         = "read"
)

// Status names a message status for clients.
func Status(s chatv1.MessageStatus) string {
	switch s {
	case chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED:
		return StatusDelivered
	case chatv1.MessageStatus_MESSAGE_STATUS_READ:
		return StatusRead
	default:
		return StatusSentToServer
	}
}

// ChatInfo is one entry of CHAT_LIST (docs/protocol.md §6.1).
type ChatInfo struct {
	ChatID         string `json:"chatId"`
	OtherUserID    int64  `json:"otherUserId"`
	OtherUserName  string `json:"otherUserName"`
	OtherFirstName string `json:"otherFirstName"`
	OtherLastName  string `json:"otherLastName"`
	OtherPicture   string `json:"otherPicture"`
	IsOtherOnline  bool   `json:"isOtherOnline"`
	LastMessage    string `json:"lastMessage"`
	LastMessageTs  int64  `json:"lastMessageTs"`
	UnreadCount    int64  `json:"unreadCount"`
}

// ChatList is the payload of CHAT_LIST.
type ChatList struct {
	Chats []ChatInfo `json:"chats"`
}

// ChatListFrom converts GetChatList's answer.
func ChatListFrom(res *chatv1.GetChatListResponse) ChatList {
	chats := make([]ChatInfo, 0, len(res.GetChats()))
	for _, c := range res.GetChats() {
		chats = append(chats, ChatInfo{
			ChatID:         FormatID(c.GetChatId()),
			OtherUserID:    c.GetOtherUserId(),
			OtherUserName:  c.GetOtherUserName(),
			OtherFirstName: c.GetOtherFirstName(),
			OtherLastName:  c.GetOtherLastName(),
			OtherPicture:   c.GetOtherPicture(),
			IsOtherOnline:  c.GetIsOtherOnline(),
			LastMessage:    c.GetLastMessage(),
			LastMessageTs:  c.GetLastMessageTs(),
			UnreadCount:    c.GetUnreadCount(),
		})
	}
	return ChatList{Chats: chats}
}

// ChatMessage is a stored message (docs/protocol.md §6.2).
type ChatMessage struct {
	ID              string `json:"id"`
	ChatID          string `json:"chatId"`
	FromUserID      int64  `json:"fromUserId"`
	ToUserID        int64  `json:"toUserId"`
	Text            string `json:"text"`
	Timestamp       int64  `json:"timestamp"`
	Status          string `json:"status"`
	ClientMessageID string `json:"clientMessageId,omitempty"`
}

// ChatMessageFrom converts a stored message.
func ChatMessageFrom(m *chatv1.ChatMessage) ChatMessage {
	return ChatMessage{
		ID:              FormatID(m.GetId()),
		ChatID:          FormatID(m.GetChatId()),
		FromUserID:      m.GetFromUserId(),
		ToUserID:        m.GetToUserId(),
		Text:            m.GetText(),
		Timestamp:       m.GetTimestamp(),
		Status:          Status(m.GetStatus()),
		ClientMessageID: m.GetClientMessageId(),
	}
}

// ChatMessages is the payload of CHAT_MESSAGES.
type ChatMessages struct {
	ChatID   string        `json:"chatId"`
	Messages []ChatMessage `json:"messages"`
	HasMore  bool          `json:"hasMore"`
}

// ChatMessagesFrom converts GetMessages' answer.
func ChatMessagesFrom(res *chatv1.GetMessagesResponse) ChatMessages {
	msgs := make([]ChatMessage, 0, len(res.GetMessages()))
	for _, m := range res.GetMessages() {
		msgs = append(msgs, ChatMessageFrom(m))
	}
	return ChatMessages{ChatID: FormatID(res.GetChatId()), Messages: msgs, HasMore: res.GetHasMore()}
}

// SendAck is SERVER_ACK of SEND_CHAT_MESSAGE.
type SendAck struct {
	MessageID       string `json:"messageId"`
	ChatID          string `json:"chatId"`
	Timestamp       int64  `json:"timestamp"`
	Status          string `json:"status"`
	ClientMessageID string `json:"clientMessageId,omitempty"`
}

// SendAckFrom converts SendMessage's answer. The status is always sent_to_server: the ack
// answers the send, and later states arrive as MESSAGE_STATUS_UPDATE.
func SendAckFrom(res *chatv1.SendMessageResponse) SendAck {
	return SendAck{
		MessageID:       FormatID(res.GetMessageId()),
		ChatID:          FormatID(res.GetChatId()),
		Timestamp:       res.GetTimestamp(),
		Status:          StatusSentToServer,
		ClientMessageID: res.GetClientMessageId(),
	}
}

// ReadAck is SERVER_ACK of MESSAGES_READ.
type ReadAck struct {
	ChatID  string `json:"chatId"`
	Updated int64  `json:"updated"`
}

// UpdatedAck is SERVER_ACK of MARK_NOTIFICATION_READ.
type UpdatedAck struct {
	Updated int64 `json:"updated"`
}

// Empty is the {} payload of a plain SERVER_ACK.
type Empty struct{}

// NewChatMessage is the payload of NEW_CHAT_MESSAGE: the message plus the sender's userName
// (docs/protocol.md §5.2).
type NewChatMessage struct {
	ChatMessage
	FromUsername string `json:"fromUsername"`
}

// NewChatMessageFrom converts the chat event. Its status is sent_to_server, whatever the
// stored state by the time it is delivered.
func NewChatMessageFrom(ev *chatv1.NewChatMessageEvent) NewChatMessage {
	m := ChatMessageFrom(ev.GetMessage())
	m.Status = StatusSentToServer
	return NewChatMessage{ChatMessage: m, FromUsername: ev.GetFromUsername()}
}

// MessageStatusUpdate is the payload of MESSAGE_STATUS_UPDATE.
type MessageStatusUpdate struct {
	ChatID     string   `json:"chatId"`
	MessageIDs []string `json:"messageIds"`
	Status     string   `json:"status"`
}

// MessageStatusUpdateFrom converts the chat event.
func MessageStatusUpdateFrom(ev *chatv1.MessageStatusUpdateEvent) MessageStatusUpdate {
	ids := make([]string, 0, len(ev.GetMessageIds()))
	for _, id := range ev.GetMessageIds() {
		ids = append(ids, FormatID(id))
	}
	return MessageStatusUpdate{ChatID: FormatID(ev.GetChatId()), MessageIDs: ids, Status: Status(ev.GetStatus())}
}

// TypingIndicator is the payload of TYPING_INDICATOR.
type TypingIndicator struct {
	ChatID      string `json:"chatId"`
	UserID      int64  `json:"userId"`
	IsTyping    bool   `json:"isTyping"`
	ExpiresInMs int64  `json:"expiresInMs"`
}

// TypingIndicatorFrom converts the chat event.
func TypingIndicatorFrom(ev *chatv1.TypingIndicatorEvent) TypingIndicator {
	return TypingIndicator{
		ChatID:      FormatID(ev.GetChatId()),
		UserID:      ev.GetUserId(),
		IsTyping:    ev.GetIsTyping(),
		ExpiresInMs: ev.GetExpiresInMs(),
	}
}
