import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CharlaClient,
  CharlaError,
  ClientErrorCode,
  type ClientEvents,
  type ClientOptions,
  type SocketConstructor,
} from "../src/index.js";
import { FakeSocket, connectedFrame, profile } from "./fakesocket.js";

type Recorded = { [K in keyof ClientEvents]?: ClientEvents[K][] };

/** A client on fake sockets with a fixed jitter (random() = 0.5), recording every event. */
function newClient(opts: Partial<ClientOptions> = {}) {
  const client = new CharlaClient({
    url: "http://chat.test/ws",
    token: "tok-1",
    WebSocket: FakeSocket as unknown as SocketConstructor,
    random: () => 0.5,
    ...opts,
  });
  const seen: Recorded = {};
  const names: Array<keyof ClientEvents> = [
    "connected",
    "disconnected",
    "state",
    "refetch",
    "sessionRefreshed",
    "sessionEnded",
    "closed",
    "event",
    "NEW_CHAT_MESSAGE",
    "MESSAGE_STATUS_UPDATE",
    "PRESENCE_EVENT",
    "NEW_NOTIFICATION",
    "TYPING_INDICATOR",
  ];
  for (const n of names) {
    client.on(n, ((v: never) => {
      (seen[n] ??= [] as never[]).push(v);
    }) as never);
  }
  return { client, seen };
}

/** Opens a v2 connection: upgrade, CONNECTED, the probe's reply. */
function openV2(c: CharlaClient, p: Parameters<typeof connectedFrame>[0] = {}): FakeSocket {
  if (c.state === "idle") c.connect();
  const s = FakeSocket.last;
  s.accept();
  s.push(connectedFrame(p));
  s.replyTo("GET_MY_PROFILE", "MY_PROFILE_DATA", profile(p.userId ?? 1));
  return s;
}

/** Opens a v1 connection: upgrade, then only the probe's reply. */
function openV1(c: CharlaClient, userId = 1): FakeSocket {
  if (c.state === "idle") c.connect();
  const s = FakeSocket.last;
  s.accept();
  s.replyTo("GET_MY_PROFILE", "MY_PROFILE_DATA", profile(userId));
  return s;
}

function event(type: string, payload: unknown, seq?: number) {
  return seq === undefined ? { type, pid: `s-${type}`, payload } : { type, pid: `s-${type}-${seq}`, seq, payload };
}

function message(id: string) {
  return { id, chatId: "7", fromUserId: 2, toUserId: 1, text: "hola", timestamp: 1, status: "sent_to_server", fromUsername: "bob" };
}

beforeEach(() => {
  FakeSocket.reset();
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
});

afterEach(() => {
  vi.useRealTimers();
});

describe("connecting", () => {
  it("puts the token in the query and turns http into ws", () => {
    const { client } = newClient();
    client.connect();
    const u = FakeSocket.last.url;
    expect(u.protocol).toBe("ws:");
    expect(u.pathname).toBe("/ws");
    expect(u.searchParams.get("token")).toBe("tok-1");
    expect(u.searchParams.has("resume")).toBe(false);
    expect(client.state).toBe("connecting");
  });

  it("is open on a v2 server once CONNECTED arrives, before the probe's reply", () => {
    const { client, seen } = newClient();
    client.connect();
    const s = FakeSocket.last;
    s.accept();
    expect(s.sentOf("GET_MY_PROFILE")).toHaveLength(1);
    expect(client.state).toBe("connecting");
    s.push(connectedFrame({ userId: 42, lastSeq: 9 }));
    expect(client.state).toBe("open");
    expect(seen.connected).toEqual([
      {
        protocol: 2,
        userId: 42,
        connectionId: "conn-1",
        lastSeq: 9,
        expiresAt: Date.now() + 30 * 24 * 3600_000,
        resume: "none",
        reconnected: false,
      },
    ]);
    expect(client.lastSeq).toBe(9);
    expect(seen.refetch).toBeUndefined();
  });

  it("is open on a v1 server (no CONNECTED) once the probe is answered, with the user id from it", () => {
    const { client, seen } = newClient();
    openV1(client, 5);
    expect(client.state).toBe("open");
    expect(client.protocol).toBe(1);
    expect(client.userId).toBe(5);
    expect(client.profile?.userName).toBe("alice");
    expect(seen.connected?.[0]).toMatchObject({ protocol: 1, userId: 5, resume: "none", reconnected: false });
  });

  it("is open on a v1 server when an event comes before the probe's reply, and delivers that event", () => {
    const { client, seen } = newClient();
    client.connect();
    const s = FakeSocket.last;
    s.accept();
    s.push(event("PRESENCE_EVENT", { userId: 2, event: "user_online" }));
    expect(client.state).toBe("open");
    expect(seen.connected?.[0]).toMatchObject({ protocol: 1 });
    expect(seen.PRESENCE_EVENT).toEqual([{ userId: 2, event: "user_online" }]);
  });

  it("is open on a v1 server whose probe fails with a server error", () => {
    const { client, seen } = newClient();
    client.connect();
    const s = FakeSocket.last;
    s.accept();
    s.replyTo("GET_MY_PROFILE", "ERROR_NOTIFICATION", { code: 503, message: "profile unavailable" });
    return Promise.resolve().then(() => {
      expect(client.state).toBe("open");
      expect(seen.connected?.[0]).toMatchObject({ protocol: 1, userId: undefined });
    });
  });
});

describe("requests", () => {
  it("resolve with the payload of the reply that carries their pid, whatever the order", async () => {
    const { client } = newClient();
    const s = openV2(client);
    const list = client.getChatList();
    const sent = client.sendChatMessage({ toUserId: 2, text: "hola", clientMessageId: "m1" });
    const [listReq, sendReq] = [s.request("GET_CHAT_LIST"), s.request("SEND_CHAT_MESSAGE")];
    expect(listReq.pid).not.toBe(sendReq.pid);
    expect(sendReq.payload).toEqual({ toUserId: 2, text: "hola", clientMessageId: "m1" });
    expect(listReq).not.toHaveProperty("payload");
    s.push({ type: "SERVER_ACK", pid: sendReq.pid, payload: { messageId: "10", chatId: "7", timestamp: 5, status: "sent_to_server", clientMessageId: "m1" } });
    s.push({ type: "CHAT_LIST", pid: listReq.pid, payload: { chats: [] } });
    await expect(sent).resolves.toMatchObject({ messageId: "10", chatId: "7" });
    await expect(list).resolves.toEqual({ chats: [] });
  });

  it("reject with the server's code and message on ERROR_NOTIFICATION", async () => {
    const { client } = newClient();
    const s = openV2(client);
    const p = client.getUserProfile(99);
    s.replyTo("GET_USER_PROFILE", "ERROR_NOTIFICATION", { code: 404, message: "user not found" });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CharlaError);
    expect(err).toMatchObject({ code: 404, message: "user not found", requestType: "GET_USER_PROFILE", fromServer: true });
  });

  it("reject a reply of the wrong type", async () => {
    const { client } = newClient();
    const s = openV2(client);
    const p = client.getChatList();
    s.replyTo("GET_CHAT_LIST", "SERVER_ACK", {});
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.BadReply });
  });

  it("fail at once while not connected", async () => {
    const { client } = newClient();
    await expect(client.getChatList()).rejects.toMatchObject({ code: ClientErrorCode.NotConnected });
    client.connect();
    FakeSocket.last.accept(); // socket open, handshake not done
    await expect(client.getChatList()).rejects.toMatchObject({ code: ClientErrorCode.NotConnected });
  });

  it("fail with ConnectionLost when the connection drops before the reply", async () => {
    const { client } = newClient();
    const s = openV2(client);
    const p = client.markMessagesRead("7", "12");
    expect(s.request("MESSAGES_READ").payload).toEqual({ chatId: "7", upToMessageId: "12" });
    s.drop(1001, "going away");
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.ConnectionLost, fromServer: false });
  });

  it("fail with Timeout when no reply comes, and ignore the late reply", async () => {
    const { client } = newClient({ requestTimeoutMs: 1000 });
    const s = openV2(client);
    const p = client.getNotifications({ limit: 10 });
    vi.advanceTimersByTime(1000);
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.Timeout });
    s.replyTo("GET_NOTIFICATIONS", "NOTIFICATION_LIST", { notifications: [], unreadCount: 0 });
    expect(client.state).toBe("open");
  });

  it("build the payloads of the typed helpers", () => {
    const { client } = newClient();
    const s = openV2(client);
    void client.markNotificationRead("all");
    void client.markNotificationRead("33");
    void client.setTyping("7", true);
    void client.setTyping("7", false);
    void client.getChatMessages({ chatId: "7", beforeId: "100", limit: 20 });
    void client.updateMyProfile({ summary: "hi", countryId: 724 });
    expect(s.sentOf("MARK_NOTIFICATION_READ").map((f) => f.payload)).toEqual([{ all: true }, { notificationId: "33" }]);
    expect(s.request("TYPING_INDICATOR_ON").payload).toEqual({ chatId: "7" });
    expect(s.request("TYPING_INDICATOR_OFF").payload).toEqual({ chatId: "7" });
    expect(s.request("GET_CHAT_MESSAGES").payload).toEqual({ chatId: "7", beforeId: "100", limit: 20 });
    expect(s.request("UPDATE_MY_PROFILE").payload).toEqual({ summary: "hi", countryId: 724 });
  });
});

describe("events", () => {
  it("reach typed listeners; duplicates by seq are dropped", () => {
    const { client, seen } = newClient();
    const s = openV2(client, { lastSeq: 3 });
    s.push(event("NEW_CHAT_MESSAGE", message("100"), 4));
    s.push(event("NEW_CHAT_MESSAGE", message("100"), 4));
    s.push(event("MESSAGE_STATUS_UPDATE", { chatId: "7", messageIds: ["99"], status: "read" }, 5));
    s.push(event("TYPING_INDICATOR", { chatId: "7", userId: 2, isTyping: true, expiresInMs: 6000 }));
    s.push(event("SOMETHING_NEW", { x: 1 }, 6));
    expect(seen.NEW_CHAT_MESSAGE?.map((m) => m.id)).toEqual(["100"]);
    expect(seen.MESSAGE_STATUS_UPDATE).toHaveLength(1);
    expect(seen.TYPING_INDICATOR).toHaveLength(1);
    expect(seen.event?.map((e) => [e.type, e.seq])).toEqual([
      ["NEW_CHAT_MESSAGE", 4],
      ["MESSAGE_STATUS_UPDATE", 5],
      ["TYPING_INDICATOR", undefined],
      ["SOMETHING_NEW", 6],
    ]);
    expect(client.lastSeq).toBe(6);
    expect(seen.refetch).toBeUndefined();
  });

  it("signal a refetch on a seq gap", () => {
    const { client, seen } = newClient();
    const s = openV2(client, { lastSeq: 3 });
    s.push(event("NEW_NOTIFICATION", { id: "1" }, 6));
    expect(seen.refetch).toEqual([{ reason: "gap" }]);
    expect(client.lastSeq).toBe(6);
  });

  it("ignore frames that are not JSON objects with a type", () => {
    const { client, seen } = newClient();
    const s = openV2(client);
    s.pushRaw("not json");
    s.pushRaw("[1,2]");
    s.pushRaw('{"pid":"x"}');
    expect(seen.event).toBeUndefined();
    expect(client.state).toBe("open");
  });

  it("keep calling listeners when one throws", () => {
    const errors: unknown[] = [];
    const { client, seen } = newClient({ onListenerError: (e) => errors.push(e) });
    client.on("PRESENCE_EVENT", () => {
      throw new Error("boom");
    });
    const s = openV2(client);
    s.push(event("PRESENCE_EVENT", { userId: 2, event: "user_offline", lastSeen: 5 }, 1));
    s.push(event("PRESENCE_EVENT", { userId: 2, event: "user_online" }, 2));
    expect(seen.PRESENCE_EVENT).toHaveLength(2);
    expect(errors).toHaveLength(2);
  });
});

describe("reconnecting", () => {
  it("waits a jittered, growing backoff, and resets it after a connection", () => {
    const { client, seen } = newClient({ backoff: { initialMs: 100, maxMs: 1000, factor: 2 } });
    openV2(client);
    FakeSocket.last.drop(1006);
    // attempt 0: ceiling 100, random 0.5 → 75
    expect(seen.disconnected?.[0]).toMatchObject({ code: 1006, wasOpen: true, willReconnect: true, delayMs: 75, attempt: 1 });
    expect(client.state).toBe("reconnecting");
    vi.advanceTimersByTime(74);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.last.drop(1006); // refused before the upgrade
    expect(seen.disconnected?.[1]).toMatchObject({ wasOpen: false, delayMs: 150, attempt: 2 });
    vi.advanceTimersByTime(150);
    FakeSocket.last.drop(1006);
    expect(seen.disconnected?.[2]).toMatchObject({ delayMs: 300 });
    vi.advanceTimersByTime(300);
    for (let i = 0; i < 5; i++) {
      FakeSocket.last.drop(1006);
      vi.advanceTimersByTime(1000);
    }
    expect(seen.disconnected?.[7]).toMatchObject({ delayMs: 750 }); // capped at maxMs, jittered
    openV2(client);
    FakeSocket.last.drop(1001);
    expect(seen.disconnected?.[8]).toMatchObject({ delayMs: 75, attempt: 1 });
  });

  it("resumes from the last seq on a v2 server, and asks no refetch when resume is ok", () => {
    const { client, seen } = newClient();
    const s = openV2(client, { lastSeq: 3 });
    s.push(event("NEW_NOTIFICATION", { id: "1" }, 4));
    s.drop(1001, "server shutting down");
    vi.runOnlyPendingTimers();
    const s2 = FakeSocket.last;
    expect(s2).not.toBe(s);
    expect(s2.url.searchParams.get("resume")).toBe("4");
    s2.accept();
    s2.push(connectedFrame({ lastSeq: 6, resume: "ok" }));
    expect(seen.connected?.[1]).toMatchObject({ resume: "ok", reconnected: true, lastSeq: 4 });
    s2.push(event("NEW_NOTIFICATION", { id: "2" }, 5)); // replayed
    s2.push(event("NEW_NOTIFICATION", { id: "3" }, 6));
    expect(seen.NEW_NOTIFICATION?.map((n) => n.id)).toEqual(["1", "2", "3"]);
    expect(seen.refetch).toBeUndefined();
    expect(client.lastSeq).toBe(6);
  });

  it("signals a refetch when the resume failed and follows the server's lastSeq", () => {
    const { client, seen } = newClient();
    openV2(client, { lastSeq: 3 });
    FakeSocket.last.drop(1006);
    vi.runOnlyPendingTimers();
    const s2 = FakeSocket.last;
    expect(s2.url.searchParams.get("resume")).toBe("3");
    s2.accept();
    s2.push(connectedFrame({ lastSeq: 2000, resume: "failed" }));
    expect(seen.connected?.[1]).toMatchObject({ resume: "failed", lastSeq: 2000 });
    expect(seen.refetch).toEqual([{ reason: "resume_failed" }]);
    s2.push(event("NEW_NOTIFICATION", { id: "9" }, 2001));
    expect(seen.refetch).toHaveLength(1); // no gap
  });

  it("resumes from 0 on a v2 server when no event was seen", () => {
    const { client } = newClient();
    openV2(client);
    FakeSocket.last.drop(1006);
    vi.runOnlyPendingTimers();
    expect(FakeSocket.last.url.searchParams.get("resume")).toBe("0");
  });

  it("never asks a v1 server to resume, and signals a refetch after each reconnect", () => {
    const { client, seen } = newClient();
    openV1(client);
    FakeSocket.last.drop(1001);
    vi.runOnlyPendingTimers();
    expect(FakeSocket.last.url.searchParams.has("resume")).toBe(false);
    openV1(client);
    expect(seen.connected?.[1]).toMatchObject({ protocol: 1, resume: "failed", reconnected: true });
    expect(seen.refetch).toEqual([{ reason: "no_resume" }]);
  });

  it("gives up on a socket that opens but never completes the handshake", () => {
    const { client, seen } = newClient({ requestTimeoutMs: 5000 });
    client.connect();
    const s = FakeSocket.last;
    s.accept();
    vi.advanceTimersByTime(4999);
    expect(seen.disconnected).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(s.closedByClient?.code).toBe(4000);
    expect(seen.disconnected?.[0]).toMatchObject({ wasOpen: false, willReconnect: true });
    vi.runOnlyPendingTimers();
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("ignores a stale socket's late events", () => {
    const { client, seen } = newClient();
    const s = openV2(client);
    s.drop(1006);
    vi.runOnlyPendingTimers();
    s.push(event("NEW_NOTIFICATION", { id: "1" }, 1));
    s.drop(1006);
    expect(seen.NEW_NOTIFICATION).toBeUndefined();
    expect(seen.disconnected).toHaveLength(1);
  });

  it("reconnectNow skips the wait", () => {
    const { client } = newClient();
    openV2(client);
    FakeSocket.last.drop(1006);
    expect(FakeSocket.all).toHaveLength(1);
    client.reconnectNow();
    expect(FakeSocket.all).toHaveLength(2);
    vi.runOnlyPendingTimers();
    expect(FakeSocket.all).toHaveLength(2);
  });
});

describe("stopping", () => {
  it("stops on 4001 and says the session ended", () => {
    const { client, seen } = newClient();
    openV2(client);
    FakeSocket.last.drop(4001, "session revoked");
    expect(seen.sessionEnded).toEqual([{ reason: "session revoked" }]);
    expect(seen.closed).toEqual([{ code: 4001, reason: "session revoked" }]);
    expect(client.state).toBe("closed");
    vi.runAllTimers();
    expect(FakeSocket.all).toHaveLength(1);
  });

  it("stops on 4002 without reconnecting", () => {
    const { client, seen } = newClient();
    openV2(client);
    FakeSocket.last.drop(4002, "too many connections");
    expect(seen.disconnected?.[0]).toMatchObject({ code: 4002, willReconnect: false });
    expect(seen.closed).toEqual([{ code: 4002, reason: "too many connections" }]);
    expect(seen.sessionEnded).toBeUndefined();
    vi.runAllTimers();
    expect(FakeSocket.all).toHaveLength(1);
  });

  it("close() closes the socket, fails pending requests and stays closed", async () => {
    const { client, seen } = newClient();
    const s = openV2(client);
    const p = client.getChatList();
    client.close();
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.Closed });
    expect(s.closedByClient?.code).toBe(1000);
    expect(seen.state?.at(-1)).toBe("closed");
    s.drop(1000);
    vi.runAllTimers();
    expect(FakeSocket.all).toHaveLength(1);
    client.connect();
    expect(FakeSocket.all).toHaveLength(1);
  });

  it("close() during the backoff wait cancels the reconnect", () => {
    const { client } = newClient();
    openV2(client);
    FakeSocket.last.drop(1006);
    client.close();
    vi.runAllTimers();
    expect(FakeSocket.all).toHaveLength(1);
  });
});

describe("session refresh", () => {
  it("refreshes before expiry, then reconnects with the new token", async () => {
    const hour = 3600_000;
    const { client, seen } = newClient({ refreshMarginMs: hour });
    const s = openV2(client, { expiresAt: Date.now() + 10 * hour });
    vi.advanceTimersByTime(9 * hour - 1);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(1);
    const newExpiry = Date.now() + 30 * 24 * hour;
    s.replyTo("REFRESH_SESSION", "SESSION_REFRESHED", { token: "tok-2", expiresAt: newExpiry });
    await vi.advanceTimersByTimeAsync(0);
    expect(seen.sessionRefreshed).toEqual([{ token: "tok-2", expiresAt: newExpiry }]);
    expect(client.token).toBe("tok-2");
    expect(client.expiresAt).toBe(newExpiry);
    s.drop(1001);
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.last.url.searchParams.get("token")).toBe("tok-2");
  });

  it("refreshes at half the remaining lifetime when that is shorter than the margin", () => {
    const { client } = newClient({ refreshMarginMs: 24 * 3600_000 });
    const s = openV2(client, { expiresAt: Date.now() + 120_000 });
    vi.advanceTimersByTime(59_999);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(1);
  });

  it("waits past the server's one-per-minute limit after a 429", async () => {
    const { client } = newClient();
    const s = openV2(client, { expiresAt: Date.now() + 1000 });
    vi.advanceTimersByTime(500);
    s.replyTo("REFRESH_SESSION", "ERROR_NOTIFICATION", { code: 429, message: "rate limited" });
    await vi.advanceTimersByTimeAsync(60_999);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(2);
  });

  it("waits in steps when the expiry is beyond setTimeout's range", () => {
    const day = 24 * 3600_000;
    const { client } = newClient({ refreshMarginMs: day });
    const s = openV2(client, { expiresAt: Date.now() + 40 * day });
    vi.advanceTimersByTime(39 * day - 1);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(1);
  });

  it("does not refresh on a v1 server", () => {
    const { client } = newClient();
    const s = openV1(client);
    vi.advanceTimersByTime(400 * 24 * 3600_000);
    expect(s.sentOf("REFRESH_SESSION")).toHaveLength(0);
  });

  it("rejects a SESSION_REFRESHED without a token", async () => {
    const { client } = newClient();
    const s = openV2(client);
    const p = client.refreshSession();
    s.replyTo("REFRESH_SESSION", "SESSION_REFRESHED", {});
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.BadReply });
    expect(client.token).toBe("tok-1");
  });
});

describe("options", () => {
  it("require a url, a token and a WebSocket", () => {
    expect(() => new CharlaClient({ url: "", token: "t", WebSocket: FakeSocket as unknown as SocketConstructor })).toThrow(/url/);
    expect(() => new CharlaClient({ url: "ws://x/ws", token: "", WebSocket: FakeSocket as unknown as SocketConstructor })).toThrow(/token/);
  });
});
