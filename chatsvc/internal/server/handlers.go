package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/chatsvc/internal/store"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
)

// CreateContact makes an accepted pair (docs/protocol.md §7.3) and raises contact_added to both
// users when the pair is new or restored.
func (s *Server) CreateContact(ctx context.Context, req *connect.Request[chatv1.CreateContactRequest]) (*connect.Response[chatv1.CreateContactResponse], error) {
	a, b := req.Msg.GetUserId(), req.Msg.GetOtherUserId()
	chatID, err := s.createContact(ctx, a, b)
	if err != nil {
		return nil, s.toConnect(ctx, "create contact", a, err)
	}
	return connect.NewResponse(&chatv1.CreateContactResponse{ChatId: chatID}), nil
}

func (s *Server) createContact(ctx context.Context, a, b int64) (int64, error) {
	if err := checkPair(a, b); err != nil {
		return 0, err
	}
	c, found, err := s.store.ContactByPair(ctx, a, b)
	if err != nil {
		return 0, err
	}
	if found && c.Accepted {
		return c.ID, nil
	}
	names, err := s.users(ctx, a, b)
	if err != nil {
		return 0, err
	}
	for _, id := range []int64{a, b} {
		if _, ok := names[id]; !ok {
			return 0, chat.Errorf(chat.CodeNotFound, "user %d not found", id)
		}
	}
	chatID, added, err := s.store.AcceptContact(ctx, a, b, s.now().UnixMilli())
	if err != nil {
		return 0, err
	}
	if added {
		s.notifyContactAdded(ctx, a, b, names[b])
		s.notifyContactAdded(ctx, b, a, names[a])
	}
	return chatID, nil
}

func checkPair(a, b int64) error {
	if err := chat.CheckUserID("userId", a); err != nil {
		return err
	}
	if err := chat.CheckUserID("otherUserId", b); err != nil {
		return err
	}
	if a == b {
		return chat.Errorf(chat.CodeInvalid, "otherUserId: must differ from userId")
	}
	return nil
}

// notifyContactAdded tells user that other is now a contact. A failure is logged: the
// contact exists either way.
func (s *Server) notifyContactAdded(ctx context.Context, user, other int64, otherName string) {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	payload, err := structpb.NewStruct(map[string]any{"userId": other, "userName": otherName})
	if err != nil {
		s.log.ErrorContext(ctx, "build contact_added payload", "user_id", user, "err", err)
		return
	}
	_, err = s.notifier.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{
		UserId:  user,
		Type:    "contact_added",
		Title:   "New contact",
		Message: fmt.Sprintf("%s is now one of your contacts.", otherName),
		Payload: payload,
	}))
	if err != nil {
		s.log.WarnContext(ctx, "raise contact_added notification", "user_id", user, "err", err)
	}
}

// RemoveContact ends a contact; idempotent.
func (s *Server) RemoveContact(ctx context.Context, req *connect.Request[chatv1.RemoveContactRequest]) (*connect.Response[chatv1.RemoveContactResponse], error) {
	a, b := req.Msg.GetUserId(), req.Msg.GetOtherUserId()
	if err := s.removeContact(ctx, a, b); err != nil {
		return nil, s.toConnect(ctx, "remove contact", a, err)
	}
	return connect.NewResponse(&chatv1.RemoveContactResponse{}), nil
}

func (s *Server) removeContact(ctx context.Context, a, b int64) error {
	if err := checkPair(a, b); err != nil {
		return err
	}
	changed, err := s.store.RemoveContact(ctx, a, b)
	if err != nil {
		return err
	}
	c, found, err := s.store.ContactByPair(ctx, a, b)
	if err != nil {
		return err
	}
	if !found {
		// Never in contact: fine, unless a user does not exist (docs/protocol.md §7.3).
		names, err := s.users(ctx, a, b)
		if err != nil {
			return err
		}
		for _, id := range []int64{a, b} {
			if _, ok := names[id]; !ok {
				return chat.Errorf(chat.CodeNotFound, "user %d not found", id)
			}
		}
		return nil
	}
	if changed {
		// Typing between them ends with the contact.
		for _, u := range []int64{a, b} {
			if relay, other := s.typing.Off(c.ID, u); relay {
				s.publishTyping(ctx, c.ID, u, other, false)
			}
		}
	}
	return nil
}

// ListContactIds returns the accepted contacts of many users with one query.
func (s *Server) ListContactIds(ctx context.Context, req *connect.Request[chatv1.ListContactIdsRequest]) (*connect.Response[chatv1.ListContactIdsResponse], error) {
	users := req.Msg.GetUserIds()
	if len(users) > 10_000 {
		return nil, s.toConnect(ctx, "list contact ids", 0, chat.Errorf(chat.CodeInvalid, "userIds: at most 10000"))
	}
	distinct := slices.Clone(users)
	slices.Sort(distinct)
	distinct = slices.Compact(distinct)
	byUser, err := s.store.ContactIDs(ctx, distinct)
	if err != nil {
		return nil, s.toConnect(ctx, "list contact ids", 0, err)
	}
	res := &chatv1.ListContactIdsResponse{Contacts: make([]*chatv1.UserContacts, 0, len(users))}
	for _, u := range users {
		ids := byUser[u]
		if ids == nil {
			ids = []int64{}
		}
		res.Contacts = append(res.Contacts, &chatv1.UserContacts{UserId: u, ContactIds: ids})
	}
	return connect.NewResponse(res), nil
}

// GetChatList lists the caller's accepted contacts as chats with one query, one profile
// call and one presence call, whatever the number of chats.
func (s *Server) GetChatList(ctx context.Context, req *connect.Request[chatv1.GetChatListRequest]) (*connect.Response[chatv1.GetChatListResponse], error) {
	user := req.Msg.GetUserId()
	chats, err := s.chatList(ctx, user)
	if err != nil {
		return nil, s.toConnect(ctx, "get chat list", user, err)
	}
	return connect.NewResponse(&chatv1.GetChatListResponse{Chats: chats}), nil
}

func (s *Server) chatList(ctx context.Context, user int64) ([]*chatv1.ChatInfo, error) {
	if err := chat.CheckUserID("userId", user); err != nil {
		return nil, err
	}
	sums, err := s.store.ChatSummaries(ctx, user)
	if err != nil {
		return nil, err
	}
	others := make([]int64, len(sums))
	for i, c := range sums {
		others[i] = c.OtherUserID
	}
	// The caller rides along in the same call, to answer not_found for an unknown user.
	found, err := s.getUsers(ctx, append([]int64{user}, others...))
	if err != nil {
		return nil, err
	}
	out := make([]*chatv1.ChatInfo, 0, len(sums))
	profiles := make(map[int64]int, len(found))
	for i, u := range found {
		profiles[u.GetId()] = i
	}
	if _, ok := profiles[user]; !ok {
		return nil, chat.ErrUserNotFound
	}
	online := map[int64]bool{}
	if len(others) > 0 {
		res, err := s.presence.GetPresence(ctx, connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: others}))
		if err != nil {
			// The list is still useful without online flags; show everyone offline.
			s.log.WarnContext(ctx, "get presence for chat list", "user_id", user, "err", err)
		} else {
			for _, p := range res.Msg.GetPresences() {
				online[p.GetUserId()] = p.GetIsOnline()
			}
		}
	}
	for _, c := range sums {
		info := &chatv1.ChatInfo{
			ChatId:        c.ChatID,
			OtherUserId:   c.OtherUserID,
			IsOtherOnline: online[c.OtherUserID],
			LastMessage:   c.LastMessage,
			LastMessageTs: c.LastMessageTs,
			UnreadCount:   c.UnreadCount,
		}
		if i, ok := profiles[c.OtherUserID]; ok {
			p := found[i]
			info.OtherUserName = p.GetUserName()
			info.OtherFirstName = p.GetFirstName()
			info.OtherLastName = p.GetLastName()
			info.OtherPicture = p.GetPicture()
		}
		out = append(out, info)
	}
	return out, nil
}

// SendMessage stores a message and pushes it (docs/protocol.md §4.3).
func (s *Server) SendMessage(ctx context.Context, req *connect.Request[chatv1.SendMessageRequest]) (*connect.Response[chatv1.SendMessageResponse], error) {
	m := req.Msg
	out := s.sendAll(ctx, []*chatv1.SendMessageRequest{m})[0]
	if out.err != nil {
		return nil, s.toConnect(ctx, "send message", m.GetUserId(), out.err)
	}
	return connect.NewResponse(out.res), nil
}

// SendMessages handles each message as SendMessage would and answers each in its
// position; the messages are handled together (sendAll).
func (s *Server) SendMessages(ctx context.Context, req *connect.Request[chatv1.SendMessagesRequest]) (*connect.Response[chatv1.SendMessagesResponse], error) {
	msgs := req.Msg.GetMessages()
	if len(msgs) == 0 || len(msgs) > chat.MaxSendBatch {
		err := chat.Errorf(chat.CodeInvalid, "messages: 1 to %d, got %d", chat.MaxSendBatch, len(msgs))
		return nil, s.toConnect(ctx, "send messages", 0, err)
	}
	results := make([]*chatv1.SendMessageResult, len(msgs))
	for i, out := range s.sendAll(ctx, msgs) {
		if out.err != nil {
			var ce *connect.Error
			if !errors.As(s.toConnect(ctx, "send message", msgs[i].GetUserId(), out.err), &ce) {
				ce = connect.NewError(connect.CodeInternal, errors.New("internal error"))
			}
			results[i] = &chatv1.SendMessageResult{Result: &chatv1.SendMessageResult_Error{
				Error: &chatv1.SendMessageError{Code: uint32(ce.Code()), Message: ce.Message()},
			}}
			continue
		}
		results[i] = &chatv1.SendMessageResult{Result: &chatv1.SendMessageResult_Sent{Sent: out.res}}
	}
	return connect.NewResponse(&chatv1.SendMessagesResponse{Results: results}), nil
}

func ack(m chat.Message) *chatv1.SendMessageResponse {
	return &chatv1.SendMessageResponse{
		MessageId:       m.ID,
		ChatId:          m.ChatID,
		Timestamp:       m.CreatedAt,
		Status:          chatv1.MessageStatus_MESSAGE_STATUS_SENT_TO_SERVER,
		ClientMessageId: m.ClientMessageID,
	}
}

// sendOutcome is one message's answer: the ack, or the error a lone SendMessage would give.
type sendOutcome struct {
	res *chatv1.SendMessageResponse
	err error
}

// draft is a message whose input is valid and whose chat is resolved (found false: the
// users never were contacts), before its users' names are known.
type draft struct {
	from, to int64
	chat     chat.Contact
	found    bool
	text     string
	cid      string
	origin   string
}

// sendAll stores and announces messages, each with the outcome SendMessage would give it
// alone, in their order. They are handled as one batch, by this goroutine: the users they
// name that the cache lacks come in one call to the profile service, their inserts go to
// the writer back to back (one group commit, or as few as its MaxBatch allows) and their
// events are published in order. Only the new_message notifications of offline
// recipients (a call to the notification service each) run concurrently; sendAll returns
// after them, as a lone send did.
func (s *Server) sendAll(ctx context.Context, reqs []*chatv1.SendMessageRequest) []sendOutcome {
	out := make([]sendOutcome, len(reqs))
	drafts := make([]draft, len(reqs))
	ids := make([]int64, 0, 2*len(reqs))
	for i, m := range reqs {
		drafts[i], out[i].err = s.resolve(ctx, m)
		if out[i].err == nil {
			ids = append(ids, drafts[i].from, drafts[i].to)
		}
	}
	// Names the cache holds are kept even when fetching the others fails: only the
	// messages that need a missing one fail, as each would alone.
	names, namesErr := s.users(ctx, ids...)

	var (
		queued []int // positions in reqs of the messages given to the writer
		msgs   []chat.Message
	)
	for i, d := range drafts {
		if out[i].err != nil {
			continue
		}
		_, fromOK := names[d.from]
		_, toOK := names[d.to]
		switch {
		case namesErr != nil && (!fromOK || !toOK):
			out[i].err = namesErr
		case !toOK:
			out[i].err = chat.Errorf(chat.CodeNotFound, "toUserId: user %d not found", d.to)
		case !fromOK:
			out[i].err = chat.Errorf(chat.CodeNotFound, "userId: user %d not found", d.from)
		case !d.found:
			out[i].res, out[i].err = s.notContact(ctx, d)
		default:
			queued = append(queued, i)
			msgs = append(msgs, chat.Message{
				ChatID: d.chat.ID, FromUserID: d.from, ToUserID: d.to, Text: d.text, ClientMessageID: d.cid,
			})
		}
	}
	if len(msgs) == 0 {
		return out
	}

	inserted, errs := s.writer.InsertMany(ctx, msgs)
	// Stored messages are announced even if the caller has gone since.
	announceCtx := context.WithoutCancel(ctx)
	var notifying sync.WaitGroup
	for j, i := range queued {
		d, ins := drafts[i], inserted[j]
		switch {
		case errs[j] != nil:
			out[i].err = errs[j]
		case ins.Duplicate:
			// A repeat (acknowledged even if the contact is gone since), or a concurrent
			// retry that stored it first. It is announced again, under the message's key:
			// the attempt that stored it may have died (or lost its database connection)
			// before announcing it, and then this is the only announcement; when it did
			// announce, the event log keeps that one and this adds nothing.
			out[i].res, out[i].err = repeat(ins.Message, true, d.chat.ID, d.text)
			if out[i].err == nil {
				s.announce(announceCtx, ins.Message, names[d.from], d.origin, &notifying)
			}
		case ins.Refused:
			out[i].err = chat.ErrNotContact
		default:
			s.announce(announceCtx, ins.Message, names[d.from], d.origin, &notifying)
			out[i].res = ack(ins.Message)
		}
	}
	notifying.Wait()
	return out
}

// resolve checks a message's input and finds its chat: the chat named, or the one between
// sender and recipient (found false when they never were contacts).
func (s *Server) resolve(ctx context.Context, m *chatv1.SendMessageRequest) (draft, error) {
	d := draft{from: m.GetUserId(), to: m.GetToUserId(), cid: m.GetClientMessageId(), origin: m.GetOriginConnectionId()}
	chatID := m.GetChatId()
	// Input first.
	if err := chat.CheckUserID("userId", d.from); err != nil {
		return d, err
	}
	if d.to < 0 {
		return d, chat.Errorf(chat.CodeInvalid, "toUserId: must be a positive id")
	}
	if chatID < 0 {
		return d, chat.Errorf(chat.CodeInvalid, "chatId: must be a positive id")
	}
	if d.to == 0 && chatID == 0 {
		return d, chat.Errorf(chat.CodeInvalid, "toUserId: required (or chatId)")
	}
	if d.to == d.from {
		return d, chat.Errorf(chat.CodeInvalid, "toUserId: cannot send a message to oneself")
	}
	var err error
	if d.text, err = chat.NormalizeText(m.GetText()); err != nil {
		return d, err
	}
	if err := chat.CheckClientMessageID(d.cid); err != nil {
		return d, err
	}

	// Existence: the chat, or the recipient.
	// The chat's users come from a cache (they never change); whether the contact is
	// still accepted is checked by the writer, in the transaction that stores the message.
	switch {
	case chatID > 0 && d.to > 0:
		// Both given: naming one chat is an input rule (400), checked before whether
		// chatId exists or is the caller's (PROTOCOL.md §3, §4). Users who never were
		// contacts have no chat, so no chatId can be theirs.
		if d.chat, d.found, err = s.chatBetween(ctx, d.from, d.to); err != nil {
			return d, err
		}
		if !d.found || d.chat.ID != chatID {
			return d, chat.Errorf(chat.CodeInvalid, "chatId: not the chat with toUserId")
		}
	case chatID > 0:
		if d.chat, err = s.memberChat(ctx, d.from, chatID); err != nil {
			return d, err
		}
		d.found = true
		d.to = d.chat.Other(d.from)
	default:
		if d.chat, d.found, err = s.chatBetween(ctx, d.from, d.to); err != nil {
			return d, err
		}
	}
	return d, nil
}

// notContact answers a message between users who never were contacts: 403, or 409 when
// its clientMessageId is taken (a reused clientMessageId is a conflict rather than a 403).
func (s *Server) notContact(ctx context.Context, d draft) (*chatv1.SendMessageResponse, error) {
	if d.cid != "" {
		orig, dup, err := s.store.MessageByClientID(ctx, d.from, d.cid)
		if err != nil {
			return nil, err
		}
		if dup {
			return repeat(orig, false, 0, d.text)
		}
	}
	return nil, chat.ErrNotContact
}

// repeat answers a reused clientMessageId: the original when chat and text match.
func repeat(orig chat.Message, haveChat bool, chatID int64, text string) (*chatv1.SendMessageResponse, error) {
	if !haveChat || orig.ChatID != chatID || orig.Text != text {
		return nil, chat.Errorf(chat.CodeConflict, "clientMessageId: already used for another message")
	}
	return ack(orig), nil
}

// announce publishes a stored message, raises new_message when the recipient has no
// connection (on notifying: a call to the notification service, which the caller waits
// for), and ends the sender's typing indicator in that chat.
func (s *Server) announce(ctx context.Context, msg chat.Message, fromName, origin string, notifying *sync.WaitGroup) {
	ev := &chatv1.StreamEventsResponse{
		ExcludeConnectionId: origin,
		Event: &chatv1.StreamEventsResponse_NewChatMessage{NewChatMessage: &chatv1.NewChatMessageEvent{
			Message:      toProto(msg),
			FromUsername: fromName,
		}},
	}
	unrouted := s.publishOnce(ctx, messageKey(msg.ID), ev, msg.ToUserID, msg.FromUserID)
	if slices.Contains(unrouted, msg.ToUserID) {
		notifying.Go(func() { s.notifyNewMessage(ctx, msg, fromName) })
	}
	if relay, other := s.typing.Off(msg.ChatID, msg.FromUserID); relay {
		s.publishTyping(ctx, msg.ChatID, msg.FromUserID, other, false)
	}
}

// messageKey is the idempotency key of a message's NEW_CHAT_MESSAGE (fanout.PublishOnce).
func messageKey(id int64) string { return "chat.msg." + strconv.FormatInt(id, 10) }

// notifyNewMessage raises new_message for an offline recipient, once per chat until the
// recipient reads it (the ChatNotified mark).
func (s *Server) notifyNewMessage(ctx context.Context, msg chat.Message, fromName string) {
	first, err := s.store.MarkNotified(ctx, msg.ChatID, msg.ToUserID)
	if err != nil {
		s.log.WarnContext(ctx, "mark new_message notified", "user_id", msg.ToUserID, "err", err)
		return
	}
	if !first {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	payload, err := structpb.NewStruct(map[string]any{
		"chatId":     strconv.FormatInt(msg.ChatID, 10),
		"fromUserId": msg.FromUserID,
	})
	if err == nil {
		_, err = s.notifier.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{
			UserId:  msg.ToUserID,
			Type:    "new_message",
			Title:   "New message",
			Message: fmt.Sprintf("%s sent you a message.", fromName),
			Payload: payload,
		}))
	}
	if err != nil {
		s.log.WarnContext(ctx, "raise new_message notification", "user_id", msg.ToUserID, "err", err)
		// Let the next message try again.
		if err := s.store.ClearNotified(context.WithoutCancel(ctx), msg.ChatID, msg.ToUserID); err != nil {
			s.log.WarnContext(ctx, "clear new_message mark", "user_id", msg.ToUserID, "err", err)
		}
	}
}

func toProto(m chat.Message) *chatv1.ChatMessage {
	return &chatv1.ChatMessage{
		Id:              m.ID,
		ChatId:          m.ChatID,
		FromUserId:      m.FromUserID,
		ToUserId:        m.ToUserID,
		Text:            m.Text,
		Timestamp:       m.CreatedAt,
		Status:          chatv1.MessageStatus(m.Status),
		ClientMessageId: m.ClientMessageID,
	}
}

// MarkRead marks messages to the caller in a chat as read (MESSAGES_READ).
func (s *Server) MarkRead(ctx context.Context, req *connect.Request[chatv1.MarkReadRequest]) (*connect.Response[chatv1.MarkReadResponse], error) {
	m := req.Msg
	n, err := s.markRead(ctx, m)
	if err != nil {
		return nil, s.toConnect(ctx, "mark read", m.GetUserId(), err)
	}
	return connect.NewResponse(&chatv1.MarkReadResponse{ChatId: m.GetChatId(), Updated: n}), nil
}

func (s *Server) markRead(ctx context.Context, m *chatv1.MarkReadRequest) (int64, error) {
	user, chatID, upTo := m.GetUserId(), m.GetChatId(), m.GetUpToMessageId()
	if err := chat.CheckUserID("userId", user); err != nil {
		return 0, err
	}
	if err := checkChatID(chatID); err != nil {
		return 0, err
	}
	if upTo < 0 {
		return 0, chat.Errorf(chat.CodeInvalid, "upToMessageId: must be a positive id")
	}
	c, err := s.memberChat(ctx, user, chatID)
	if err != nil {
		return 0, err
	}
	ids, err := s.store.MarkRead(ctx, user, chatID, upTo)
	if err != nil {
		return 0, err
	}
	if len(ids) > 0 {
		s.publish(ctx, statusEvent(chatID, ids, chat.StatusRead, m.GetOriginConnectionId()), c.Other(user), user)
	}
	return int64(len(ids)), nil
}

func statusEvent(chatID int64, ids []int64, st chat.Status, exclude string) *chatv1.StreamEventsResponse {
	return &chatv1.StreamEventsResponse{
		ExcludeConnectionId: exclude,
		Event: &chatv1.StreamEventsResponse_MessageStatusUpdate{MessageStatusUpdate: &chatv1.MessageStatusUpdateEvent{
			ChatId:     chatID,
			MessageIds: ids,
			Status:     chatv1.MessageStatus(st),
		}},
	}
}

// MarkDelivered records messages written to recipients' connections: the request's own
// user_id and message_ids, and its receipts, all queued to the writer together so they
// share a group commit.
func (s *Server) MarkDelivered(ctx context.Context, req *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error) {
	receipts, err := deliveryReceipts(req.Msg)
	if err != nil {
		return nil, s.toConnect(ctx, "mark delivered", req.Msg.GetUserId(), err)
	}
	changed, err := s.deliverMany(ctx, receipts)
	if err != nil {
		return nil, s.toConnect(ctx, "mark delivered", req.Msg.GetUserId(), err)
	}
	var n int64
	for _, ids := range changed {
		n += int64(len(ids))
	}
	return connect.NewResponse(&chatv1.MarkDeliveredResponse{Updated: n}), nil
}

// deliveryReceipts checks a MarkDelivered request and returns its receipts, each one's ids
// ascending without repeats. The request's own user_id and message_ids are the first
// receipt unless user_id is 0 and receipts are given.
func deliveryReceipts(m *chatv1.MarkDeliveredRequest) ([]store.Receipt, error) {
	if len(m.GetReceipts()) > chat.MaxDeliveryReceipts {
		return nil, chat.Errorf(chat.CodeInvalid, "receipts: at most %d", chat.MaxDeliveryReceipts)
	}
	out := make([]store.Receipt, 0, 1+len(m.GetReceipts()))
	total := 0
	add := func(field string, user int64, ids []int64) error {
		if err := chat.CheckUserID(field+"userId", user); err != nil {
			return err
		}
		if len(ids) > chat.MaxDeliveredIDs {
			return chat.Errorf(chat.CodeInvalid, "%smessageIds: at most %d", field, chat.MaxDeliveredIDs)
		}
		if total += len(ids); total > chat.MaxDeliveredPerCall {
			return chat.Errorf(chat.CodeInvalid, "receipts: at most %d message ids in all", chat.MaxDeliveredPerCall)
		}
		for _, id := range ids {
			if id <= 0 {
				return chat.Errorf(chat.CodeInvalid, "%smessageIds: must be positive ids", field)
			}
		}
		ids = slices.Clone(ids)
		slices.Sort(ids)
		out = append(out, store.Receipt{Recipient: user, IDs: slices.Compact(ids)})
		return nil
	}
	if m.GetUserId() != 0 || len(m.GetReceipts()) == 0 {
		if err := add("", m.GetUserId(), m.GetMessageIds()); err != nil {
			return nil, err
		}
	}
	for i, r := range m.GetReceipts() {
		if err := add(fmt.Sprintf("receipts[%d].", i), r.GetUserId(), r.GetMessageIds()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deliverMany moves the receipts' messages to delivered through the writer (queued
// together, so they share group commits: one UPDATE for all the receipts of a batch),
// announces the status updates (one event per chat and sender) and returns, per receipt,
// the ids that changed. A receipt that failed does not undo the others; the first error
// is returned.
func (s *Server) deliverMany(ctx context.Context, receipts []store.Receipt) ([][]int64, error) {
	outs, errs := s.writer.DeliverMany(ctx, receipts)
	changed := make([][]int64, len(receipts))
	var first error
	for i, d := range outs {
		if errs[i] != nil {
			if first == nil {
				first = fmt.Errorf("receipt of user %d: %w", receipts[i].Recipient, errs[i])
			}
			continue
		}
		for _, g := range d.Announce {
			s.publish(ctx, statusEvent(g.ChatID, g.IDs, chat.StatusDelivered, ""), g.FromUserID)
		}
		changed[i] = d.Changed
	}
	return changed, first
}

// deliver is deliverMany for one recipient: the ids of user that changed.
func (s *Server) deliver(ctx context.Context, user int64, ids []int64) ([]int64, error) {
	changed, err := s.deliverMany(ctx, []store.Receipt{{Recipient: user, IDs: ids}})
	return changed[0], err
}

// SetTyping relays TYPING_INDICATOR_ON/OFF to the other participant (docs/protocol.md §5.4).
func (s *Server) SetTyping(ctx context.Context, req *connect.Request[chatv1.SetTypingRequest]) (*connect.Response[chatv1.SetTypingResponse], error) {
	m := req.Msg
	if err := s.setTyping(ctx, m.GetUserId(), m.GetChatId(), m.GetIsTyping()); err != nil {
		return nil, s.toConnect(ctx, "set typing", m.GetUserId(), err)
	}
	return connect.NewResponse(&chatv1.SetTypingResponse{}), nil
}

func (s *Server) setTyping(ctx context.Context, user, chatID int64, on bool) error {
	if err := chat.CheckUserID("userId", user); err != nil {
		return err
	}
	if err := checkChatID(chatID); err != nil {
		return err
	}
	c, err := s.ownChat(ctx, user, chatID)
	if err != nil {
		return err
	}
	if !c.Accepted {
		return chat.ErrNotContact
	}
	if on {
		if s.typing.On(chatID, user, c.Other(user)) {
			s.publishTyping(ctx, chatID, user, c.Other(user), true)
		}
		return nil
	}
	if relay, other := s.typing.Off(chatID, user); relay {
		s.publishTyping(ctx, chatID, user, other, false)
	}
	return nil
}

// publishTyping sends TYPING_INDICATOR to the other participant only: the typer's own
// connections get nothing.
func (s *Server) publishTyping(ctx context.Context, chatID, user, other int64, on bool) {
	var expires int64
	if on {
		expires = chat.TypingExpiresAfterMs
	}
	s.publish(ctx, &chatv1.StreamEventsResponse{
		Event: &chatv1.StreamEventsResponse_TypingIndicator{TypingIndicator: &chatv1.TypingIndicatorEvent{
			ChatId: chatID, UserId: user, IsTyping: on, ExpiresInMs: expires,
		}},
	}, other)
}

// StopTyping relays OFF for every typing indicator of a user whose last connection closed.
func (s *Server) StopTyping(ctx context.Context, req *connect.Request[chatv1.StopTypingRequest]) (*connect.Response[chatv1.StopTypingResponse], error) {
	user := req.Msg.GetUserId()
	if err := chat.CheckUserID("userId", user); err != nil {
		return nil, s.toConnect(ctx, "stop typing", user, err)
	}
	for _, e := range s.typing.StopUser(user) {
		s.publishTyping(ctx, e.ChatID, user, e.Other, false)
	}
	return connect.NewResponse(&chatv1.StopTypingResponse{}), nil
}

// GetMessages returns one page of history (GET_CHAT_MESSAGES) and marks the fetched
// messages to the caller delivered.
func (s *Server) GetMessages(ctx context.Context, req *connect.Request[chatv1.GetMessagesRequest]) (*connect.Response[chatv1.GetMessagesResponse], error) {
	m := req.Msg
	res, err := s.getMessages(ctx, m)
	if err != nil {
		return nil, s.toConnect(ctx, "get messages", m.GetUserId(), err)
	}
	return connect.NewResponse(res), nil
}

func (s *Server) getMessages(ctx context.Context, m *chatv1.GetMessagesRequest) (*chatv1.GetMessagesResponse, error) {
	user, chatID, before, after := m.GetUserId(), m.GetChatId(), m.GetBeforeId(), m.GetAfterId()
	if err := chat.CheckUserID("userId", user); err != nil {
		return nil, err
	}
	if err := checkChatID(chatID); err != nil {
		return nil, err
	}
	if before < 0 {
		return nil, chat.Errorf(chat.CodeInvalid, "beforeId: must be a positive id")
	}
	if after < 0 {
		return nil, chat.Errorf(chat.CodeInvalid, "afterId: must be a positive id")
	}
	if before > 0 && after > 0 {
		return nil, chat.Errorf(chat.CodeInvalid, "beforeId: give beforeId or afterId, not both")
	}
	limit, err := chat.PageLimit(m.GetLimit())
	if err != nil {
		return nil, err
	}
	if _, err := s.memberChat(ctx, user, chatID); err != nil {
		return nil, err
	}
	msgs, hasMore, err := s.store.Messages(ctx, chatID, before, after, limit)
	if err != nil {
		return nil, err
	}
	var undelivered []int64
	for _, msg := range msgs {
		if msg.ToUserID == user && msg.Status == chat.StatusSent {
			undelivered = append(undelivered, msg.ID)
		}
	}
	changed, err := s.deliver(ctx, user, undelivered)
	if err != nil {
		// The page is still right; the receipt waits for the next fetch or socket write.
		s.log.WarnContext(ctx, "mark fetched messages delivered", "user_id", user, "err", err)
	}
	for i := range msgs {
		if slices.Contains(changed, msgs[i].ID) {
			msgs[i].Status = chat.StatusDelivered
		}
	}
	res := &chatv1.GetMessagesResponse{ChatId: chatID, HasMore: hasMore, Messages: make([]*chatv1.ChatMessage, len(msgs))}
	for i, msg := range msgs {
		res.Messages[i] = toProto(msg)
	}
	return res, nil
}
