import type { ChatInfo, ChatMessage, NotificationInfo } from "@charla/client";
import { describe, expect, it } from "vitest";
import { parseRoute } from "../src/app";
import { forwardStatus, mergeMessages, mergeNotifications, sortChats, type UIMessage } from "../src/store";

function msg(id: string, status: ChatMessage["status"] = "sent_to_server", extra: Partial<ChatMessage> = {}): ChatMessage {
  return { id, chatId: "7", fromUserId: 1, toUserId: 2, text: `m${id}`, timestamp: Number(id), status, ...extra };
}

function ui(m: ChatMessage): UIMessage {
  return { ...m, key: m.id };
}

describe("mergeMessages", () => {
  it("orders by numeric id and drops duplicates", () => {
    const got = mergeMessages([ui(msg("9")), ui(msg("10"))], [msg("10"), msg("11"), msg("100"), msg("9")]);
    expect(got.map((m) => m.id)).toEqual(["9", "10", "11", "100"]);
  });

  it("moves statuses only forward", () => {
    const got = mergeMessages([ui(msg("5", "read")), ui(msg("6", "delivered"))], [msg("5", "delivered"), msg("6", "read")]);
    expect(got.map((m) => m.status)).toEqual(["read", "read"]);
  });

  it("replaces a pending message by the stored one with its clientMessageId, and keeps other pending ones last", () => {
    const pending: UIMessage = { ...msg(""), key: "c1", clientMessageId: "c1", pending: true };
    const other: UIMessage = { ...msg(""), key: "c2", clientMessageId: "c2", pending: true };
    const got = mergeMessages([ui(msg("3")), pending, other], [msg("4", "sent_to_server", { clientMessageId: "c1" })]);
    expect(got.map((m) => m.key)).toEqual(["3", "4", "c2"]);
    expect(got[1]?.pending).toBeUndefined();
  });

  it("drops fields that are not a ChatMessage's (fromUsername of the event)", () => {
    const got = mergeMessages([], [{ ...msg("1"), fromUsername: "bob" } as ChatMessage]);
    expect(got[0]).not.toHaveProperty("fromUsername");
  });
});

describe("forwardStatus", () => {
  it("never goes back", () => {
    expect(forwardStatus("read", "delivered")).toBe("read");
    expect(forwardStatus("sent_to_server", "read")).toBe("read");
    expect(forwardStatus("delivered", "sent_to_server")).toBe("delivered");
  });
});

describe("sortChats", () => {
  it("sorts like the server: newest first, ties by chatId descending (numerically)", () => {
    const chat = (chatId: string, lastMessageTs: number) => ({ chatId, lastMessageTs }) as ChatInfo;
    const got = sortChats([chat("9", 5), chat("10", 5), chat("2", 7), chat("3", 0)]);
    expect(got.map((c) => c.chatId)).toEqual(["2", "10", "9", "3"]);
  });
});

describe("mergeNotifications", () => {
  it("merges by id, newest first, later copies winning", () => {
    const n = (id: string, isRead = false) => ({ id, isRead }) as NotificationInfo;
    const got = mergeNotifications([n("9"), n("10")], [n("10", true), n("100")]);
    expect(got.map((x) => [x.id, x.isRead])).toEqual([
      ["100", false],
      ["10", true],
      ["9", false],
    ]);
  });
});

describe("parseRoute", () => {
  it("reads the hash, and falls back to the chat list", () => {
    expect(parseRoute("#/chat/12")).toEqual({ name: "chat", chatId: "12" });
    expect(parseRoute("#/chat/012")).toEqual({ name: "chats" });
    expect(parseRoute("#/chat/abc")).toEqual({ name: "chats" });
    expect(parseRoute("#/user/3")).toEqual({ name: "user", userId: 3 });
    expect(parseRoute("#/user/-3")).toEqual({ name: "chats" });
    expect(parseRoute("#/notifications")).toEqual({ name: "notifications" });
    expect(parseRoute("#/profile")).toEqual({ name: "profile" });
    expect(parseRoute("")).toEqual({ name: "chats" });
    expect(parseRoute("#/whatever")).toEqual({ name: "chats" });
  });
});
