/**
 * A 3-node RabbitMQ cluster started by the test (its own node names, ports, data directories
 * and cookie; joined with rabbitmqctl join_cluster). The gateway knows all three nodes; devices
 * publish and a back-end sends commands while (a) the node the gateway is connected to and then
 * (b) the node leading the gateway's quorum queue are SIGKILLed: nothing acknowledged is lost
 * in either direction, each device's order holds, and the time until commands flow again is
 * reported. The full-size run is scripts/cluster/failover.ts.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { BrokerCluster } from "./helpers/broker-cluster.ts";
import { privateBrokerAvailable } from "./helpers/private-broker.ts";
import { runClusterScenario } from "./helpers/cluster-scenario.ts";

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
