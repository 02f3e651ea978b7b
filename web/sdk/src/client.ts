import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { CharlaError, ClientErrorCode } from "./errors.js";
import type {
  Connected,
  Envelope,
  ErrorPayload,
  ProfileData,
  ProfileUpdate,
  Replies,
  RequestPayload,
  RequestType,
  ResumeResult,
  ServerEvents,
  ServerEventType,
  SessionRefreshed,
} from "./types.js";

/** The part of the WebSocket API the client uses; the browser's and Node's (≥ 22) fit it. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Builds a socket for a URL, like `new WebSocket(url)`. */
export type SocketConstructor = new (url: string) => SocketLike;

/** Where the connection stands. */
export type ConnectionState =
  /** Created, connect() not called yet. */
  | "idle"
  /** The first connection is being made. */
  | "connecting"
  /** Connected and past the handshake: requests can be made. */
  | "open"
  /** The connection dropped; a new one is being made (after a backoff delay). */
  | "reconnecting"
  /** Stopped for good: close() was called, the session ended (4001) or the cap was hit (4002). */
  | "closed";

/** What the "connected" event tells. */
export interface ConnectedInfo {
  /** 2 when the server sent CONNECTED, 1 when it did not (a v1 server). */
  protocol: 1 | 2;
  /** The session's user; undefined only on a v1 server whose profile lookup failed. */
  userId: number | undefined;
  /** The server's id for this connection (v2). */
  connectionId: string | undefined;
  /** The newest seq the client has now (v2; 0 on v1). */
  lastSeq: number;
  /** The session's expiry in Unix ms (v2). */
  expiresAt: number | undefined;
  /**
   * "ok": every missed event is being replayed, nothing to refetch. "failed": events were
   * missed and are not replayed (a "refetch" event is emitted too). "none": a first connection.
   */
  resume: ResumeResult;
  /** False on the client's first connection, true on every later one. */
  reconnected: boolean;
}

/** What the "disconnected" event tells. */
export interface DisconnectedInfo {
  /** The close code (1006 when the connection failed or dropped without one). */
  code: number;
  reason: string;
  /** Whether the connection had completed its handshake before it closed. */
  wasOpen: boolean;
  /** Whether the client will reconnect by itself. */
  willReconnect: boolean;
  /** The delay before that reconnect, in ms. */
  delayMs: number | undefined;
  /** How many attempts in a row have failed, this one included. */
  attempt: number;
}

/** Why the client says the app must refetch its state. */
export type RefetchReason =
  /** The server could not replay the missed events (resume "failed", or v2 "none" on a reconnect). */
  | "resume_failed"
  /** A v1 server, which cannot resume, after a reconnect. */
  | "no_resume"
  /** A seq was skipped on an open connection (the server broke its promise; be safe). */
  | "gap";

/** An event frame as received. */
export interface EventFrame<K extends string = string> {
  type: K;
  pid: string | undefined;
  seq: number | undefined;
  payload: K extends ServerEventType ? ServerEvents[K] : unknown;
}

/** Every event a client emits: the server's events by type, and the connection's life. */
export type ClientEvents = { [K in ServerEventType]: ServerEvents[K] } & {
  /** Every server event frame, of known types or not (after duplicates are dropped). */
  event: EventFrame;
  /** The connection is ready (v2: CONNECTED received; v1: the first reply arrived). */
  connected: ConnectedInfo;
  /** The connection closed or could not be made. */
  disconnected: DisconnectedInfo;
  /** The connection state changed. */
  state: ConnectionState;
  /** Events may have been missed: refetch the chat list, open chats (afterId) and notifications. */
  refetch: { reason: RefetchReason };
  /** The session was refreshed: keep the new token (the client already uses it). */
  sessionRefreshed: SessionRefreshed;
  /** The session expired or was revoked (close 4001): the client stopped; get a new token. */
  sessionEnded: { reason: string };
  /** The client stopped for good (after close(), 4001 or 4002). */
  closed: { code: number; reason: string };
};

/** Configures a CharlaClient. */
export interface ClientOptions {
  /** The edge's WebSocket URL, e.g. "wss://chat.example.com/ws" (http(s) is turned into ws(s)). */
  url: string;
  /** The session token (sent as ?token=). */
  token: string;
  /** The WebSocket implementation; globalThis.WebSocket by default. */
  WebSocket?: SocketConstructor;
  /** Reconnect spacing (jittered exponential, 0.5 s doubling to 30 s by default). */
  backoff?: BackoffOptions;
  /** A random source in [0, 1) for the jitter; Math.random by default. */
  random?: () => number;
  /** How long a request waits for its reply before failing with ClientErrorCode.Timeout (default 30 s). */
  requestTimeoutMs?: number;
  /**
   * Refresh the session (v2) once less than this remains before expiry, or at half of the
   * remaining lifetime when that is shorter (default 24 h).
   */
  refreshMarginMs?: number;
  /** Where a listener's exception goes; console.error by default. */
  onListenerError?: (err: unknown) => void;
}

/** The reply types that answer a client frame; events never have these types. */
const replyTypes = new Set([
  "CHAT_LIST",
  "SERVER_ACK",
  "MY_PROFILE_DATA",
  "USER_PROFILE_DATA",
  "NOTIFICATION_LIST",
  "CHAT_MESSAGES",
  "SESSION_REFRESHED",
  "ERROR_NOTIFICATION",
]);

/** The expected reply type of each request type (ERROR_NOTIFICATION aside). */
const expectedReply: Record<RequestType, string> = {
  GET_CHAT_LIST: "CHAT_LIST",
  SEND_CHAT_MESSAGE: "SERVER_ACK",
  MESSAGES_READ: "SERVER_ACK",
  TYPING_INDICATOR_ON: "SERVER_ACK",
  TYPING_INDICATOR_OFF: "SERVER_ACK",
  GET_MY_PROFILE: "MY_PROFILE_DATA",
  GET_USER_PROFILE: "USER_PROFILE_DATA",
  UPDATE_MY_PROFILE: "MY_PROFILE_DATA",
  GET_NOTIFICATIONS: "NOTIFICATION_LIST",
  MARK_NOTIFICATION_READ: "SERVER_ACK",
  GET_CHAT_MESSAGES: "CHAT_MESSAGES",
  REFRESH_SESSION: "SESSION_REFRESHED",
};

/** Close codes after which the client does not reconnect (§8.6). */
const CLOSE_SESSION_ENDED = 4001;
const CLOSE_TOO_MANY = 4002;

/** setTimeout's largest delay; longer waits are done in steps. */
const MAX_TIMER_MS = 2_147_483_647;

/** How long to wait before retrying a refresh the server rate-limited (one per minute). */
const REFRESH_RETRY_MS = 61_000;

interface Pending {
  type: RequestType;
  resolve: (payload: never) => void;
  reject: (err: CharlaError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * A connection to a Charla edge that survives drops: requests are promises resolved by the
 * reply with the same pid, events arrive as typed listeners, and the client reconnects by
 * itself with jittered exponential backoff, resuming from the last seq on a v2 server.
 *
 * A connection is usable ("open") once its handshake is done: on a v2 server, the CONNECTED
 * frame; on a v1 server, which sends none, the reply to the GET_MY_PROFILE the client sends
 * as soon as the socket opens (that reply also gives the user id). Requests made at any other
 * time fail at once with ClientErrorCode.NotConnected: make them from a "connected" listener.
 */
export class CharlaClient {
  private readonly opts: Required<Omit<ClientOptions, "WebSocket" | "backoff" | "onListenerError">> & {
    backoff: BackoffOptions;
  };
  private readonly Socket: SocketConstructor;
  private readonly emitter: Emitter<ClientEvents>;

  private ws: SocketLike | undefined;
  private generation = 0;
  private stateValue: ConnectionState = "idle";
  private handshakeDone = false;
  private everConnected = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshInFlight = false;

  private pidSeq = 0;
  private readonly pending = new Map<string, Pending>();
  private probePid: string | undefined;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;

  private protocolValue: 1 | 2 | undefined;
  private lastSeqValue = 0;
  private userIdValue: number | undefined;
  private profileValue: ProfileData | undefined;
  private expiresAtValue: number | undefined;
  private tokenValue: string;

  constructor(options: ClientOptions) {
    if (!options.url) throw new Error("charla: url is required");
    if (!options.token) throw new Error("charla: token is required");
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket;
    if (!Socket) throw new Error("charla: no WebSocket implementation; pass options.WebSocket");
    this.Socket = Socket as SocketConstructor;
    this.opts = {
      url: options.url,
      token: options.token,
      backoff: options.backoff ?? {},
      random: options.random ?? Math.random,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      refreshMarginMs: options.refreshMarginMs ?? 24 * 3600_000,
    };
    this.tokenValue = options.token;
    this.emitter = new Emitter(options.onListenerError);
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The session's current token (it changes when the session is refreshed). */
  get token(): string {
    return this.tokenValue;
  }

  /** The signed-in user's id, once known. */
  get userId(): number | undefined {
    return this.userIdValue;
  }

  /** The profile fetched at the last handshake, if that fetch succeeded. */
  get profile(): ProfileData | undefined {
    return this.profileValue;
  }

  /** The server's protocol version, once a connection has been made. */
  get protocol(): 1 | 2 | undefined {
    return this.protocolValue;
  }

  /** The highest event seq seen (v2), sent as resume= when reconnecting. */
  get lastSeq(): number {
    return this.lastSeqValue;
  }

  /** The session's expiry in Unix ms (v2), once known. */
  get expiresAt(): number | undefined {
    return this.expiresAtValue;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof ClientEvents>(name: K, listener: (value: ClientEvents[K]) => void): () => void {
    return this.emitter.on(name, listener);
  }

  /** Removes a listener. */
  off<K extends keyof ClientEvents>(name: K, listener: (value: ClientEvents[K]) => void): void {
    this.emitter.off(name, listener);
  }

  /** Starts connecting (once); the client then keeps a connection until close(). */
  connect(): void {
    if (this.stateValue !== "idle") return;
    this.open();
  }

  /** Skips the backoff wait and reconnects now (e.g. when the browser comes back online). */
  reconnectNow(): void {
    if (this.stateValue !== "reconnecting" || this.ws) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.open();
  }

  /** Closes the connection for good and fails every pending request with ClientErrorCode.Closed. */
  close(): void {
    if (this.stateValue === "closed") return;
    this.stop(1000, "client closed");
  }

  /** Sends a frame and resolves with the payload of its reply, or rejects with a CharlaError. */
  request<T extends RequestType>(type: T, payload?: RequestPayload<T>): Promise<Replies[T]> {
    if (this.stateValue !== "open" || !this.ws) {
      return Promise.reject(new CharlaError(ClientErrorCode.NotConnected, "not connected", type));
    }
    return this.send(type, payload);
  }

  // ---- Typed requests (PROTOCOL.md §4, §8.4) ----

  /** GET_CHAT_LIST: every accepted contact's chat, newest first. */
  getChatList(): Promise<Replies["GET_CHAT_LIST"]> {
    return this.request("GET_CHAT_LIST");
  }

  /** SEND_CHAT_MESSAGE; give clientMessageId to make a retry safe. */
  sendChatMessage(payload: RequestPayload<"SEND_CHAT_MESSAGE">): Promise<Replies["SEND_CHAT_MESSAGE"]> {
    return this.request("SEND_CHAT_MESSAGE", payload);
  }

  /** MESSAGES_READ: marks messages to the caller in a chat as read (up to an id, inclusive). */
  markMessagesRead(chatId: string, upToMessageId?: string): Promise<Replies["MESSAGES_READ"]> {
    return this.request("MESSAGES_READ", upToMessageId ? { chatId, upToMessageId } : { chatId });
  }

  /** TYPING_INDICATOR_ON or _OFF; see TypingNotifier for the relay window. */
  setTyping(chatId: string, isTyping: boolean): Promise<Replies["TYPING_INDICATOR_ON"]> {
    return this.request(isTyping ? "TYPING_INDICATOR_ON" : "TYPING_INDICATOR_OFF", { chatId });
  }

  /** GET_MY_PROFILE. */
  getMyProfile(): Promise<ProfileData> {
    return this.request("GET_MY_PROFILE");
  }

  /** GET_USER_PROFILE. */
  getUserProfile(userId: number): Promise<ProfileData> {
    return this.request("GET_USER_PROFILE", { userId });
  }

  /** UPDATE_MY_PROFILE: resolves with the updated profile. */
  updateMyProfile(update: ProfileUpdate): Promise<ProfileData> {
    return this.request("UPDATE_MY_PROFILE", update);
  }

  /** GET_NOTIFICATIONS, newest first. */
  getNotifications(payload?: RequestPayload<"GET_NOTIFICATIONS">): Promise<Replies["GET_NOTIFICATIONS"]> {
    return this.request("GET_NOTIFICATIONS", payload);
  }

  /** MARK_NOTIFICATION_READ of one notification, or of all when id is "all". */
  markNotificationRead(id: string | "all"): Promise<Replies["MARK_NOTIFICATION_READ"]> {
    return this.request("MARK_NOTIFICATION_READ", id === "all" ? { all: true } : { notificationId: id });
  }

  /** GET_CHAT_MESSAGES: a page of history, oldest first. */
  getChatMessages(payload: RequestPayload<"GET_CHAT_MESSAGES">): Promise<Replies["GET_CHAT_MESSAGES"]> {
    return this.request("GET_CHAT_MESSAGES", payload);
  }

  /**
   * REFRESH_SESSION (v2): the connection moves to a new session, whose token the client uses
   * from then on and announces with "sessionRefreshed". The client does this by itself
   * before expiry; call it to force one.
   */
  async refreshSession(): Promise<SessionRefreshed> {
    const res = await this.request("REFRESH_SESSION");
    if (typeof res?.token !== "string" || !res.token) {
      throw new CharlaError(ClientErrorCode.BadReply, "SESSION_REFRESHED without a token", "REFRESH_SESSION");
    }
    this.tokenValue = res.token;
    this.expiresAtValue = res.expiresAt;
    this.emitter.emit("sessionRefreshed", { token: res.token, expiresAt: res.expiresAt });
    this.scheduleRefresh();
    return res;
  }

  // ---- The connection ----

  private setState(s: ConnectionState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    this.emitter.emit("state", s);
  }

  private socketURL(): string {
    const u = new URL(this.opts.url);
    if (u.protocol === "http:") u.protocol = "ws:";
    if (u.protocol === "https:") u.protocol = "wss:";
    u.searchParams.set("token", this.tokenValue);
    // Only a v2 server understands resume; asking on the first connection is pointless.
    if (this.everConnected && this.protocolValue === 2) {
      u.searchParams.set("resume", String(this.lastSeqValue));
    } else {
      u.searchParams.delete("resume");
    }
    return u.toString();
  }

  private open(): void {
    this.setState(this.everConnected || this.attempt > 0 ? "reconnecting" : "connecting");
    this.handshakeDone = false;
    this.probePid = undefined;
    const gen = ++this.generation;
    let ws: SocketLike;
    try {
      ws = new this.Socket(this.socketURL());
    } catch (err) {
      // A malformed URL or a refused scheme: retrying will not help.
      this.stop(1006, `cannot open socket: ${String(err)}`);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (gen === this.generation) this.onOpen();
    };
    ws.onmessage = (ev) => {
      if (gen === this.generation) this.onMessage(ev.data);
    };
    ws.onclose = (ev) => {
      if (gen === this.generation) this.onClose(ev.code, ev.reason ?? "");
    };
    ws.onerror = () => {
      // A close event always follows; it decides what to do.
    };
  }

  private onOpen(): void {
    // The probe: on a v1 server its reply completes the handshake; on v2 CONNECTED comes
    // first and the reply just refreshes the profile. Its reply is handled in settle.
    const ws = this.ws;
    if (!ws) return;
    const pid = this.nextPid();
    this.probePid = pid;
    try {
      ws.send(JSON.stringify({ type: "GET_MY_PROFILE", pid }));
    } catch {
      this.abortSocket("probe not sent");
      return;
    }
    const gen = this.generation;
    this.probeTimer = setTimeout(() => {
      if (gen === this.generation && !this.handshakeDone) this.abortSocket("no handshake");
    }, this.opts.requestTimeoutMs);
  }

  /** Handles the reply to the probe. */
  private onProbeReply(frame: Envelope): void {
    this.probePid = undefined;
    clearTimeout(this.probeTimer);
    if (frame.type === "MY_PROFILE_DATA") {
      const profile = (frame.payload ?? {}) as ProfileData;
      this.profileValue = profile;
      if (typeof profile.id === "number") this.userIdValue = profile.id;
    }
    // Even an error reply proves a working (v1) connection.
    if (!this.handshakeDone) this.completeHandshake(undefined);
  }

  /** Gives up on the current socket as if it had dropped. */
  private abortSocket(reason: string): void {
    const ws = this.ws;
    this.generation += 1;
    try {
      ws?.close(4000, reason);
    } catch {
      // already closing
    }
    this.onClose(1006, reason);
  }

  private onMessage(data: unknown): void {
    if (typeof data !== "string") return;
    let frame: Envelope;
    try {
      frame = JSON.parse(data) as Envelope;
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;

    if (frame.type === "CONNECTED") {
      if (!this.handshakeDone) this.completeHandshake((frame.payload ?? {}) as Connected);
      return;
    }
    if (replyTypes.has(frame.type)) {
      this.settle(frame);
      return;
    }
    this.dispatchEvent(frame);
  }

  private completeHandshake(c: Connected | undefined): void {
    this.handshakeDone = true;
    const reconnected = this.everConnected;
    let resume: ResumeResult;
    let refetch: RefetchReason | undefined;
    if (c) {
      this.protocolValue = 2;
      if (typeof c.userId === "number") this.userIdValue = c.userId;
      this.expiresAtValue = typeof c.expiresAt === "number" ? c.expiresAt : undefined;
      const serverSeq = typeof c.lastSeq === "number" ? c.lastSeq : 0;
      resume = c.resume === "ok" || c.resume === "failed" ? c.resume : "none";
      if (resume !== "ok") {
        // Live events follow from serverSeq + 1; anything before it is not coming.
        this.lastSeqValue = serverSeq;
        if (reconnected) refetch = "resume_failed";
      }
    } else {
      this.protocolValue = 1;
      this.expiresAtValue = undefined;
      resume = reconnected ? "failed" : "none";
      if (reconnected) refetch = "no_resume";
    }
    this.everConnected = true;
    this.attempt = 0;
    this.setState("open");
    this.emitter.emit("connected", {
      protocol: this.protocolValue,
      userId: this.userIdValue,
      connectionId: c?.connectionId,
      lastSeq: this.lastSeqValue,
      expiresAt: this.expiresAtValue,
      resume,
      reconnected,
    });
    if (refetch) this.emitter.emit("refetch", { reason: refetch });
    this.scheduleRefresh();
  }

  private dispatchEvent(frame: Envelope): void {
    if (!this.handshakeDone) {
      // A v1 server may send an event before the probe's reply: that proves the connection.
      this.completeHandshake(undefined);
    }
    const seq = typeof frame.seq === "number" ? frame.seq : undefined;
    if (seq !== undefined) {
      if (seq <= this.lastSeqValue) return; // a duplicate (replay overlap): already handled
      const gap = seq > this.lastSeqValue + 1 && this.lastSeqValue > 0;
      this.lastSeqValue = seq;
      if (gap) this.emitter.emit("refetch", { reason: "gap" });
    }
    const ev: EventFrame = { type: frame.type, pid: frame.pid, seq, payload: frame.payload ?? {} };
    this.emitter.emit("event", ev);
    if (isServerEventType(frame.type)) {
      this.emitter.emit(frame.type, (frame.payload ?? {}) as never);
    }
  }

  private settle(frame: Envelope): void {
    const pid = frame.pid;
    if (pid === undefined) return;
    if (pid === this.probePid) {
      this.onProbeReply(frame);
      return;
    }
    const p = this.pending.get(pid);
    if (!p) return;
    this.pending.delete(pid);
    clearTimeout(p.timer);
    if (frame.type === "ERROR_NOTIFICATION") {
      const e = (frame.payload ?? {}) as Partial<ErrorPayload>;
      p.reject(new CharlaError(typeof e.code === "number" ? e.code : 500, e.message ?? "error", p.type));
      return;
    }
    if (frame.type !== expectedReply[p.type]) {
      p.reject(new CharlaError(ClientErrorCode.BadReply, `unexpected reply ${frame.type} to ${p.type}`, p.type));
      return;
    }
    p.resolve((frame.payload ?? {}) as never);
  }

  private nextPid(): string {
    this.pidSeq += 1;
    return "c" + this.pidSeq.toString(36);
  }

  private send<T extends RequestType>(type: T, payload: RequestPayload<T> | undefined): Promise<Replies[T]> {
    const ws = this.ws;
    const pid = this.nextPid();
    if (!ws) return Promise.reject(new CharlaError(ClientErrorCode.NotConnected, "not connected", type));
    return new Promise<Replies[T]>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(pid)) {
          reject(new CharlaError(ClientErrorCode.Timeout, `no reply to ${type} within ${this.opts.requestTimeoutMs} ms`, type));
        }
      }, this.opts.requestTimeoutMs);
      this.pending.set(pid, { type, resolve: resolve as (p: never) => void, reject, timer });
      const frame: Envelope = payload === undefined ? { type, pid } : { type, pid, payload };
      try {
        ws.send(JSON.stringify(frame));
      } catch (err) {
        this.pending.delete(pid);
        clearTimeout(timer);
        reject(new CharlaError(ClientErrorCode.ConnectionLost, `send failed: ${String(err)}`, type));
      }
    });
  }

  private failPending(code: number, message: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(new CharlaError(code, message, p.type));
    }
  }

  private onClose(code: number, reason: string): void {
    const wasOpen = this.handshakeDone;
    this.ws = undefined;
    this.handshakeDone = false;
    this.probePid = undefined;
    clearTimeout(this.probeTimer);
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.failPending(ClientErrorCode.ConnectionLost, `connection closed (${code}) before the reply`);
    if (code === CLOSE_SESSION_ENDED) {
      this.emitter.emit("disconnected", { code, reason, wasOpen, willReconnect: false, delayMs: undefined, attempt: this.attempt + 1 });
      this.emitter.emit("sessionEnded", { reason: reason || "session ended" });
      this.stop(code, reason || "session ended");
      return;
    }
    if (code === CLOSE_TOO_MANY) {
      this.emitter.emit("disconnected", { code, reason, wasOpen, willReconnect: false, delayMs: undefined, attempt: this.attempt + 1 });
      this.stop(code, reason || "too many connections");
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.opts.backoff, this.opts.random);
    this.attempt += 1;
    this.setState("reconnecting");
    this.emitter.emit("disconnected", { code, reason, wasOpen, willReconnect: true, delayMs, attempt: this.attempt });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stateValue === "reconnecting") this.open();
    }, delayMs);
  }

  private stop(code: number, reason: string): void {
    clearTimeout(this.probeTimer);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    this.reconnectTimer = undefined;
    this.refreshTimer = undefined;
    this.generation += 1; // ignore whatever the old socket still reports
    const ws = this.ws;
    this.ws = undefined;
    this.handshakeDone = false;
    this.failPending(ClientErrorCode.Closed, "client closed");
    if (ws) {
      try {
        ws.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
    this.setState("closed");
    this.emitter.emit("closed", { code, reason });
  }

  // ---- Session refresh (v2) ----

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    const expiresAt = this.expiresAtValue;
    if (this.protocolValue !== 2 || expiresAt === undefined || this.stateValue !== "open") return;
    const remaining = expiresAt - Date.now();
    const margin = Math.min(this.opts.refreshMarginMs, Math.max(0, remaining) / 2);
    this.armRefresh(remaining - margin);
  }

  private armRefresh(delayMs: number): void {
    const wait = Math.max(0, Math.min(delayMs, MAX_TIMER_MS));
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (delayMs > MAX_TIMER_MS) {
        this.armRefresh(delayMs - MAX_TIMER_MS);
        return;
      }
      void this.autoRefresh();
    }, wait);
  }

  private async autoRefresh(): Promise<void> {
    if (this.refreshInFlight || this.stateValue !== "open") return;
    this.refreshInFlight = true;
    try {
      await this.refreshSession();
    } catch (err) {
      // Rate-limited or a passing failure: try again later on this connection; a new
      // connection reschedules from its own CONNECTED.
      if (err instanceof CharlaError && err.fromServer && this.stateValue === "open") {
        clearTimeout(this.refreshTimer);
        this.armRefresh(REFRESH_RETRY_MS);
      }
    } finally {
      this.refreshInFlight = false;
    }
  }
}

const serverEventTypes = new Set<string>([
  "NEW_CHAT_MESSAGE",
  "MESSAGE_STATUS_UPDATE",
  "TYPING_INDICATOR",
  "PRESENCE_EVENT",
  "NEW_NOTIFICATION",
]);

function isServerEventType(t: string): t is ServerEventType {
  return serverEventTypes.has(t);
}
