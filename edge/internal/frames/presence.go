package frames

import presencev1 "github.com/charla/charla/proto/gen/presence/v1"

// Presence event names.
const (
	EventUserOnline  = "user_online"
	EventUserOffline = "user_offline"
)

// PresenceEvent is the payload of PRESENCE_EVENT; lastSeen only on user_offline.
type PresenceEvent struct {
	UserID   int64  `json:"userId"`
	Event    string `json:"event"`
	LastSeen *int64 `json:"lastSeen,omitempty"`
}

// PresenceEventFrom converts the presence event.
func PresenceEventFrom(ev *presencev1.PresenceEvent) PresenceEvent {
	if ev.GetIsOnline() {
		return PresenceEvent{UserID: ev.GetUserId(), Event: EventUserOnline}
	}
	ls := ev.GetLastSeen()
	return PresenceEvent{UserID: ev.GetUserId(), Event: EventUserOffline, LastSeen: &ls}
}
