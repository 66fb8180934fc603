/** Graceful drain: tells every device `shutting_down` at a bounded rate, then closes it. */
import type { DeviceConnection } from "./connection.ts";
import { RETRY_AFTER_MS } from "./connection.ts";

/**
 * Closes `connections` with `shutting_down`, at most `perSecond` per second (so devices do
 * not all reconnect to the next gateway at once), and resolves when all are closed.
 */
export async function drainConnections(connections: Set<DeviceConnection>, perSecond: number): Promise<void> {
  const batch = Math.max(1, Math.ceil(perSecond / 20));
  const all = [...connections];
  for (let i = 0; i < all.length; i += batch) {
    for (const c of all.slice(i, i + batch)) {
      c.close("shutting_down", "shutting_down", "Gateway is shutting down; reconnect after retry_after", RETRY_AFTER_MS);
    }
    if (i + batch < all.length) await Bun.sleep(50);
  }
  const deadline = Date.now() + 3000;
  while (connections.size > 0 && Date.now() < deadline) await Bun.sleep(20);
  for (const c of connections) c.terminate();
}
