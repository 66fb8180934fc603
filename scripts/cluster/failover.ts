/**
 * Full-size cluster failover run (the CI variant is tests/cluster-failover.test.ts): starts a
 * 3-node RabbitMQ cluster of its own, runs a gateway on it with every node in broker.url,
 * devices publishing and a back-end commanding, and SIGKILLs the connected node and the queue
 * leader, `--rounds` times each; prints a JSON report and exits 1 when anything acknowledged
 * was lost or a device saw its messages or commands out of order.
 *
 *   bun scripts/cluster/failover.ts [--devices 200] [--rounds 2]
 *     [--pub-every-ms 100] [--command-every-ms 20] [--steady-ms 10000] [--workers 1]
 */
import { parseArgs } from "node:util";
import { BrokerCluster } from "../../tests/helpers/broker-cluster.ts";
import { runClusterScenario } from "../../tests/helpers/cluster-scenario.ts";

const { values: v } = parseArgs({
  options: {
    devices: { type: "string", default: "200" },
    rounds: { type: "string", default: "2" },
    "pub-every-ms": { type: "string", default: "100" },
    "command-every-ms": { type: "string", default: "20" },
    "steady-ms": { type: "string", default: "10000" },
    workers: { type: "string", default: "1" },
  },
});

const started = Date.now();
const say = (line: string) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
say("starting a 3-node cluster");
const cluster = await BrokerCluster.start(3, "full");
let failed = true;
try {
  say(`cluster up: ${cluster.nodes.map((n) => `${n.node}:${n.port}`).join(", ")}`);
  const r = await runClusterScenario(cluster, {
    devices: Number(v.devices),
    rounds: Number(v.rounds),
    pubEveryMs: Number(v["pub-every-ms"]),
    commandEveryMs: Number(v["command-every-ms"]),
    steadyMs: Number(v["steady-ms"]),
    workers: Number(v.workers),
    log: say,
  });
  console.log(JSON.stringify({ options: v, ...r }, null, 1));
  failed = r.up.lost + r.down.lost + r.up.outOfOrder + r.down.outOfOrder > 0 || r.kills.some((k) => k.commandsFlowAgainMs === null);
} finally {
  await cluster.stop();
}
process.exit(failed ? 1 : 0);
