import type { CharlaClient } from "./client.js";

/** The server relays at most one TYPING_INDICATOR_ON per chat and sender in this window (§5). */
export const TYPING_RELAY_WINDOW_MS = 3000;

/** Configures a TypingNotifier. */
export interface TypingNotifierOptions {
  /**
   * Send a new ON no more often than this while typing goes on (default 3500: the relay
   * window plus slack, so that jitter does not land a renewal inside the window, where the
   * server would swallow it; at least the window).
   */
  renewMs?: number;
  /** Send OFF after this long without a keystroke (default 4000). */
  idleMs?: number;
  /** Called with a failed ON/OFF (typing is best effort); ignored by default. */
  onError?: (err: unknown) => void;
}

/**
 * Tells the other participant of one chat that the user is typing, the way the server
 * relays it: ON on the first keystroke, then at most one ON per relay window while typing
 * goes on (renewing the 6 s expiry before it lapses, and never sending one the server would
 * swallow), and OFF after a pause, when the text is cleared or sent (stop).
 */
export class TypingNotifier {
  private active = false;
  private lastOn = -Infinity;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly renewMs: number;
  private readonly idleMs: number;
  private readonly onError: (err: unknown) => void;

  constructor(
    private readonly client: Pick<CharlaClient, "setTyping">,
    readonly chatId: string,
    opts: TypingNotifierOptions = {},
  ) {
    this.renewMs = Math.max(opts.renewMs ?? TYPING_RELAY_WINDOW_MS + 500, TYPING_RELAY_WINDOW_MS);
    this.idleMs = opts.idleMs ?? 4000;
    this.onError = opts.onError ?? (() => {});
  }

  /** Whether an ON is in force (sent and not yet followed by OFF). */
  get isActive(): boolean {
    return this.active;
  }

  /** Call on every keystroke that leaves text in the box. */
  keystroke(): void {
    const now = Date.now();
    if (!this.active || now - this.lastOn >= this.renewMs) {
      this.active = true;
      this.lastOn = now;
      this.client.setTyping(this.chatId, true).catch(this.onError);
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), this.idleMs);
  }

  /**
   * Call when the text is sent or cleared, or the box loses focus: sends OFF if an ON is in
   * force. An OFF also resets the server's relay window, so the next keystroke shows at once.
   */
  stop(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.active) return;
    this.active = false;
    this.lastOn = -Infinity;
    this.client.setTyping(this.chatId, false).catch(this.onError);
  }

  /** Stops (sending OFF if needed) and drops the timer; call when leaving the chat. */
  dispose(): void {
    this.stop();
  }
}

/** Who is typing where. */
export type TypingChange = { chatId: string; userIds: number[] };

/**
 * Keeps who is typing in which chat from TYPING_INDICATOR events, expiring each ON locally
 * after its expiresInMs (the server sends no event when an ON lapses), clearing a user when
 * their message arrives, and clearing everything when the connection drops (typing is never
 * replayed).
 */
export class TypingTracker {
  private readonly typing = new Map<string, Map<number, ReturnType<typeof setTimeout>>>();
  private readonly unsubscribe: Array<() => void>;
  private readonly listeners = new Set<(c: TypingChange) => void>();

  constructor(client: Pick<CharlaClient, "on">) {
    this.unsubscribe = [
      client.on("TYPING_INDICATOR", (t) => {
        if (t.isTyping) this.set(t.chatId, t.userId, t.expiresInMs > 0 ? t.expiresInMs : 6000);
        else this.clear(t.chatId, t.userId);
      }),
      client.on("NEW_CHAT_MESSAGE", (m) => this.clear(m.chatId, m.fromUserId)),
      client.on("disconnected", () => this.clearAll()),
    ];
  }

  /** The users typing in a chat now. */
  typingIn(chatId: string): number[] {
    return [...(this.typing.get(chatId)?.keys() ?? [])];
  }

  /** Calls listener on every change; returns the function that removes it. */
  onChange(listener: (c: TypingChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops listening and drops every timer. */
  dispose(): void {
    for (const u of this.unsubscribe) u();
    for (const users of this.typing.values()) for (const t of users.values()) clearTimeout(t);
    this.typing.clear();
    this.listeners.clear();
  }

  private set(chatId: string, userId: number, ms: number): void {
    let users = this.typing.get(chatId);
    if (!users) {
      users = new Map();
      this.typing.set(chatId, users);
    }
    const had = users.has(userId);
    clearTimeout(users.get(userId));
    users.set(
      userId,
      setTimeout(() => this.clear(chatId, userId), ms),
    );
    if (!had) this.changed(chatId);
  }

  private clear(chatId: string, userId: number): void {
    const users = this.typing.get(chatId);
    const t = users?.get(userId);
    if (!users || t === undefined) return;
    clearTimeout(t);
    users.delete(userId);
    if (users.size === 0) this.typing.delete(chatId);
    this.changed(chatId);
  }

  private clearAll(): void {
    const chats = [...this.typing.keys()];
    for (const users of this.typing.values()) for (const t of users.values()) clearTimeout(t);
    this.typing.clear();
    for (const c of chats) this.changed(c);
  }

  private changed(chatId: string): void {
    const c = { chatId, userIds: this.typingIn(chatId) };
    for (const l of [...this.listeners]) l(c);
  }
}
