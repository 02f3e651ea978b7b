import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TypingNotifier, TypingTracker, type ClientEvents, type TypingChange } from "../src/index.js";
import { Emitter } from "../src/emitter.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function fakeClient() {
  const calls: Array<[string, boolean]> = [];
  return {
    calls,
    setTyping(chatId: string, isTyping: boolean) {
      calls.push([chatId, isTyping]);
      return Promise.resolve({} as Record<string, never>);
    },
  };
}

describe("TypingNotifier", () => {
  it("sends ON once, renews it after the relay window while typing goes on, and OFF after a pause", () => {
    const c = fakeClient();
    const t = new TypingNotifier(c, "7", { idleMs: 4000 });
    t.keystroke();
    expect(c.calls).toEqual([["7", true]]);
    for (let i = 0; i < 6; i++) {
      vi.advanceTimersByTime(500);
      t.keystroke(); // 3000 ms in: inside the window, nothing sent
    }
    expect(c.calls).toHaveLength(1);
    vi.advanceTimersByTime(500);
    t.keystroke(); // 3500 ms: a renewal
    expect(c.calls).toEqual([["7", true], ["7", true]]);
    vi.advanceTimersByTime(3999);
    expect(c.calls).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(c.calls.at(-1)).toEqual(["7", false]);
    expect(t.isActive).toBe(false);
  });

  it("never renews inside the relay window, whatever renewMs says", () => {
    const c = fakeClient();
    const t = new TypingNotifier(c, "7", { renewMs: 100 });
    t.keystroke();
    vi.advanceTimersByTime(2999);
    t.keystroke();
    expect(c.calls).toHaveLength(1);
    vi.advanceTimersByTime(1);
    t.keystroke();
    expect(c.calls).toHaveLength(2);
  });

  it("stop sends OFF once, only after an ON, and the next keystroke sends ON at once", () => {
    const c = fakeClient();
    const t = new TypingNotifier(c, "7");
    t.stop();
    expect(c.calls).toEqual([]);
    t.keystroke();
    t.stop();
    t.stop();
    expect(c.calls).toEqual([["7", true], ["7", false]]);
    t.keystroke();
    expect(c.calls.at(-1)).toEqual(["7", true]);
    t.dispose();
    vi.runAllTimers();
    expect(c.calls).toEqual([["7", true], ["7", false], ["7", true], ["7", false]]);
  });
});

describe("TypingTracker", () => {
  function setup() {
    const em = new Emitter<ClientEvents>();
    const tracker = new TypingTracker(em);
    const changes: TypingChange[] = [];
    tracker.onChange((c) => changes.push(c));
    return { em, tracker, changes };
  }
  const on = (userId: number, chatId = "7") => ({ chatId, userId, isTyping: true, expiresInMs: 6000 });

  it("expires an ON locally after expiresInMs, renewed by each ON", () => {
    const { em, tracker, changes } = setup();
    em.emit("TYPING_INDICATOR", on(2));
    expect(tracker.typingIn("7")).toEqual([2]);
    vi.advanceTimersByTime(5000);
    em.emit("TYPING_INDICATOR", on(2));
    vi.advanceTimersByTime(5999);
    expect(tracker.typingIn("7")).toEqual([2]);
    vi.advanceTimersByTime(1);
    expect(tracker.typingIn("7")).toEqual([]);
    expect(changes).toEqual([
      { chatId: "7", userIds: [2] },
      { chatId: "7", userIds: [] },
    ]);
  });

  it("clears on OFF, on the typer's message and on disconnect", () => {
    const { em, tracker } = setup();
    em.emit("TYPING_INDICATOR", on(2));
    em.emit("TYPING_INDICATOR", { chatId: "7", userId: 2, isTyping: false, expiresInMs: 0 });
    expect(tracker.typingIn("7")).toEqual([]);
    em.emit("TYPING_INDICATOR", on(2));
    em.emit("NEW_CHAT_MESSAGE", { id: "1", chatId: "7", fromUserId: 2, toUserId: 1, text: "x", timestamp: 1, status: "sent_to_server", fromUsername: "bob" });
    expect(tracker.typingIn("7")).toEqual([]);
    em.emit("TYPING_INDICATOR", on(2, "8"));
    em.emit("disconnected", { code: 1006, reason: "", wasOpen: true, willReconnect: true, delayMs: 1, attempt: 1 });
    expect(tracker.typingIn("8")).toEqual([]);
  });
});
