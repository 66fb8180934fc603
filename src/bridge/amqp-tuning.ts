/**
 * Two adjustments to amqp-client's socket and buffer handling on hot paths: corking a
 * connection's socket for one event-loop turn (publishes and acks of a turn leave in one write),
 * and trimming its never-shrinking pool of frame buffers after a burst.
 */

const corkedSockets = new WeakSet<object>();

/** Frame buffers an amqp-client connection keeps for reuse at most (see {@link trimFramePool}). */
export const FRAME_POOL_MAX = 64;

/**
 * amqp-client builds each publish in a buffer of `frameMax` bytes taken from a per-connection
 * pool, and returns it to the pool once confirmed; the pool never shrinks. A stampede with a
 * thousand publishes in flight leaves a thousand 128 KiB buffers in it for good (measured:
 * ~4.5 KB of resident memory per held device after a 15k welcome burst, as many buffers as
 * presence events were in flight). The publisher trims the pool once a second while few
 * publishes are in flight (a sustained stream keeps its buffers), so the collector can free
 * them after a burst.
 */
export function trimFramePool(channel: unknown): void {
  const pool = (channel as { connection?: { bufferPool?: unknown[] } } | null)?.connection?.bufferPool;
  if (Array.isArray(pool) && pool.length > FRAME_POOL_MAX) pool.length = FRAME_POOL_MAX;
}

/**
 * Corks an amqp-client connection's socket until the end of this turn of the event loop
 * (`setImmediate` runs after the pending I/O callbacks), so the publishes of every device
 * event handled in this turn leave in one write: during a stampede, many welcomes' presence
 * events share one syscall instead of one each (measured here: +20-40% publish throughput
 * with confirms already with per-tick corking).
 */
export function corkClientForTick(client: unknown): void {
  const sock = (client as { socket?: { cork(): void; uncork(): void } } | null)?.socket;
  if (!sock || typeof sock.cork !== "function" || corkedSockets.has(sock)) return;
  corkedSockets.add(sock);
  sock.cork();
  setImmediate(() => {
    corkedSockets.delete(sock);
    try {
      sock.uncork();
    } catch {
      // The socket died meanwhile; the disconnect handler takes over.
    }
  });
}
