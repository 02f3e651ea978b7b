// The app's state and every rule that changes it: what the server said (replies and
// events), merged idempotently (messages by id, statuses only forward), so that a replay, a
// refetch or a duplicate leaves the same state. Views read State and call the actions.
import {
  CharlaError,
  TypingTracker,
  compareIds,
  maxId,
  type CharlaClient,
  type ChatInfo,
  type ChatMessage,
  type ConnectionState,
  type MessageStatus,
  type NotificationInfo,
  type ProfileData,
  type ProfileUpdate,
} from "@charla/client";

/** A message as the app holds it: a stored one, or one of ours still being sent. */
export interface UIMessage extends ChatMessage {
  /** The key the view uses: the clientMessageId while sending, the id after. */
  key: string;
  /** Ours, not acknowledged yet. */
  pending?: boolean;
  /** Ours, failed: the text to show with a retry button. */
  error?: string;
}

/** One chat's loaded history (a contiguous window ending at the newest message). */
export interface Conversation {
  messages: UIMessage[];
  /** Whether older messages exist before the first loaded one. */
  hasMore: boolean;
  loading: boolean;
  loaded: boolean;
}

/** Everything the views show. */
export interface State {
  conn: ConnectionState;
  /** Why the connection is down, when it is. */
  connDetail: string;
  userId: number | undefined;
  me: ProfileData | undefined;
  chats: ChatInfo[];
  chatsLoaded: boolean;
  conversations: Record<string, Conversation>;
  /** Users typing, per chat. */
  typing: Record<string, number[]>;
  notifications: NotificationInfo[];
  notificationsUnread: number;
  notificationsHasMore: boolean;
  notificationsLoaded: boolean;
  profiles: Record<number, ProfileData>;
  /** The chat on screen (messages to us there are marked read as they come). */
  viewingChat: string | undefined;
  /** A passing error to show. */
  notice: string | undefined;
}

const statusRank: Record<MessageStatus, number> = { sent_to_server: 0, delivered: 1, read: 2 };

/** The further of two statuses: a status never moves back. */
export function forwardStatus(a: MessageStatus, b: MessageStatus): MessageStatus {
  return statusRank[b] > statusRank[a] ? b : a;
}

/** Sorts chats as the server does: newest lastMessageTs first, ties by chatId descending. */
export function sortChats(chats: ChatInfo[]): ChatInfo[] {
  return [...chats].sort((a, b) => b.lastMessageTs - a.lastMessageTs || compareIds(b.chatId, a.chatId));
}

/**
 * Merges messages into a conversation's list: by id (a stored message replaces our pending
 * copy with the same clientMessageId), statuses only forward, ordered by id with pending
 * ones last.
 */
export function mergeMessages(current: UIMessage[], incoming: ChatMessage[]): UIMessage[] {
  const byId = new Map<string, UIMessage>();
  const pending: UIMessage[] = [];
  for (const m of current) {
    if (m.pending || m.error) pending.push(m);
    else byId.set(m.id, m);
  }
  for (const m of incoming) {
    const old = byId.get(m.id);
    const status = old ? forwardStatus(old.status, m.status) : m.status;
    byId.set(m.id, { ...old, ...pick(m), status, key: m.id });
  }
  const stored = new Set([...byId.values()].map((m) => m.clientMessageId).filter(Boolean));
  const stillPending = pending.filter((m) => !stored.has(m.clientMessageId));
  const sorted = [...byId.values()].sort((a, b) => compareIds(a.id, b.id));
  return [...sorted, ...stillPending];
}

/** The ChatMessage fields of a frame payload (NEW_CHAT_MESSAGE adds fromUsername). */
function pick(m: ChatMessage): ChatMessage {
  const out: ChatMessage = {
    id: m.id,
    chatId: m.chatId,
    fromUserId: m.fromUserId,
    toUserId: m.toUserId,
    text: m.text,
    timestamp: m.timestamp,
    status: m.status,
  };
  if (m.clientMessageId) out.clientMessageId = m.clientMessageId;
  return out;
}

function emptyConversation(): Conversation {
  return { messages: [], hasMore: false, loading: false, loaded: false };
}

/** How many messages a history page holds. */
export const PAGE = 30;

/** The app's state over one client. */
export class Store {
  private state: State;
  private readonly listeners = new Set<() => void>();
  private readonly tracker: TypingTracker;
  private readonly unsubscribe: Array<() => void> = [];
  private chatListReload: Promise<void> | undefined;

  constructor(
    readonly client: CharlaClient,
    private readonly isVisible: () => boolean = () => true,
  ) {
    this.state = {
      conn: client.state,
      connDetail: "",
      userId: client.userId,
      me: client.profile,
      chats: [],
      chatsLoaded: false,
      conversations: {},
      typing: {},
      notifications: [],
      notificationsUnread: 0,
      notificationsHasMore: false,
      notificationsLoaded: false,
      profiles: {},
      viewingChat: undefined,
      notice: undefined,
    };
    this.tracker = new TypingTracker(client);
    this.unsubscribe.push(
      this.tracker.onChange(({ chatId, userIds }) => this.set({ typing: { ...this.state.typing, [chatId]: userIds } })),
      client.on("state", (conn) => this.set({ conn, connDetail: conn === "open" ? "" : this.state.connDetail })),
      client.on("disconnected", (d) =>
        this.set({ connDetail: d.willReconnect ? `retrying in ${Math.ceil((d.delayMs ?? 0) / 1000)} s` : "" }),
      ),
      client.on("connected", (info) => {
        this.set({ userId: info.userId, me: client.profile ?? this.state.me });
        if (!info.reconnected) void this.loadAll();
      }),
      client.on("refetch", () => void this.loadAll()),
      client.on("NEW_CHAT_MESSAGE", (m) => this.onNewMessage(m)),
      client.on("MESSAGE_STATUS_UPDATE", (u) => this.onStatus(u.chatId, u.messageIds, u.status)),
      client.on("PRESENCE_EVENT", (p) => this.onPresence(p.userId, p.event === "user_online", p.lastSeen)),
      client.on("NEW_NOTIFICATION", (n) => this.onNotification(n)),
    );
  }

  /** The current state (a new object after every change). */
  get(): State {
    return this.state;
  }

  /** Calls listener after every change; returns the function that removes it. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops listening to the client. */
  dispose(): void {
    for (const u of this.unsubscribe) u();
    this.tracker.dispose();
    this.listeners.clear();
  }

  private set(patch: Partial<State>): void {
    this.state = { ...this.state, ...patch };
    for (const l of [...this.listeners]) l();
  }

  private setConversation(chatId: string, patch: Partial<Conversation>): void {
    const c = this.state.conversations[chatId] ?? emptyConversation();
    this.set({ conversations: { ...this.state.conversations, [chatId]: { ...c, ...patch } } });
  }

  /** Shows a passing error. */
  notify(notice: string | undefined): void {
    this.set({ notice });
  }

  private fail(what: string, err: unknown): void {
    const msg = err instanceof CharlaError ? err.message : String(err);
    this.set({ notice: `${what}: ${msg}` });
  }

  // ---- Loading ----

  /**
   * Loads (or reloads, after events may have been missed) the chat list, the notifications,
   * one's profile and every conversation already on screen.
   */
  async loadAll(): Promise<void> {
    await Promise.all([
      this.reloadChats(),
      this.loadNotifications(false),
      this.client.getMyProfile().then(
        (me) => this.set({ me, userId: me.id }),
        (err) => this.fail("profile", err),
      ),
      ...Object.entries(this.state.conversations)
        .filter(([, c]) => c.loaded)
        .map(([chatId]) => this.catchUp(chatId)),
    ]);
  }

  /** Reloads the chat list; concurrent calls share one request. */
  reloadChats(): Promise<void> {
    this.chatListReload ??= this.client
      .getChatList()
      .then(
        (res) => this.set({ chats: sortChats(res.chats), chatsLoaded: true }),
        (err) => this.fail("chats", err),
      )
      .finally(() => {
        this.chatListReload = undefined;
      });
    return this.chatListReload;
  }

  /** Loads the newest page of a chat, if not loaded yet, and marks it read. */
  async openChat(chatId: string): Promise<void> {
    this.set({ viewingChat: chatId });
    const c = this.state.conversations[chatId];
    if (!c?.loaded && !c?.loading) {
      this.setConversation(chatId, { loading: true });
      try {
        const res = await this.client.getChatMessages({ chatId, limit: PAGE });
        const cur = this.state.conversations[chatId] ?? emptyConversation();
        this.setConversation(chatId, {
          messages: mergeMessages(cur.messages, res.messages),
          hasMore: res.hasMore,
          loaded: true,
          loading: false,
        });
      } catch (err) {
        this.setConversation(chatId, { loading: false });
        this.fail("messages", err);
        return;
      }
    }
    this.markRead(chatId);
  }

  /** Leaves the chat on screen. */
  closeChat(): void {
    this.set({ viewingChat: undefined });
  }

  /** Loads the page of messages before the oldest loaded one. */
  async loadOlder(chatId: string): Promise<void> {
    const c = this.state.conversations[chatId];
    const oldest = c?.messages.find((m) => !m.pending && !m.error);
    if (!c || c.loading || !oldest) return;
    this.setConversation(chatId, { loading: true });
    try {
      const res = await this.client.getChatMessages({ chatId, beforeId: oldest.id, limit: PAGE });
      const cur = this.state.conversations[chatId] ?? emptyConversation();
      this.setConversation(chatId, { messages: mergeMessages(cur.messages, res.messages), hasMore: res.hasMore, loading: false });
    } catch (err) {
      this.setConversation(chatId, { loading: false });
      this.fail("older messages", err);
    }
  }

  /**
   * Brings a loaded conversation up to date after missed events: every message after the
   * newest one held (page by page), then the newest page again for statuses that moved.
   */
  private async catchUp(chatId: string): Promise<void> {
    try {
      let after = this.newestId(chatId);
      for (let page = 0; after && page < 20; page++) {
        const res = await this.client.getChatMessages({ chatId, afterId: after, limit: 200 });
        this.mergeInto(chatId, res.messages);
        const last = res.messages[res.messages.length - 1];
        if (!res.hasMore || !last) break;
        after = last.id;
      }
      const res = await this.client.getChatMessages({ chatId, limit: PAGE });
      this.mergeInto(chatId, res.messages);
      if (this.state.viewingChat === chatId) this.markRead(chatId);
    } catch (err) {
      this.fail("messages", err);
    }
  }

  private newestId(chatId: string): string | undefined {
    let newest: string | undefined;
    for (const m of this.state.conversations[chatId]?.messages ?? []) {
      if (!m.pending && !m.error) newest = maxId(newest, m.id);
    }
    return newest;
  }

  private mergeInto(chatId: string, messages: ChatMessage[]): void {
    const c = this.state.conversations[chatId];
    if (!c) return;
    this.setConversation(chatId, { messages: mergeMessages(c.messages, messages) });
  }

  // ---- Sending and reading ----

  /** Sends a message (shown at once as pending; retry-safe through its clientMessageId). */
  async send(chatId: string, text: string): Promise<void> {
    const chat = this.state.chats.find((c) => c.chatId === chatId);
    const clientMessageId = newClientMessageId();
    const local: UIMessage = {
      key: clientMessageId,
      id: "",
      chatId,
      fromUserId: this.state.userId ?? 0,
      toUserId: chat?.otherUserId ?? 0,
      text,
      timestamp: Date.now(),
      status: "sent_to_server",
      clientMessageId,
      pending: true,
    };
    const c = this.state.conversations[chatId] ?? emptyConversation();
    this.setConversation(chatId, { messages: [...c.messages, local] });
    await this.deliver(local);
  }

  /** Sends a failed message again, with the same clientMessageId. */
  async retry(chatId: string, key: string): Promise<void> {
    const m = this.state.conversations[chatId]?.messages.find((x) => x.key === key);
    if (!m || !m.error) return;
    this.replaceLocal(chatId, key, { ...m, pending: true, error: undefined });
    await this.deliver({ ...m, pending: true });
  }

  private async deliver(local: UIMessage): Promise<void> {
    const { chatId, clientMessageId, text } = local;
    try {
      const ack = await this.client.sendChatMessage({ chatId, text, clientMessageId });
      const stored: ChatMessage = { ...pick(local), id: ack.messageId, timestamp: ack.timestamp, status: "sent_to_server" };
      const c = this.state.conversations[chatId] ?? emptyConversation();
      this.setConversation(chatId, {
        messages: mergeMessages(
          c.messages.filter((m) => m.key !== local.key),
          [stored],
        ),
      });
      this.touchChat(chatId, text, ack.timestamp, false);
    } catch (err) {
      const msg = err instanceof CharlaError ? err.message : String(err);
      this.replaceLocal(chatId, local.key, { ...local, pending: false, error: msg });
    }
  }

  private replaceLocal(chatId: string, key: string, m: UIMessage): void {
    const c = this.state.conversations[chatId];
    if (!c) return;
    this.setConversation(chatId, { messages: c.messages.map((x) => (x.key === key ? m : x)) });
  }

  /** Marks the messages to us in a chat read, when the chat is on screen and has unread ones. */
  markRead(chatId: string): void {
    if (this.state.viewingChat !== chatId || !this.isVisible()) return;
    const me = this.state.userId;
    const conv = this.state.conversations[chatId];
    const unreadHere = conv?.messages.some((m) => m.toUserId === me && m.status !== "read" && !m.pending) ?? false;
    const chat = this.state.chats.find((c) => c.chatId === chatId);
    if (!unreadHere && !(chat && chat.unreadCount > 0)) return;
    const upTo = this.newestId(chatId);
    this.client.markMessagesRead(chatId, upTo).then(
      () => {
        this.set({ chats: this.state.chats.map((c) => (c.chatId === chatId ? { ...c, unreadCount: 0 } : c)) });
        const cur = this.state.conversations[chatId];
        if (cur) {
          this.setConversation(chatId, {
            messages: cur.messages.map((m) =>
              m.toUserId === me && !m.pending && upTo && compareIds(m.id, upTo) <= 0 ? { ...m, status: "read" } : m,
            ),
          });
        }
      },
      (err) => this.fail("mark read", err),
    );
  }

  // ---- Events ----

  private onNewMessage(m: ChatMessage): void {
    const conv = this.state.conversations[m.chatId];
    if (conv?.loaded) this.mergeInto(m.chatId, [m]);
    const toMe = m.toUserId === this.state.userId;
    if (!this.state.chats.some((c) => c.chatId === m.chatId)) {
      void this.reloadChats(); // a chat we do not know yet (a new contact)
      return;
    }
    this.touchChat(m.chatId, m.text, m.timestamp, toMe);
    if (toMe) this.markRead(m.chatId);
  }

  private touchChat(chatId: string, text: string, ts: number, unread: boolean): void {
    const chats = this.state.chats.map((c) =>
      c.chatId === chatId
        ? {
            ...c,
            lastMessage: ts >= c.lastMessageTs ? text : c.lastMessage,
            lastMessageTs: Math.max(ts, c.lastMessageTs),
            unreadCount: c.unreadCount + (unread ? 1 : 0),
          }
        : c,
    );
    this.set({ chats: sortChats(chats) });
  }

  private onStatus(chatId: string, ids: string[], status: "delivered" | "read"): void {
    const c = this.state.conversations[chatId];
    const me = this.state.userId;
    let readByUs = false;
    if (c) {
      const set = new Set(ids);
      this.setConversation(chatId, {
        messages: c.messages.map((m) => {
          if (!set.has(m.id)) return m;
          if (m.toUserId === me) readByUs = true;
          return { ...m, status: forwardStatus(m.status, status) };
        }),
      });
    }
    // Our other tab read this chat: its unread count is the server's to tell.
    if (status === "read" && (readByUs || !c)) {
      const chat = this.state.chats.find((x) => x.chatId === chatId);
      if (chat && chat.unreadCount > 0) void this.reloadChats();
    }
  }

  private onPresence(userId: number, online: boolean, lastSeen: number | undefined): void {
    const chats = this.state.chats.map((c) => (c.otherUserId === userId ? { ...c, isOtherOnline: online } : c));
    const p = this.state.profiles[userId];
    const profiles = p
      ? { ...this.state.profiles, [userId]: { ...p, isOnline: online, lastSeen: lastSeen ?? p.lastSeen } }
      : this.state.profiles;
    this.set({ chats, profiles });
  }

  // ---- Notifications ----

  /** Loads the newest notifications (more: the page after the oldest loaded one). */
  async loadNotifications(more: boolean): Promise<void> {
    const before = more ? this.state.notifications[this.state.notifications.length - 1]?.id : undefined;
    try {
      const res = await this.client.getNotifications(before ? { limit: 20, before } : { limit: 20 });
      const merged = mergeNotifications(more ? this.state.notifications : [], res.notifications);
      this.set({
        notifications: more ? merged : mergeNotifications(res.notifications, this.newerThan(res.notifications)),
        notificationsUnread: res.unreadCount,
        notificationsHasMore: res.notifications.length === 20,
        notificationsLoaded: true,
      });
    } catch (err) {
      this.fail("notifications", err);
    }
  }

  /** Notifications held that are newer than a freshly loaded page (arrived meanwhile). */
  private newerThan(page: NotificationInfo[]): NotificationInfo[] {
    const newest = page[0]?.id;
    return newest ? this.state.notifications.filter((n) => compareIds(n.id, newest) > 0) : [];
  }

  private onNotification(n: NotificationInfo): void {
    if (this.state.notifications.some((x) => x.id === n.id)) return;
    this.set({
      notifications: mergeNotifications(this.state.notifications, [n]),
      notificationsUnread: this.state.notificationsUnread + (n.isRead ? 0 : 1),
    });
  }

  /** Marks one notification, or all, read. */
  async markNotificationRead(id: string | "all"): Promise<void> {
    try {
      await this.client.markNotificationRead(id);
      const notifications = this.state.notifications.map((n) => (id === "all" || n.id === id ? { ...n, isRead: true } : n));
      const unread =
        id === "all"
          ? 0
          : Math.max(0, this.state.notificationsUnread - (this.state.notifications.some((n) => n.id === id && !n.isRead) ? 1 : 0));
      this.set({ notifications, notificationsUnread: unread });
    } catch (err) {
      this.fail("notifications", err);
    }
  }

  // ---- Profiles ----

  /** Loads another user's profile. */
  async loadProfile(userId: number): Promise<void> {
    try {
      const p = await this.client.getUserProfile(userId);
      this.set({ profiles: { ...this.state.profiles, [userId]: p } });
    } catch (err) {
      this.fail("profile", err);
    }
  }

  /** Saves one's profile; rejects with the server's error (which names the bad field). */
  async saveProfile(update: ProfileUpdate): Promise<void> {
    const me = await this.client.updateMyProfile(update);
    this.set({ me });
  }
}

/** Merges notification lists by id, newest first. */
export function mergeNotifications(a: NotificationInfo[], b: NotificationInfo[]): NotificationInfo[] {
  const byId = new Map<string, NotificationInfo>();
  for (const n of [...a, ...b]) byId.set(n.id, { ...byId.get(n.id), ...n });
  return [...byId.values()].sort((x, y) => compareIds(y.id, x.id));
}

function newClientMessageId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  return `m-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
