/**
 * The cluster failure scenario shared by tests/cluster-failover.test.ts (small, in CI) and
 * scripts/cluster/failover.ts (full size): a gateway on a 3-node cluster (broker.url lists
 * every node), devices publishing numbered messages, a back-end sending numbered commands to
 * each device (one at a time, each re-sent until the broker confirmed it); then SIGKILL of
 * (a) the node the gateway is connected to and (b) the node leading the gateway's queue. Each
 * killed node is booted again and rejoins before the next kill. Kill (b) always hits a leader
 * the gateway is not connected to: when they are on one node, the broker first closes the
 * gateway's connections there so it moves to another node. (A quorum queue's first leader is
 * the node that declared it, so kill (a) usually takes the connected node and the leader at once.)
 *
 * Checked: every message acked to a device reached the back-end and every command confirmed by
 * the broker reached its device (0 lost both ways), each device's messages and commands in
 * order (duplicates allowed: first occurrences must be increasing), and reported: how long after
 * each kill a new command reached a device again.
 */
import { TestDevice } from "./device.ts";
import type { BrokerCluster } from "./broker-cluster.ts";
import { ClusterBackend } from "./cluster-backend.ts";
import { removeDir, startGateway, uniquePrefix, type GatewayProcess } from "./gateway.ts";

/** Size of a run. */
export interface ClusterScenarioOptions {
  devices: number;
  /** Time between two messages of one device, ms. */
  pubEveryMs: number;
  /** Pause between two commands to one device, ms. */
  commandEveryMs: number;
  /** Traffic before the first kill and after the last node is back, ms. */
  steadyMs: number;
  workers: number;
  /** Times the pair of kills (connected node, queue leader) is repeated (default 1). */
  rounds?: number;
  log?: (line: string) => void;
}

/** What one kill cost. */
export interface KillReport {
  kill: "connected" | "leader";
  node: string;
  /** Node the gateway was connected to at the kill. */
  gatewayNode: string;
  /** Node leading the gateway's queue at the kill. */
  leader: string;
  /** Kill until a command sent after it reached its device, ms. */
  commandsFlowAgainMs: number | null;
  /** Kill until the killed node was back in the cluster, ms. */
  nodeBackMs: number;
}

/** Result of {@link runClusterScenario}. */
export interface ClusterScenarioResult {
  /** `redeliveredFirst`: messages the back-end first got as a redelivery of its own queue (not counted for order, see `audit`). */
  up: { acked: number; lost: number; duplicates: number; outOfOrder: number; redeliveredFirst: number };
  down: { confirmed: number; lost: number; duplicates: number; outOfOrder: number };
  kills: KillReport[];
  /** Up to 20 ids of lost messages (`<device>:<n>`) and commands, for the failure message. */
  lostSample: string[];
  /** Gateway warning and error lines (first 50), for the failure message. */
  gatewayWarnings: string[];
}

interface Dev {
  hw: string;
  id: string;
  dev: TestDevice;
  acked: Set<number>;
  cmds: { id: string; at: number }[];
  confirmed: string[];
}

/**
 * Counts of `seen` against `must` (ids that must all be there, in order). Ids in `unordered`
 * count for lost and duplicates but not for order: the back-end first got them as a broker
 * redelivery (its own queue lost the first delivery with a node), and a broker gives no order
 * for redeliveries against messages it delivers for the first time.
 */
function audit<T>(must: T[], seen: T[], unordered?: Set<T>): { lost: number; duplicates: number; outOfOrder: number } {
  const firsts: T[] = [];
  const set = new Set<T>();
  for (const x of seen) {
    if (set.has(x)) continue;
    set.add(x);
    firsts.push(x);
  }
  const rank = new Map(must.map((x, i) => [x, i]));
  let outOfOrder = 0;
  let last = -1;
  for (const x of firsts) {
    if (unordered?.has(x)) continue;
    const r = rank.get(x);
    if (r === undefined) continue;
    if (r < last) outOfOrder++;
    last = Math.max(last, r);
  }
  return { lost: must.filter((x) => !set.has(x)).length, duplicates: seen.length - firsts.length, outOfOrder };
}

/** Runs the scenario on `cluster`; the gateway and back-end are created and removed here. */
export async function runClusterScenario(cluster: BrokerCluster, o: ClusterScenarioOptions): Promise<ClusterScenarioResult> {
  const log = o.log ?? (() => {});
  const prefix = uniquePrefix("cluster");
  const gatewayId = "gw-cluster";
  const urls = cluster.nodes.map((n) => n.url());
  const backend = await new ClusterBackend(urls, prefix).start();
  let gw: GatewayProcess | null = null;
  const devs: Dev[] = [];
  let running = true;
  const loops: Promise<void>[] = [];
  try {
    gw = await startGateway({
      gatewayId,
      prefix,
      args: ["--workers", String(o.workers), "--broker", cluster.urls(), "--broker-heartbeat-s", "2", "--broker-reconnect-max-ms", "1000", "--auth-ban-failures", "0"],
    });
    const g = gw;
    for (let i = 0; i <= o.devices; i++) {
      const hw = i === o.devices ? "probe" : `sensor-${i}`;
      const { dev, welcome } = await g.device(hw);
      const d: Dev = { hw, id: welcome.id, dev, acked: new Set(), cmds: [], confirmed: [] };
      dev.onFrame = (f) => {
        if (f.op === "ack" && typeof f.ref === "string" && f.ref.startsWith("s")) d.acked.add(Number(f.ref.slice(1)));
        if (f.op === "cmd") {
          d.cmds.push({ id: f.id, at: Date.now() });
          dev.send({ op: "ack", ref: f.id });
        }
      };
      devs.push(d);
    }
    const probe = devs.pop()!;
    for (const d of devs) {
      loops.push(
        (async () => {
          for (let n = 0; running; n++) {
            d.dev.send({ op: "pub", topic: "seq", body: { n }, ref: `s${n}` });
            await Bun.sleep(o.pubEveryMs);
          }
        })(),
        (async () => {
          for (let k = 0; running; k++) {
            const id = `${d.hw}-c${k}`;
            if (await backend.command(gatewayId, d.id, id, { k })) d.confirmed.push(id);
            await Bun.sleep(o.commandEveryMs);
          }
        })(),
      );
    }

    const connectedNode = () => {
      const up = g.json().findLast((l) => l.msg === "Broker link up" && l.queue === `${prefix}owsla.gw.${gatewayId}`);
      return cluster.byPort(Number(String(up?.node ?? "").split(":")[1]));
    };
    /** Sends probe commands every 100 ms from `t0` until one reaches the probe device. */
    const flowAgain = async (t0: number, tag: string): Promise<number | null> => {
      const before = probe.cmds.length;
      for (let i = 0; Date.now() - t0 < 120_000; i++) {
        void backend.command(gatewayId, probe.id, `probe-${tag}-${i}`, { i }, 120_000);
        await Bun.sleep(100);
        const got = probe.cmds.slice(before).find((c) => c.id.startsWith(`probe-${tag}-`));
        if (got) return got.at - t0;
      }
      return null;
    };

    await Bun.sleep(o.steadyMs);
    const kills: KillReport[] = [];
    const plan = Array.from({ length: o.rounds ?? 1 }, () => ["connected", "leader"] as const).flat();
    const queue = `${prefix}owsla.gw.${gatewayId}`;
    for (const [round, kind] of plan.entries()) {
      let leader = cluster.byName(await cluster.leaderOf(queue));
      if (kind === "leader" && connectedNode() === leader) {
        const closed = await cluster.closeConnectionsTo(leader, "test: move the gateway off its queue's leader");
        for (let i = 0; i < 600 && connectedNode() === leader; i++) await Bun.sleep(100);
        if (connectedNode() === leader) throw new Error(`The gateway did not leave ${leader.node} within 60 s after ${closed} connections there were closed`);
        log(`moved the gateway off the leader ${leader.node} (closed ${closed} connections); now on ${connectedNode().node}`);
        leader = cluster.byName(await cluster.leaderOf(queue));
      }
      const gatewayNode = connectedNode();
      const node = kind === "connected" ? gatewayNode : leader;
      log(`kill (${kind}): ${node.node} (port ${node.port}); gateway on ${gatewayNode.node}, queue leader ${leader.node}`);
      const t0 = Date.now();
      const { back } = await cluster.killAndRestart(node);
      const flow = await flowAgain(t0, `${kind}${round}`);
      log(`  commands flow again after ${flow} ms`);
      await back;
      const nodeBackMs = Date.now() - t0;
      log(`  node back in the cluster after ${nodeBackMs} ms`);
      kills.push({ kill: kind, node: node.node, gatewayNode: gatewayNode.node, leader: leader.node, commandsFlowAgainMs: flow, nodeBackMs });
      // Let the queue's members catch up before the next kill (a quorum needs 2 of 3).
      await Bun.sleep(3000);
    }
    await Bun.sleep(o.steadyMs);
    running = false;
    await Promise.all(loops);

    // Everything acked / confirmed must arrive: wait (bounded) until it has.
    const upMust = () => devs.map((d) => ({ d, must: [...d.acked].sort((x, y) => x - y) }));
    const upSeen = (d: Dev) => backend.received.filter((r) => r.deviceId === d.id && r.topic === "seq").map((r) => (JSON.parse(r.body) as { n: number }).n);
    /** Messages of `d` the back-end first got as a redelivery from its own queue (see `audit`). */
    const upRedeliveredFirst = (d: Dev) => {
      const firstWasRedelivery = new Map<number, boolean>();
      for (const r of backend.received) {
        if (r.deviceId !== d.id || r.topic !== "seq") continue;
        const n = (JSON.parse(r.body) as { n: number }).n;
        if (!firstWasRedelivery.has(n)) firstWasRedelivery.set(n, r.redelivered);
      }
      return new Set([...firstWasRedelivery].filter(([, redelivered]) => redelivered).map(([n]) => n));
    };
    const settled = () => upMust().every(({ d, must }) => audit(must, upSeen(d)).lost === 0) && devs.every((d) => audit(d.confirmed, d.cmds.map((c) => c.id)).lost === 0);
    for (let i = 0; i < 600 && !settled(); i++) await Bun.sleep(100);

    const sum = (xs: { lost: number; duplicates: number; outOfOrder: number }[]) => xs.reduce((a, b) => ({ lost: a.lost + b.lost, duplicates: a.duplicates + b.duplicates, outOfOrder: a.outOfOrder + b.outOfOrder }), { lost: 0, duplicates: 0, outOfOrder: 0 });
    const up = sum(upMust().map(({ d, must }) => audit(must, upSeen(d), upRedeliveredFirst(d))));
    const redeliveredFirst = devs.reduce((n, d) => n + upRedeliveredFirst(d).size, 0);
    const down = sum(devs.map((d) => audit(d.confirmed, d.cmds.map((c) => c.id))));
    const lostSample = [
      ...upMust().flatMap(({ d, must }) => { const seen = new Set(upSeen(d)); return must.filter((n) => !seen.has(n)).map((n) => `${d.hw}:${n}`); }),
      ...devs.flatMap((d) => { const seen = new Set(d.cmds.map((c) => c.id)); return d.confirmed.filter((id) => !seen.has(id)); }),
    ].slice(0, 20);
    // Where order broke: the first occurrence of n came after a higher one (with what the back-end saw around it).
    for (const d of devs) {
      const seen = backend.received.filter((r) => r.deviceId === d.id && r.topic === "seq");
      const firsts = new Set<number>();
      let max = -1;
      seen.forEach((r, i) => {
        const n = (JSON.parse(r.body) as { n: number }).n;
        if (firsts.has(n)) return;
        firsts.add(n);
        if (n < max) lostSample.push(`order ${d.hw}: ${n} after ${max}; around: ${seen.slice(Math.max(0, i - 6), i + 3).map((x) => `${(JSON.parse(x.body) as { n: number }).n}${x.redelivered ? "r" : ""}@${x.at % 100000}`).join(" ")}`);
        max = Math.max(max, n);
      });
    }
    const gatewayWarnings = g.json().filter((l) => l.level === "warn" || l.level === "error").slice(0, 50).map((l) => JSON.stringify(l).slice(0, 400));
    return {
      lostSample,
      gatewayWarnings,
      up: { acked: devs.reduce((n, d) => n + d.acked.size, 0), ...up, redeliveredFirst },
      down: { confirmed: devs.reduce((n, d) => n + d.confirmed.length, 0), ...down },
      kills,
    };
  } finally {
    running = false;
    for (const d of devs) d.dev.close();
    if (gw) {
      // A gateway that does not stop within a minute is a finding, not a reason to hang the run.
      const stopped = await Promise.race([gw.stop().then(() => true), Bun.sleep(60_000).then(() => false)]);
      if (!stopped) {
        log("gateway did not stop within 60 s after SIGTERM; killed");
        await gw.kill();
      }
      removeDir(gw.dir);
    }
    await Promise.race([backend.close(), Bun.sleep(5000)]);
  }
}
