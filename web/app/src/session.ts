// Where the session token lives (this tab only, so two windows can be two users) and the
// demo sign-in of the one-process mode.

const KEY = "charla.token";

/** The token this tab signed in with, if any. */
export function savedToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Keeps the token for reloads of this tab; undefined forgets it. */
export function saveToken(token: string | undefined): void {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    // storage disabled: the session lasts as long as the page
  }
}

/** A demo user offered by the one-process mode. */
export interface DemoUser {
  userName: string;
  firstName: string;
  lastName: string;
}

/** The demo users, or [] when the server offers no demo sign-in. */
export async function demoUsers(): Promise<DemoUser[]> {
  try {
    const res = await fetch("/demo/users", { headers: { Accept: "application/json" } });
    if (!res.ok) return [];
    const body = (await res.json()) as { users?: DemoUser[] };
    return Array.isArray(body.users) ? body.users : [];
  } catch {
    return [];
  }
}

/** Asks the demo sign-in for a fresh session token of a demo user. */
export async function demoSession(userName: string): Promise<string> {
  const res = await fetch("/demo/session", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ userName }),
  });
  const body = (await res.json().catch(() => ({}))) as { token?: string; message?: string };
  if (!res.ok || !body.token) throw new Error(body.message ?? `demo sign-in failed (${res.status})`);
  return body.token;
}

/** The edge's WebSocket URL for the page's own origin. */
export function socketURL(): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/ws`;
}
