// Formatting shared by the views.

/** A chat timestamp (Unix ms) as a short local time, with the date when not today. */
export function formatTime(ms: number, now = Date.now()): string {
  if (!ms) return "";
  const d = new Date(ms);
  const today = new Date(now);
  const sameDay = d.toDateString() === today.toDateString();
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${d.toLocaleDateString(undefined, { day: "numeric", month: "short" })} ${time}`;
}

/** "Last seen ..." for a user who is offline. */
export function lastSeenText(online: boolean, lastSeen: number): string {
  if (online) return "online";
  return lastSeen ? `last seen ${formatTime(lastSeen)}` : "offline";
}

/** A person's display name. */
export function fullName(first: string, last: string, fallback: string): string {
  const n = `${first} ${last}`.trim();
  return n || fallback;
}

/** The initials shown in an avatar. */
export function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]?.toUpperCase() ?? "")
    .join("");
}
