// The web app in headless Chromium against the one-process system: two people (alice and
// bob, each in a browser context of their own) chat the way a person would, by clicking and
// typing. Every wait is for something to appear on the page (with Playwright's deadline as
// the failure bound), never a sleep. A failed test leaves a screenshot of each page in
// web/browser/screenshots.
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { launch, screenshots, signIn, type User } from "./browser";
import { Charla } from "./system";

let system: Charla;
let browser: Browser;
let seq = 0;

/** A message text no other test uses. */
function text(label: string): string {
  seq += 1;
  return `${label} #${seq} ${Date.now().toString(36)}`;
}

function chatItem(page: Page, userName: string): Locator {
  return page.locator(`.chat-item[data-user="${userName}"]`);
}

async function openChat(page: Page, userName: string): Promise<void> {
  await chatItem(page, userName).click();
  await page.locator(".conversation .composer textarea").waitFor();
  await page.locator(".messages").waitFor();
}

function composer(page: Page): Locator {
  return page.getByRole("textbox", { name: "Message" });
}

async function send(page: Page, body: string): Promise<void> {
  await composer(page).fill(body);
  await page.getByRole("button", { name: "Send" }).click();
}

function message(page: Page, body: string): Locator {
  return page.locator(".messages .msg", { hasText: body });
}

function tick(page: Page, body: string, status: "sent_to_server" | "delivered" | "read"): Locator {
  return page.locator(`.messages .msg.mine:has-text("${body}") .tick[data-status="${status}"]`);
}

/** The users signed in by the running test; closed after it (screenshots first if it failed). */
let users: User[] = [];

async function user(name: string, viewport?: { width: number; height: number }): Promise<User> {
  const u = await signIn(browser, system.url, name, viewport);
  users.push(u);
  return u;
}

beforeAll(async () => {
  system = await Charla.start();
  browser = await launch();
});

afterEach(async ({ task }) => {
  if (task.result?.state === "fail") {
    await screenshots(task.name, users);
    console.error(system.output());
  }
  await Promise.all(users.map((u) => u.context.close().catch(() => {})));
  users = [];
});

afterAll(async () => {
  await browser?.close();
  await system?.close();
});

describe("two people chatting", () => {
  it("sends and receives; the sender's ticks move to delivered, then read", async () => {
    const alice = await user("alice");
    const bob = await user("bob");
    // Bob is on his chat list: the message reaches his socket (delivered) but he has not read it.
    await openChat(alice.page, "bob");
    const hello = text("hola bob");
    await send(alice.page, hello);
    await message(alice.page, hello).waitFor();
    await tick(alice.page, hello, "delivered").waitFor();

    // Bob's chat list shows the message and one unread.
    await chatItem(bob.page, "alice").locator(".chat-last", { hasText: hello }).waitFor();
    expect(await chatItem(bob.page, "alice").locator('[data-testid="unread"]').textContent()).toBe("1");

    // Bob opens the chat: he sees it, alice's tick turns to read, his unread count goes.
    await openChat(bob.page, "alice");
    await message(bob.page, hello).waitFor();
    await tick(alice.page, hello, "read").waitFor();
    await chatItem(bob.page, "alice").locator('[data-testid="unread"]').waitFor({ state: "detached" });

    // Bob answers with the keyboard; alice, who has the chat open, sees it and he gets read.
    const reply = text("hola alice");
    await composer(bob.page).fill(reply);
    await composer(bob.page).press("Enter");
    await message(alice.page, reply).waitFor();
    await tick(bob.page, reply, "read").waitFor();
    expect(await message(alice.page, reply).getAttribute("data-mine")).toBe("false");
  });

  it("shows the typing indicator while the other types and clears it when they stop", async () => {
    const alice = await user("alice");
    const bob = await user("bob");
    await openChat(alice.page, "bob");
    await openChat(bob.page, "alice");
    const typing = alice.page.locator('[data-testid="typing"]', { hasText: "Bob is typing…" });

    await composer(bob.page).pressSequentially("I am wri", { delay: 20 });
    await typing.waitFor();
    await composer(bob.page).fill(""); // cleared: OFF
    await typing.waitFor({ state: "detached" });

    // Typing again shows it at once (OFF reset the relay window), and sending clears it.
    await composer(bob.page).pressSequentially("done", { delay: 20 });
    await typing.waitFor();
    const body = text("typed");
    await send(bob.page, body);
    await message(alice.page, body).waitFor();
    await typing.waitFor({ state: "detached" });
  });

  it("shows a contact's presence dot going online and offline", async () => {
    const alice = await user("alice");
    const dot = (online: boolean) => chatItem(alice.page, "bob").locator(`.presence[data-online="${online}"]`);
    await dot(false).waitFor({ timeout: 20_000 });

    const bob = await user("bob");
    await dot(true).waitFor();
    expect(await chatItem(alice.page, "bob").getAttribute("aria-label")).toContain("online");

    await bob.context.close(); // bob's last connection goes: offline within the grace period
    await dot(false).waitFor({ timeout: 20_000 });
    expect(await chatItem(alice.page, "bob").getAttribute("aria-label")).toContain("offline");
  });

  it("shows a new notification with the unread badge, and marks it read", async () => {
    const alice = await user("alice");
    const page = alice.page;
    await page.getByRole("link", { name: /Notifications/ }).click();
    await page.locator(".notifications h2").waitFor();
    await page.locator(".notif").first().waitFor();

    // Start from nothing unread, so that the badge counts only the new one.
    const markAll = page.getByRole("button", { name: "Mark all as read" });
    if (await markAll.isEnabled()) await markAll.click();
    await page.locator('[data-testid="notif-badge"]').waitFor({ state: "detached" });

    const { userId } = await system.demoSession("alice");
    const title = text("Deploy finished");
    await system.rpc("notify.v1.NotificationService/CreateNotification", {
      userId,
      type: "system",
      title,
      message: "Version 2 is live.",
    });
    const item = page.locator(".notif", { hasText: title });
    await item.waitFor();
    expect(await item.getAttribute("data-read")).toBe("false");
    expect(await page.locator('[data-testid="notif-badge"]').textContent()).toBe("1");

    await item.getByRole("button", { name: /Mark .* as read/ }).click();
    await page.locator(`.notif[data-read="true"]`, { hasText: title }).waitFor();
    await page.locator('[data-testid="notif-badge"]').waitFor({ state: "detached" });
  });

  it("edits one's own profile and shows another user's", async () => {
    const alice = await user("alice");
    const bob = await user("bob");
    const page = bob.page;
    await page.getByRole("link", { name: "Profile" }).click();
    const summary = page.getByRole("textbox", { name: "Summary" });
    await summary.waitFor();
    const newSummary = text("Mobile developer, now also on the web");
    await summary.fill(newSummary);
    await page.getByRole("group", { name: "About you" }).getByRole("combobox", { name: "Country" }).selectOption({ label: "Spain" });
    await page.getByRole("button", { name: "Add skill" }).click();
    await page.getByRole("group", { name: /Skills 2/ }).getByRole("textbox", { name: /Skill/ }).fill("TypeScript");
    await page.getByRole("button", { name: "Save profile" }).click();
    await page.getByRole("status").filter({ hasText: "Profile saved." }).waitFor();

    // A bad value is refused with the server's message, and nothing changes.
    await page.getByRole("textbox", { name: "Picture URL" }).fill("ftp://example.com/me.png");
    await page.getByRole("button", { name: "Save profile" }).click();
    await page.getByRole("status").filter({ hasText: /Not saved: .*picture/i }).waitFor();

    // Alice sees bob's new profile, presence included (they are contacts).
    await alice.page.goto(`${system.url}#/chats`);
    await openChat(alice.page, "bob");
    await alice.page.locator("#conv-title a").click();
    const profile = alice.page.locator(".profile");
    await profile.getByText(newSummary).waitFor();
    await profile.locator("dd", { hasText: "Spain" }).waitFor();
    await profile.getByText("TypeScript").waitFor();
    expect(await profile.locator('[data-testid="user-presence"]').textContent()).toBe("online");
  });

  it("works on a phone-sized screen: list, conversation, back", async () => {
    const alice = await user("alice", { width: 390, height: 760 });
    const page = alice.page;
    await chatItem(page, "bob").waitFor();
    expect(await page.locator("main").isVisible()).toBe(false); // the list is the home screen
    await openChat(page, "bob");
    expect(await page.locator(".sidebar").isVisible()).toBe(false);
    const body = text("from my phone");
    await send(page, body);
    await tick(page, body, "sent_to_server").or(tick(page, body, "delivered")).or(tick(page, body, "read")).first().waitFor();
    await page.getByRole("link", { name: "Back to chats" }).click();
    await chatItem(page, "bob").locator(".chat-last", { hasText: body }).waitFor();
  });

  it("recovers by itself after the server restarts, with no message missing or doubled", async () => {
    const alice = await user("alice");
    const bob = await user("bob");
    await openChat(alice.page, "bob");
    await openChat(bob.page, "alice");
    const before = text("before restart");
    await send(bob.page, before);
    await message(alice.page, before).waitFor();

    // Alice loses her network, then the server goes down and comes back.
    await alice.context.setOffline(true);
    await system.stop();
    await bob.page.locator('.conn[data-state="reconnecting"]').waitFor();
    await system.startAgain();

    // Bob's page reconnects by itself; he writes while alice is still away.
    await bob.page.locator('.conn[data-state="open"]').waitFor({ timeout: 60_000 });
    const during = [text("while you were away 1"), text("while you were away 2")];
    for (const m of during) {
      await send(bob.page, m);
      await tick(bob.page, m, "sent_to_server").waitFor();
    }

    // Alice's page is still away: it has not seen them (so it must catch up, not just listen).
    // Offline, her page learns that its socket is gone when the close or its heartbeat says
    // so, which may come after bob's sends on a busy machine: wait for it.
    await alice.page.locator('.conn[data-state="reconnecting"]').waitFor({ timeout: 60_000 });
    for (const m of during) expect(await message(alice.page, m).count(), m).toBe(0);

    // Alice comes back: her page reconnects and catches up (resume or refetch).
    await alice.context.setOffline(false);
    await alice.page.locator('.conn[data-state="open"]').waitFor({ timeout: 60_000 });
    for (const m of during) await message(alice.page, m).waitFor();
    for (const m of [before, ...during]) {
      expect(await message(alice.page, m).count(), m).toBe(1);
    }
    // She has the chat open, so bob's messages turn read.
    for (const m of during) await tick(bob.page, m, "read").waitFor();

    // And the live path works again both ways.
    const after = text("after restart");
    await send(alice.page, after);
    await message(bob.page, after).waitFor();
    await tick(alice.page, after, "read").waitFor();
  });
});
