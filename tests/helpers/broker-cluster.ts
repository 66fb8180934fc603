/**
 * A 3-node RabbitMQ cluster of our own on this machine: separate node names, AMQP and
 * distribution ports, data directories, one Erlang cookie, joined with `rabbitmqctl
 * join_cluster`. Nodes can be SIGKILLed and booted again (they rejoin from their data).
 */
import { randomBytes } from "node:crypto";
import { PrivateBroker } from "./private-broker.ts";

/** A cluster of {@link PrivateBroker} nodes. */
export class BrokerCluster {
  private constructor(readonly nodes: PrivateBroker[]) {}

  /** Boots `size` nodes and joins them into one cluster (~30-60 s on this box). */
  static async start(size = 3, tag = "cl"): Promise<BrokerCluster> {
    const cookie = randomBytes(20).toString("hex");
    const nodes: PrivateBroker[] = [];
    // One after the other: booting three VMs at once on two shared cores times out.
    for (let i = 0; i < size; i++) nodes.push(await PrivateBroker.start({ tag: `${tag}${i + 1}`, cookie, definitions: false, startTimeoutMs: 120_000 }));
    const first = nodes[0]!;
    for (const n of nodes.slice(1)) {
      await n.ctlOk(["stop_app"]);
      await n.ctlOk(["reset"]);
      await n.ctlOk(["join_cluster", first.node]);
      await n.startApp();
    }
    const c = new BrokerCluster(nodes);
    await c.waitRunning(size);
    return c;
  }

  /** broker.url for the gateway: every node, comma-separated. */
  urls(): string {
    return this.nodes.map((n) => n.url()).join(",");
  }

  /** The node listening on AMQP port `port`. */
  byPort(port: number): PrivateBroker {
    const n = this.nodes.find((x) => x.port === port);
    if (!n) throw new Error(`No cluster node on port ${port}`);
    return n;
  }

  /** The node whose Erlang name is `name`. */
  byName(name: string): PrivateBroker {
    const n = this.nodes.find((x) => x.node === name);
    if (!n) throw new Error(`No cluster node named ${name}`);
    return n;
  }

  /** A node that runs now (for rabbitmqctl queries). */
  alive(): PrivateBroker {
    const n = this.nodes.find((x) => x.pid() !== null);
    if (!n) throw new Error("No cluster node is running");
    return n;
  }

  /** Erlang name of the node leading quorum queue `queue`. */
  async leaderOf(queue: string): Promise<string> {
    const out = await this.alive().ctlOk(["list_queues", "name", "leader", "--no-table-headers", "--quiet"]);
    for (const line of out.split("\n")) {
      const [name, leader] = line.trim().split(/\s+/);
      if (name === queue && leader) return leader;
    }
    throw new Error(`Queue ${queue} not found (or not a quorum queue):\n${out}`);
  }

  /**
   * Closes every client connection to `node`'s AMQP port (`rabbitmqctl close_connection`), as a
   * broker does when it shuts a connection: clients with several URLs move to another node.
   * Returns how many were closed.
   */
  async closeConnectionsTo(node: PrivateBroker, why: string): Promise<number> {
    const out = await this.alive().ctlOk(["list_connections", "pid", "port", "--no-table-headers", "--quiet"]);
    let closed = 0;
    for (const line of out.split("\n")) {
      const [pid, port] = line.trim().split(/\s+/);
      if (!pid?.startsWith("<") || Number(port) !== node.port) continue;
      const r = await this.alive().ctl(["close_connection", pid, why]);
      if (r.code === 0) closed++;
    }
    return closed;
  }

  /** Waits until `count` nodes report running in the cluster. */
  async waitRunning(count: number, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      const r = await this.alive().ctl(["cluster_status", "--formatter", "json"]);
      if (r.code === 0) {
        try {
          const running = (JSON.parse(r.out) as { running_nodes?: string[] }).running_nodes ?? [];
          if (running.length >= count) return;
          last = running.join(",");
        } catch {
          last = r.out.slice(-200);
        }
      }
      await Bun.sleep(500);
    }
    throw new Error(`Cluster did not reach ${count} running nodes within ${timeoutMs} ms (running: ${last})`);
  }

  /** SIGKILLs `node`, then boots it again in the background; resolves when it is back in the cluster. */
  async killAndRestart(node: PrivateBroker): Promise<{ back: Promise<void> }> {
    await node.sigkill();
    const back = (async () => {
      await node.boot(180_000);
      await this.waitRunning(this.nodes.length, 180_000);
    })();
    return { back };
  }

  /** Stops every node and deletes their files. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
