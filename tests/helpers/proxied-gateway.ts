/** Teardown shared by the tests that run a gateway behind a cuttable {@link BrokerProxy}. */
import type { BrokerProxy } from "./proxy.ts";
import { removeDir, type GatewayProcess } from "./gateway.ts";
import type { TestBackend } from "./backend.ts";

/**
 * Stops `gw` with its broker reachable (so it leaves cleanly), removes its queues through
 * `backend`, closes the proxy and deletes the data directory.
 */
export async function closeProxied(proxy: BrokerProxy, gw: GatewayProcess, backend: TestBackend): Promise<void> {
  proxy.up();
  await gw.stop();
  await backend.stop([gw.gatewayId]);
  proxy.down();
  removeDir(gw.dir);
}
