// The frames and objects of PROTOCOL.md (v1 and v2), as they travel on the wire.
//
// User ids are JSON integers (int64); they are typed as number, which is exact up to
// 2^53 - 1. Chat, message, notification and curriculum item ids are decimal strings: compare
// them with compareIds, never with < on strings.

/** A message's delivery state; it only moves forward (sent_to_server → delivered → read). */
export type MessageStatus = "sent_to_server" | "delivered" | "read";

/** One chat of the caller's chat list (§6 ChatInfo). */
export interface ChatInfo {
  chatId: string;
  otherUserId: number;
  otherUserName: string;
  otherFirstName: string;
  otherLastName: string;
  otherPicture: string;
  isOtherOnline: boolean;
  /** "" when the chat has no message. */
  lastMessage: string;
  /** Unix ms; 0 when the chat has no message. */
  lastMessageTs: number;
  /** Messages to the caller not yet read. */
  unreadCount: number;
}

/** One stored message (§6 ChatMessage). */
export interface ChatMessage {
  id: string;
  chatId: string;
  fromUserId: number;
  toUserId: number;
  text: string;
  /** Unix ms. */
  timestamp: number;
  status: MessageStatus;
  clientMessageId?: string;
}

/** One notification (§6 NotificationInfo). */
export interface NotificationInfo {
  id: string;
  type: string;
  title: string;
  message: string;
  /** RFC 3339 in UTC with milliseconds. */
  timestamp: string;
  isRead: boolean;
  payload: Record<string, unknown>;
}

/** An education item of a curriculum. */
export interface EducationItem {
  id?: string;
  institution: string;
  degree?: string;
  fieldOfStudy?: string;
  campus?: string;
  /** YYYY-MM-DD or "". */
  startDate?: string;
  graduationDate?: string;
  countryId?: number;
  /** Read-only. */
  countryName?: string;
}

/** A work experience item of a curriculum. */
export interface ExperienceItem {
  id?: string;
  company: string;
  position: string;
  description?: string;
  startDate?: string;
  /** "" while current. */
  endDate?: string;
  countryId?: number;
  countryName?: string;
}

/** A certification item of a curriculum. */
export interface CertificationItem {
  id?: string;
  name: string;
  issuer?: string;
  issueDate?: string;
  credentialUrl?: string;
}

/** A skill item of a curriculum; level 1–5. */
export interface SkillItem {
  id?: string;
  name: string;
  level?: number;
}

/** How well a language is spoken. */
export type LanguageProficiency = "basic" | "intermediate" | "advanced" | "native";

/** A language item of a curriculum. */
export interface LanguageItem {
  id?: string;
  name: string;
  proficiency: LanguageProficiency;
}

/** A project item of a curriculum. */
export interface ProjectItem {
  id?: string;
  name: string;
  description?: string;
  url?: string;
  startDate?: string;
  endDate?: string;
}

/** The six sections of a curriculum, each returned in id order. */
export interface Curriculum {
  education: EducationItem[];
  experience: ExperienceItem[];
  certifications: CertificationItem[];
  skills: SkillItem[];
  languages: LanguageItem[];
  projects: ProjectItem[];
}

/** A user's profile (§6 ProfileData). */
export interface ProfileData {
  id: number;
  userName: string;
  firstName: string;
  lastName: string;
  /** "" when not visible to the caller. */
  email: string;
  phone: string;
  picture: string;
  summary: string;
  /** 0 when none. */
  countryId: number;
  /** "" when none. */
  countryName: string;
  isOnline: boolean;
  /** Unix ms of the last time the user went offline; 0 if never or not visible. */
  lastSeen: number;
  curriculum: Curriculum;
}

/**
 * The keys UPDATE_MY_PROFILE accepts. Absent (or null) leaves a field as is; each
 * curriculum section given replaces that section whole.
 */
export interface ProfileUpdate {
  firstName?: string;
  lastName?: string;
  phone?: string;
  picture?: string;
  summary?: string;
  /** 0 clears the country. */
  countryId?: number;
  curriculum?: Partial<Curriculum>;
}

// ---- Client → server (§4, §8.4) ----

/** The payload and the reply of every client frame type. */
export interface Requests {
  GET_CHAT_LIST: { payload: Record<string, never> | undefined; reply: "CHAT_LIST" };
  SEND_CHAT_MESSAGE: {
    payload: { toUserId?: number; chatId?: string; text: string; clientMessageId?: string };
    reply: "SERVER_ACK";
  };
  MESSAGES_READ: { payload: { chatId: string; upToMessageId?: string }; reply: "SERVER_ACK" };
  TYPING_INDICATOR_ON: { payload: { chatId: string }; reply: "SERVER_ACK" };
  TYPING_INDICATOR_OFF: { payload: { chatId: string }; reply: "SERVER_ACK" };
  GET_MY_PROFILE: { payload: Record<string, never> | undefined; reply: "MY_PROFILE_DATA" };
  GET_USER_PROFILE: { payload: { userId: number }; reply: "USER_PROFILE_DATA" };
  UPDATE_MY_PROFILE: { payload: ProfileUpdate; reply: "MY_PROFILE_DATA" };
  GET_NOTIFICATIONS: {
    payload: { limit?: number; before?: string; unreadOnly?: boolean } | undefined;
    reply: "NOTIFICATION_LIST";
  };
  MARK_NOTIFICATION_READ: { payload: { notificationId: string } | { all: true }; reply: "SERVER_ACK" };
  GET_CHAT_MESSAGES: {
    payload: { chatId: string; beforeId?: string; afterId?: string; limit?: number };
    reply: "CHAT_MESSAGES";
  };
  REFRESH_SESSION: { payload: Record<string, never> | undefined; reply: "SESSION_REFRESHED" };
}

/** A client frame type. */
export type RequestType = keyof Requests;

/** The payload of a client frame type. */
export type RequestPayload<T extends RequestType> = Requests[T]["payload"];

/** SERVER_ACK of SEND_CHAT_MESSAGE. */
export interface SendAck {
  messageId: string;
  chatId: string;
  timestamp: number;
  status: "sent_to_server";
  clientMessageId?: string;
}

/** SERVER_ACK of MESSAGES_READ. */
export interface ReadAck {
  chatId: string;
  updated: number;
}

/** SERVER_ACK of MARK_NOTIFICATION_READ. */
export interface UpdatedAck {
  updated: number;
}

/** The reply payload of every client frame type. */
export interface Replies {
  GET_CHAT_LIST: { chats: ChatInfo[] };
  SEND_CHAT_MESSAGE: SendAck;
  MESSAGES_READ: ReadAck;
  TYPING_INDICATOR_ON: Record<string, never>;
  TYPING_INDICATOR_OFF: Record<string, never>;
  GET_MY_PROFILE: ProfileData;
  GET_USER_PROFILE: ProfileData;
  UPDATE_MY_PROFILE: ProfileData;
  GET_NOTIFICATIONS: { notifications: NotificationInfo[]; unreadCount: number };
  MARK_NOTIFICATION_READ: UpdatedAck;
  GET_CHAT_MESSAGES: { chatId: string; messages: ChatMessage[]; hasMore: boolean };
  REFRESH_SESSION: { token: string; expiresAt: number };
}

/** The reply payload of a client frame type. */
export type ReplyPayload<T extends RequestType> = Replies[T];

/** The payload of ERROR_NOTIFICATION. */
export interface ErrorPayload {
  code: number;
  message: string;
}

// ---- Server → client (§5, §8) ----

/** NEW_CHAT_MESSAGE: a message to the caller or from the caller's other connection. */
export interface NewChatMessage extends ChatMessage {
  fromUsername: string;
}

/** MESSAGE_STATUS_UPDATE: messages of a chat moved to delivered or read. */
export interface MessageStatusUpdate {
  chatId: string;
  messageIds: string[];
  status: "delivered" | "read";
}

/** TYPING_INDICATOR: the other participant started or stopped typing. */
export interface TypingIndicator {
  chatId: string;
  userId: number;
  isTyping: boolean;
  /** How long an isTyping: true lasts unless renewed; 0 on false. */
  expiresInMs: number;
}

/** PRESENCE_EVENT: a contact went online or offline. */
export interface PresenceEvent {
  userId: number;
  event: "user_online" | "user_offline";
  /** Unix ms, on user_offline only. */
  lastSeen?: number;
}

/** The payload of every server event type. */
export interface ServerEvents {
  NEW_CHAT_MESSAGE: NewChatMessage;
  MESSAGE_STATUS_UPDATE: MessageStatusUpdate;
  TYPING_INDICATOR: TypingIndicator;
  PRESENCE_EVENT: PresenceEvent;
  NEW_NOTIFICATION: NotificationInfo;
}

/** A server event type. */
export type ServerEventType = keyof ServerEvents;

/** How the server answered a resume request (§8.3); "none" when none was asked. */
export type ResumeResult = "none" | "ok" | "failed";

/** CONNECTED, the first frame of a v2 server (§8.1). */
export interface Connected {
  userId: number;
  connectionId: string;
  lastSeq: number;
  /** Unix ms. */
  expiresAt: number;
  resume: ResumeResult;
}

/** SESSION_REFRESHED, the reply of REFRESH_SESSION (§8.4). */
export interface SessionRefreshed {
  token: string;
  expiresAt: number;
}

/** A frame as it travels, either way. */
export interface Envelope {
  type: string;
  pid?: string;
  seq?: number;
  payload?: unknown;
}
