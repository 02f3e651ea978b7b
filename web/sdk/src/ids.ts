// Chat, message and notification ids are decimal strings of positive int64 integers without
// leading zeros (PROTOCOL.md §3). Such strings order numerically by length first, then
// character by character, which is exact where Number would round past 2^53.

const decimalId = /^[1-9][0-9]{0,18}$/;

/** Reports whether s has the shape of an id: a positive decimal without leading zeros. */
export function isId(s: unknown): s is string {
  return typeof s === "string" && decimalId.test(s);
}

/** Compares two ids numerically: negative when a < b, 0 when equal, positive when a > b. */
export function compareIds(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Returns the greater of the ids, ignoring undefined; undefined when both are. */
export function maxId(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareIds(a, b) >= 0 ? a : b;
}
