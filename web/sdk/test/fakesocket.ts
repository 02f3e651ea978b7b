import type { Envelope, SocketLike } from "../src/index.js";

/**
 * A WebSocket double: the client side sees the SocketLike API; the test plays the server
 * with accept, push, replyTo and drop. Every socket the client creates is kept in `all`.
 */
export class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];

  /** The newest socket the client created. */
  static get last(): FakeSocket {
    const s = FakeSocket.all[FakeSocket.all.length - 1];
    if (!s) throw new Error("no socket was created");
    return s;
  }

  static reset(): void {
    FakeSocket.all = [];
  }

  readyState = 0;
  readonly url: URL;
  readonly sent: Envelope[] = [];
  closedByClient: { code: number | undefined; reason: string | undefined } | undefined;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(url: string) {
    this.url = new URL(url);
    FakeSocket.all.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("InvalidStateError: socket not open");
    this.sent.push(JSON.parse(data) as Envelope);
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }

  // ---- The server's side ----

  /** Completes the upgrade. */
  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** Sends a frame to the client. */
  push(frame: Envelope): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** Sends raw text to the client. */
  pushRaw(data: string): void {
    this.onmessage?.({ data });
  }

  /** The frames the client sent of one type. */
  sentOf(type: string): Envelope[] {
    return this.sent.filter((f) => f.type === type);
  }

  /** The newest frame the client sent of one type. */
  request(type: string): Envelope {
    const all = this.sentOf(type);
    const f = all[all.length - 1];
    if (!f) throw new Error(`the client sent no ${type}; it sent ${this.sent.map((s) => s.type).join(", ")}`);
    return f;
  }

  /** Answers the newest request of a type with a reply frame. */
  replyTo(requestType: string, replyType: string, payload: unknown): void {
    this.push({ type: replyType, pid: this.request(requestType).pid, payload });
  }

  /** Closes the connection from the server's side (or the network's). */
  drop(code = 1006, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** A v2 server's first frame. */
export function connectedFrame(p: { userId?: number; lastSeq?: number; expiresAt?: number; resume?: string } = {}): Envelope {
  return {
    type: "CONNECTED",
    pid: "s-c",
    payload: {
      userId: p.userId ?? 1,
      connectionId: "conn-1",
      lastSeq: p.lastSeq ?? 0,
      expiresAt: p.expiresAt ?? Date.now() + 30 * 24 * 3600_000,
      resume: p.resume ?? "none",
    },
  };
}

/** A minimal profile reply payload. */
export function profile(id = 1): Record<string, unknown> {
  return {
    id,
    userName: "alice",
    firstName: "Alice",
    lastName: "García",
    email: "",
    phone: "",
    picture: "",
    summary: "",
    countryId: 0,
    countryName: "",
    isOnline: true,
    lastSeen: 0,
    curriculum: { education: [], experience: [], certifications: [], skills: [], languages: [], projects: [] },
  };
}
