// Headless Debian Chromium driven by playwright-core (Playwright's own browser download does
// not work here). Each user gets a browser context of their own: separate storage, cookies
// and sockets, like two people on two machines.
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Where screenshots of failed tests go. */
export const screenshotDir = resolve(dirname(fileURLToPath(import.meta.url)), "../screenshots");

/** Launches Chromium (CHROMIUM_PATH or /usr/bin/chromium) headless. */
export function launch(): Promise<Browser> {
  // playwright-core gives every launch a fresh temporary --user-data-dir of its own.
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A signed-in user: their context and page. */
export interface User {
  name: string;
  context: BrowserContext;
  page: Page;
}

/** Opens a context, loads the app and signs in as a demo user with the sign-in page's button. */
export async function signIn(
  browser: Browser,
  baseURL: string,
  userName: string,
  viewport = { width: 1000, height: 720 },
): Promise<User> {
  const context = await browser.newContext({ viewport, baseURL });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${userName}] page error: ${e.message}`));
  await page.goto("/");
  await page.locator(`button[data-user="${userName}"]`).click();
  await page.locator('.conn[data-state="open"]').waitFor();
  await page.locator(".chat-list, .sidebar p").first().waitFor();
  return { name: userName, context, page };
}

/** Saves a screenshot of each page, named after the test. */
export async function screenshots(testName: string, users: Array<User | undefined>): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  const safe = testName.replace(/[^a-z0-9]+/gi, "-").slice(0, 80);
  for (const u of users) {
    if (!u || u.page.isClosed()) continue;
    const path = join(screenshotDir, `${safe}-${u.name}.png`);
    await u.page.screenshot({ path, fullPage: true }).catch(() => {});
    console.error(`screenshot: ${path}`);
  }
}
