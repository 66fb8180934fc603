/**
 * What a RabbitMQ cluster of our own pays, read from outside: per node the Erlang VM's resident
 * memory and CPU time (/proc), and cluster-wide the connections, channels and queues
 * (rabbitmqctl). Used by scripts/cluster/scale-bench.ts.
 */
import { readFileSync } from "node:fs";
import type { BrokerCluster } from "../../tests/helpers/broker-cluster.ts";

/** One reading of the cluster. */
export interface ClusterReading {
  at: number;
  /** Per node: VM resident memory, the VM's own count of allocated bytes, CPU seconds so far. */
  nodes: { node: string; rssBytes: number; erlangBytes: number; cpuS: number }[];
  connections: number;
  channels: number;
  queues: { name: string; type: string; messages: number; memory: number }[];
}

const TICK = 100; // clock ticks per second (Linux default)

function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICK; // utime, stime (fields 14, 15)
  } catch {
    return 0;
  }
}

function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function count(cluster: BrokerCluster, what: string): Promise<number> {
  const out = await cluster.alive().ctlOk([what, "pid", "--no-table-headers", "--quiet"], 120_000);
  return out.split("\n").filter((l) => l.trim()).length;
}

/** Reads the cluster now. */
export async function readCluster(cluster: BrokerCluster): Promise<ClusterReading> {
  const nodes = await Promise.all(
    cluster.nodes.map(async (n) => {
      const pid = n.pid();
      // erlang:memory(total): what the VM has allocated, without the allocator's cached pages.
      const mem = pid ? await n.ctl(["eval", "erlang:memory(total)."], 60_000) : { code: 1, out: "" };
      return { node: n.node, rssBytes: pid ? rss(pid) : 0, erlangBytes: mem.code === 0 ? Number(mem.out.trim()) || 0 : 0, cpuS: pid ? cpuSeconds(pid) : 0 };
    }),
  );
  const qs = await cluster.alive().ctlOk(["list_queues", "name", "type", "messages", "memory", "--no-table-headers", "--quiet"], 120_000);
  const queues = qs
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((x) => x.length >= 4)
    .map(([name, type, messages, memory]) => ({ name: name!, type: type!, messages: Number(messages), memory: Number(memory) }));
  return { at: Date.now(), nodes, connections: await count(cluster, "list_connections"), channels: await count(cluster, "list_channels"), queues };
}

/** Totals of a reading: memory of all nodes, CPU of all nodes, queue memory. */
export function totals(r: ClusterReading): { rssBytes: number; erlangBytes: number; cpuS: number; queueMemory: number; queues: number } {
  return {
    rssBytes: r.nodes.reduce((n, x) => n + x.rssBytes, 0),
    erlangBytes: r.nodes.reduce((n, x) => n + x.erlangBytes, 0),
    cpuS: r.nodes.reduce((n, x) => n + x.cpuS, 0),
    queueMemory: r.queues.reduce((n, q) => n + q.memory, 0),
    queues: r.queues.length,
  };
}
