/** Capped exponential backoff with full jitter (AWS style): random in [0, min(max, base * 2^attempt)]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(baseMs, Math.floor(random() * cap));
}

/** A link that stayed up this long starts over at the shortest delay when it drops, ms. */
export const STABLE_LINK_MS = 30_000;

/**
 * Attempt counting for a reconnect loop. Every failure (refused login, missing vhost,
 * unreachable node, a connection closed right after it opened) moves one step up the curve; only
 * a connection that stayed up for {@link STABLE_LINK_MS} resets it, so a broker that accepts and
 * then closes at once is not hammered either.
 */
export class ReconnectBackoff {
  private attempt = 0;
  private upAt: number | null = null;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** The connection is up (the attempt count is kept until it proves stable). */
  up(): void {
    this.upAt = this.now();
  }

  /** Delay before the next attempt, after a failure or a lost connection. */
  next(): number {
    if (this.upAt !== null && this.now() - this.upAt >= STABLE_LINK_MS) this.attempt = 0;
    this.upAt = null;
    return backoffDelay(this.attempt++, this.minMs, this.maxMs, this.random);
  }

  /** Failures in a row so far (for logs). */
  get failures(): number {
    return this.attempt;
  }
}
