/**
 * How a simulated device waits before reconnecting, as the device protocol asks: after a
 * refusal (`server_busy`, `rate_limited`, `shutting_down`) it waits the `retry_after` it was
 * given, after a drop 1 s; each further consecutive failure adds exponential backoff with full
 * jitter (a random delay up to base x 2^n), the random part capped at 60 s.
 */

/** Wait after a drop or a refusal without `retry_after`, in ms (device protocol). */
export const DEFAULT_RETRY_AFTER_MS = 1000;
/** Cap of the random backoff part, in ms (device protocol: "up to 60 s"). */
export const MAX_BACKOFF_MS = 60_000;

/** Error codes after which the gateway expects the device to come back later. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(["server_busy", "rate_limited", "shutting_down"]);

/**
 * Delay before the next attempt, in ms. `failures` counts consecutive failed attempts
 * including this one (1 for the first); `retryAfterMs` is the gateway's hint, if any.
 */
export function retryDelay(failures: number, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  const base = retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0 ? retryAfterMs : DEFAULT_RETRY_AFTER_MS;
  if (failures <= 1) return base;
  const window = Math.min(MAX_BACKOFF_MS, Math.max(DEFAULT_RETRY_AFTER_MS, base) * 2 ** Math.min(failures - 1, 20));
  return base + Math.floor(random() * window);
}
