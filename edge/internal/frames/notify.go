package frames

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
)

// TimestampLayout is RFC 3339 in UTC with milliseconds (docs/protocol.md §3.9).
const TimestampLayout = "2006-01-02T15:04:05.000Z07:00"

// NotificationInfo is one notification (docs/protocol.md §6.3).
type NotificationInfo struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Title     string          `json:"title"`
	Message   string          `json:"message"`
	Timestamp string          `json:"timestamp"`
	IsRead    bool            `json:"isRead"`
	Payload   json.RawMessage `json:"payload"`
}

var emptyObject = json.RawMessage("{}")

// NotificationFrom converts a stored notification.
func NotificationFrom(n *notifyv1.Notification) NotificationInfo {
	payload := emptyObject
	if p := n.GetPayload(); p != nil && len(p.GetFields()) > 0 {
		if b, err := protojson.Marshal(p); err == nil {
			payload = b
		}
	}
	return NotificationInfo{
		ID:        FormatID(n.GetId()),
		Type:      n.GetType(),
		Title:     n.GetTitle(),
		Message:   n.GetMessage(),
		Timestamp: time.UnixMilli(n.GetCreatedAt()).UTC().Format(TimestampLayout),
		IsRead:    n.GetIsRead(),
		Payload:   payload,
	}
}

// NotificationList is the payload of NOTIFICATION_LIST.
type NotificationList struct {
	Notifications []NotificationInfo `json:"notifications"`
	UnreadCount   int64              `json:"unreadCount"`
}

// NotificationListFrom converts ListNotifications' answer.
func NotificationListFrom(res *notifyv1.ListNotificationsResponse) NotificationList {
	list := make([]NotificationInfo, 0, len(res.GetNotifications()))
	for _, n := range res.GetNotifications() {
		list = append(list, NotificationFrom(n))
	}
	return NotificationList{Notifications: list, UnreadCount: res.GetUnreadCount()}
}
