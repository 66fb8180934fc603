/** Graceful drain: tells every device `shutting_down` at a bounded rate, then closes it. */
import type { DeviceSession } from "./device-session.ts";
import { RETRY_AFTER_MS } from "./hello.ts";

/**
 * Closes the connections of every listener's set (`sets`) with `shutting_down`, at most
 * `perSecond` per second (so devices do not all reconnect to the next gateway at once), and
 * resolves when all are closed.
 */
export async function drainConnections(sets: readonly ReadonlySet<DeviceSession>[], perSecond: number): Promise<void> {
  const batch = Math.max(1, Math.ceil(perSecond / 20));
  const all = sets.flatMap((s) => [...s]);
  const open = () => sets.reduce((n, s) => n + s.size, 0);
  for (let i = 0; i < all.length; i += batch) {
    for (const c of all.slice(i, i + batch)) {
      c.close("shutting_down", "shutting_down", "Gateway is shutting down; reconnect after retry_after", RETRY_AFTER_MS);
    }
    if (i + batch < all.length) await Bun.sleep(50);
  }
  const deadline = Date.now() + 3000;
  while (open() > 0 && Date.now() < deadline) await Bun.sleep(20);
  for (const s of sets) for (const c of s) c.terminate();
}
