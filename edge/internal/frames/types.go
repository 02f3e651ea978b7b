package frames

// The frame types of docs/protocol.md, client and server together: §4.1 lists what a
// client sends, §3–§6 what the server answers and pushes, §8 the version 2 additions.

// Client types (docs/protocol.md §4.1).
const (
	TypeGetChatList          = "GET_CHAT_LIST"
	TypeSendChatMessage      = "SEND_CHAT_MESSAGE"
	TypeMessagesRead         = "MESSAGES_READ"
	TypeTypingOn             = "TYPING_INDICATOR_ON"
	TypeTypingOff            = "TYPING_INDICATOR_OFF"
	TypeGetMyProfile         = "GET_MY_PROFILE"
	TypeGetUserProfile       = "GET_USER_PROFILE"
	TypeUpdateMyProfile      = "UPDATE_MY_PROFILE"
	TypeGetNotifications     = "GET_NOTIFICATIONS"
	TypeMarkNotificationRead = "MARK_NOTIFICATION_READ"
	TypeGetChatMessages      = "GET_CHAT_MESSAGES"
)

// Server-to-client types.
const (
	TypeServerAck           = "SERVER_ACK"
	TypeErrorNotification   = "ERROR_NOTIFICATION"
	TypeChatList            = "CHAT_LIST"
	TypeChatMessages        = "CHAT_MESSAGES"
	TypeNewChatMessage      = "NEW_CHAT_MESSAGE"
	TypeMessageStatusUpdate = "MESSAGE_STATUS_UPDATE"
	TypeTypingIndicator     = "TYPING_INDICATOR"
	TypeMyProfileData       = "MY_PROFILE_DATA"
	TypeUserProfileData     = "USER_PROFILE_DATA"
	TypeNotificationList    = "NOTIFICATION_LIST"
	TypeNewNotification     = "NEW_NOTIFICATION"
	TypePresenceEvent       = "PRESENCE_EVENT"
)

// Frame types of protocol version 2 (docs/protocol.md §8).
const (
	TypeConnected        = "CONNECTED"
	TypeRefreshSession   = "REFRESH_SESSION"
	TypeSessionRefreshed = "SESSION_REFRESHED"
)
