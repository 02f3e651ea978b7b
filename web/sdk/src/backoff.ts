/** How reconnect attempts are spaced. */
export interface BackoffOptions {
  /** Delay before the first retry, in ms (default 500). */
  initialMs?: number;
  /** Largest delay, in ms (default 30000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
}

/**
 * Returns the delay before reconnect attempt n (0-based): exponential growth capped at maxMs,
 * with "equal jitter" — a random point in the upper half — so that clients dropped together
 * by a restart do not come back together, while none retries at once.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialMs ?? 500;
  const max = opts.maxMs ?? 30_000;
  const factor = opts.factor ?? 2;
  const ceiling = Math.min(max, initial * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
