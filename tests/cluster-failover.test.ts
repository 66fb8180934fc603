/**
 * A 3-node RabbitMQ cluster started by the test (its own node names, ports, data directories
 * and cookie; joined with rabbitmqctl join_cluster). The gateway knows all three nodes; devices
 * publish and a back-end sends commands while (a) the node the gateway is connected to and then
 * (b) the node leading the gateway's quorum queue are SIGKILLed: nothing acknowledged is lost
 * in either direction, each device's order holds, and the time until commands flow again is
 * reported. The full-size run is scripts/cluster/failover.ts.
 *
 * Site-wide revocation travels over the same cluster: two gateways of one site on its nodes; the
 * node the other gateway's site-events link uses is SIGKILLed and a device is revoked meanwhile.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerCluster } from "./helpers/broker-cluster.ts";
import { privateBrokerAvailable } from "./helpers/private-broker.ts";
import { runClusterScenario } from "./helpers/cluster-scenario.ts";
import { removeDir, uniquePrefix, type GatewayProcess } from "./helpers/gateway.ts";
import { hello, refusedOn, startSitePair } from "./helpers/site-pair.ts";
import { TestDevice } from "./helpers/device.ts";
import { mintToken } from "../src/auth/token.ts";

const available = privateBrokerAvailable();
let cluster: BrokerCluster | null = null;

beforeAll(async () => {
  if (available) cluster = await BrokerCluster.start(3, "ci");
}, 300_000);

afterAll(async () => {
  await cluster?.stop();
}, 120_000);

test.skipIf(!available)("SIGKILL of the connected node and of the queue leader: 0 acknowledged messages lost both ways, order kept", async () => {
  const r = await runClusterScenario(cluster!, { devices: 3, pubEveryMs: 50, commandEveryMs: 50, steadyMs: 2000, workers: 1, log: (l) => console.log(l) });
  console.log(JSON.stringify({ ...r, gatewayWarnings: undefined }, null, 1));
  if (r.up.lost + r.down.lost > 0) console.log(r.gatewayWarnings.join("\n"));
  expect(r.up.acked).toBeGreaterThan(0);
  expect(r.down.confirmed).toBeGreaterThan(0);
  expect(r.up.lost).toBe(0);
  expect(r.down.lost).toBe(0);
  expect(r.up.outOfOrder).toBe(0);
  expect(r.down.outOfOrder).toBe(0);
  for (const k of r.kills) expect(k.commandsFlowAgainMs).not.toBeNull();
  // (b) is the loss of a leader the gateway is not connected to (the scenario moves it off first).
  const leaderKill = r.kills.find((k) => k.kill === "leader")!;
  expect(leaderKill.node).not.toBe(leaderKill.gatewayNode);
}, 600_000);

/** The `host:port` of the node `g`'s link for `queue` came up on last (from its log). */
function linkNode(g: GatewayProcess, queue: string): string | null {
  return g.json().findLast((l) => l.msg === "Broker link up" && l.queue === queue)?.node ?? null;
}

test.skipIf(!available)("a revocation reaches the site's other gateway over the cluster while the node its site link uses is SIGKILLed", async () => {
  const c = cluster!;
  const prefix = uniquePrefix("clsite");
  const args = ["--workers", "1", "--broker", c.urls(), "--broker-heartbeat-s", "2", "--broker-reconnect-max-ms", "1000", "--auth-ban-failures", "0"];
  const site = await startSitePair(prefix, args);
  const { a, b } = site;
  try {
    const siteQueueB = `${prefix}owsla.site.${b.gatewayId}`;
    for (let i = 0; i < 200 && !linkNode(b, siteQueueB); i++) await Bun.sleep(100);
    const nodeB = linkNode(b, siteQueueB);
    expect(nodeB).not.toBeNull();
    const hw = "door-cluster";
    const old = mintToken(site.secret(), hw, 0);
    const first = await hello(a, hw, old);
    expect(first.ok).toBe(true);
    const onB = await TestDevice.connect(b.port);
    await onB.hello({ device: hw, token: old });

    const killed = c.byPort(Number(nodeB!.split(":")[1]));
    const t0 = Date.now();
    const { back } = await c.killAndRestart(killed);
    await site.revokeOnA((first as { id: string }).id);
    await onB.waitClosed(90_000);
    expect(await refusedOn(b, hw, old, 30_000)).toContain("unauthorized");
    console.log(`revocation applied on the other gateway ${Date.now() - t0} ms after SIGKILL of ${killed.node}`);
    // B's site link moved to another node of broker.url to get it.
    expect(linkNode(b, siteQueueB)).not.toBe(nodeB);
    expect((await hello(b, hw, mintToken(site.secret(), hw, 1))).ok).toBe(true);
    await back;
  } finally {
    await a.stop();
    await b.stop();
    removeDir(a.dir);
    removeDir(b.dir);
  }
}, 300_000);
