/**
 * Silent network failures between a gateway and its broker.
 *
 * - {@link BlackholeProxy}: a TCP proxy whose `blackhole()` keeps every socket open but stops
 *   forwarding in both directions: nothing arrives, nothing is reset, closes are not passed on
 *   (a userspace model of a link that drops every packet). Bytes and closes are held in order
 *   and delivered on `heal()`, as TCP retransmission would deliver them once packets flow
 *   again; connections opened during the blackhole are held too and reach the broker on
 *   `heal()`. `down()`/`up()` cut and restore the link like {@link BrokerProxy}.
 * - {@link NetnsLink}: the real thing, when the machine allows it (root, `ip netns`, `tc`): a
 *   network namespace joined to the host by a veth pair on private link-local-style addresses
 *   (10.213.x.0/30, no route off the machine), a `socat` relay inside the namespace in front of
 *   the broker, and `drop()` = a zero-length `pfifo` qdisc on both veth ends, so the kernel
 *   silently discards every packet in both directions (no RST, no ICMP) until `heal()`.
 *   (`iptables`/`nft` are not installed here and `tc` actions/netem are not in this kernel; a
 *   `pfifo limit 0` drops everything it is given, which is all the traffic on that veth.)
 */
import type { Socket, Subprocess, TCPSocketListener } from "bun";
import { randomBytes } from "node:crypto";
import { flushQueued, sendQueued } from "./proxy.ts";

type Event = Uint8Array | "end";
type Dir = { held: Event[]; queue: Uint8Array[] };
type Pair = {
  client: Socket<Side>;
  upstream: Socket<Side> | null;
  connecting: boolean;
  /** client -> broker, broker -> client */
  up: Dir;
  down: Dir;
  clientClosed: boolean;
  upstreamClosed: boolean;
};
type Side = { pair: Pair; which: "client" | "upstream" };

const send = sendQueued;
const flush = flushQueued;

/** A TCP proxy on loopback that can be cut (`down`) or silently blackholed (`blackhole`). */
export class BlackholeProxy {
  private server: TCPSocketListener<Side> | null = null;
  private pairs = new Set<Pair>();
  private holding = false;
  /** Bytes held (not forwarded) during blackholes, both directions. */
  heldBytes = 0;
  /** Connections accepted while blackholed. */
  heldConnections = 0;
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = "127.0.0.1",
  ) {}

  /** Whether the link is blackholed now. */
  get blackholed(): boolean {
    return this.holding;
  }

  /** Starts (or restarts) accepting on the same port. */
  up(): this {
    if (this.server) return this;
    const self = this;
    this.server = Bun.listen<Side>({
      hostname: "127.0.0.1",
      port: this.port,
      socket: {
        open(client) {
          const pair: Pair = {
            client,
            upstream: null,
            connecting: false,
            up: { held: [], queue: [] },
            down: { held: [], queue: [] },
            clientClosed: false,
            upstreamClosed: false,
          };
          client.data = { pair, which: "client" };
          self.pairs.add(pair);
          if (self.holding) self.heldConnections++;
          else self.connectUpstream(pair);
        },
        data(client, d) {
          self.forward(client.data.pair, "up", new Uint8Array(d));
        },
        drain(client) {
          flush(client, client.data.pair.down.queue);
        },
        close(client) {
          const pair = client.data.pair;
          pair.clientClosed = true;
          self.forward(pair, "up", "end");
        },
        error() {},
      },
    });
    this.port = this.server.port;
    return this;
  }

  private connectUpstream(pair: Pair): void {
    if (pair.connecting || pair.upstream) return;
    pair.connecting = true;
    const self = this;
    Bun.connect<Side>({
      hostname: this.targetHost,
      port: this.targetPort,
      socket: {
        open(up) {
          up.data = { pair, which: "upstream" };
          pair.upstream = up;
          pair.connecting = false;
          self.release(pair, "up");
        },
        data(_up, d) {
          self.forward(pair, "down", new Uint8Array(d));
        },
        drain(up) {
          flush(up, pair.up.queue);
        },
        close() {
          pair.upstreamClosed = true;
          self.forward(pair, "down", "end");
        },
        error() {},
      },
    }).catch(() => {
      pair.connecting = false;
      pair.upstreamClosed = true;
      self.forward(pair, "down", "end");
    });
  }

  /** Passes an event on, or holds it while blackholed (or until the upstream is connected). */
  private forward(pair: Pair, dir: "up" | "down", ev: Event): void {
    const d = pair[dir];
    const target = dir === "up" ? pair.upstream : pair.client;
    if (dir === "up" && !target && !pair.connecting && pair.upstreamClosed) {
      // The broker side never connected (refused): nothing can be delivered any more.
      if (pair.clientClosed) this.pairs.delete(pair);
      return;
    }
    if (this.holding || d.held.length > 0 || !target) {
      d.held.push(ev);
      if (ev !== "end" && this.holding) this.heldBytes += ev.length;
      return;
    }
    this.deliver(pair, dir, ev);
  }

  private deliver(pair: Pair, dir: "up" | "down", ev: Event): void {
    const target = dir === "up" ? pair.upstream : pair.client;
    if (!target) return;
    if (ev === "end") {
      target.end();
      if (pair.clientClosed && pair.upstreamClosed) this.pairs.delete(pair);
      return;
    }
    send(target, pair[dir].queue, ev);
  }

  /** Delivers what was held for one direction of `pair`, in order. */
  private release(pair: Pair, dir: "up" | "down"): void {
    if (this.holding) return;
    const target = dir === "up" ? pair.upstream : pair.client;
    if (!target) return;
    const held = pair[dir].held.splice(0);
    for (const ev of held) this.deliver(pair, dir, ev);
  }

  /** Stops forwarding in both directions; sockets stay open, nothing is reset. */
  blackhole(): void {
    this.holding = true;
  }

  /** Forwards again: held bytes and closes are delivered in order, held connects go through. */
  heal(): void {
    if (!this.holding) return;
    this.holding = false;
    for (const pair of [...this.pairs]) {
      if (!pair.upstream && !pair.connecting && !pair.upstreamClosed) {
        if (pair.clientClosed && pair.up.held.every((e) => e === "end")) {
          // The client gave up before it ever reached the broker: nothing to deliver.
          this.pairs.delete(pair);
          continue;
        }
        this.connectUpstream(pair);
      } else this.release(pair, "up");
      this.release(pair, "down");
    }
  }

  /** Cuts every connection (reset) and stops accepting. */
  down(): void {
    this.holding = false;
    this.server?.stop(true);
    this.server = null;
    for (const p of this.pairs) {
      p.client.terminate();
      p.upstream?.terminate();
    }
    this.pairs.clear();
  }

  /** Open proxied connections. */
  get connections(): number {
    return this.pairs.size;
  }

  /** The broker URL through this proxy. */
  url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }
}

function sh(cmd: string[], allowFail = false): { code: number; out: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  const out = (r.stdout.toString() + r.stderr.toString()).trim();
  if (r.exitCode !== 0 && !allowFail) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}): ${out}`);
  return { code: r.exitCode ?? -1, out };
}

/** Why {@link NetnsLink} cannot run here, or null when it can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root";
  for (const tool of ["ip", "tc", "socat"]) if (!Bun.which(tool)) return `${tool} is not installed`;
  const id = randomBytes(2).toString("hex");
  const name = `owsla-probe-${id}`;
  const add = sh(["ip", "netns", "add", name], true);
  if (add.code !== 0) return `ip netns add failed: ${add.out}`;
  try {
    const veth = sh(["ip", "link", "add", `owp${id}h`, "type", "veth", "peer", "name", `owp${id}n`], true);
    if (veth.code !== 0) return `cannot create a veth pair: ${veth.out}`;
    const q = sh(["tc", "qdisc", "replace", "dev", `owp${id}h`, "root", "pfifo", "limit", "0"], true);
    if (q.code !== 0) return `cannot add a pfifo qdisc: ${q.out}`;
    return null;
  } finally {
    sh(["ip", "link", "del", `owp${id}h`], true);
    sh(["ip", "netns", "del", name], true);
  }
}

/**
 * A broker path through a network namespace whose packets can really be dropped.
 * The gateway connects to `host:port` (inside the namespace), where socat relays to the broker
 * on the host side of the veth pair; both legs cross the veth, so `drop()` silences both.
 */
export class NetnsLink {
  readonly ns: string;
  readonly hostIf: string;
  readonly nsIf: string;
  readonly hostAddr: string;
  /** Address the gateway connects to (inside the namespace). */
  readonly host: string;
  readonly port = 5673;
  private relay: Subprocess | null = null;
  dropped = false;

  private constructor(private readonly brokerPort: number) {
    const id = randomBytes(2).toString("hex");
    this.ns = `owsla-chaos-${id}`;
    this.hostIf = `owc${id}h`;
    this.nsIf = `owc${id}n`;
    // A /30 in 10.213.0.0/16 not used on this machine yet.
    const used = sh(["ip", "-4", "-o", "addr"], true).out;
    let x = 0;
    for (let i = 0; i < 64; i++) {
      x = 1 + Math.floor(Math.random() * 250);
      if (!used.includes(`10.213.${x}.`)) break;
    }
    this.hostAddr = `10.213.${x}.1`;
    this.host = `10.213.${x}.2`;
  }

  /** Creates the namespace, veth pair and relay to the broker at 127.0.0.1:`brokerPort`. */
  static async create(brokerPort: number): Promise<NetnsLink> {
    const l = new NetnsLink(brokerPort);
    try {
      sh(["ip", "netns", "add", l.ns]);
      sh(["ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", l.nsIf]);
      sh(["ip", "link", "set", l.nsIf, "netns", l.ns]);
      sh(["ip", "addr", "add", `${l.hostAddr}/30`, "dev", l.hostIf]);
      sh(["ip", "link", "set", l.hostIf, "up"]);
      sh(["ip", "-n", l.ns, "addr", "add", `${l.host}/30`, "dev", l.nsIf]);
      sh(["ip", "-n", l.ns, "link", "set", l.nsIf, "up"]);
      sh(["ip", "-n", l.ns, "link", "set", "lo", "up"]);
      l.relay = Bun.spawn(
        ["ip", "netns", "exec", l.ns, "socat", `TCP-LISTEN:${l.port},bind=${l.host},reuseaddr,fork`, `TCP:${l.hostAddr}:${l.brokerPort}`],
        { stdout: "ignore", stderr: "pipe", stdin: "ignore" },
      );
      for (let i = 0; i < 100; i++) {
        const ok = await Bun.connect({ hostname: l.host, port: l.port, socket: { data() {}, error() {} } }).then(
          (s) => (s.end(), true),
          () => false,
        );
        if (ok) return l;
        await Bun.sleep(50);
      }
      throw new Error("socat relay in the namespace did not start listening");
    } catch (e) {
      l.destroy();
      throw e;
    }
  }

  /** Broker URL through the namespace. */
  url(): string {
    return `amqp://guest:guest@${this.host}:${this.port}`;
  }

  /** Drops every packet on the veth pair, both directions (silently: no RST, no ICMP). */
  drop(): void {
    sh(["tc", "qdisc", "replace", "dev", this.hostIf, "root", "pfifo", "limit", "0"]);
    sh(["ip", "netns", "exec", this.ns, "tc", "qdisc", "replace", "dev", this.nsIf, "root", "pfifo", "limit", "0"]);
    this.dropped = true;
  }

  /** Lets packets through again. */
  heal(): void {
    sh(["tc", "qdisc", "del", "dev", this.hostIf, "root"], true);
    sh(["ip", "netns", "exec", this.ns, "tc", "qdisc", "del", "dev", this.nsIf, "root"], true);
    this.dropped = false;
  }

  /** Packets the drop qdiscs discarded so far (host side + namespace side). */
  droppedPackets(): number {
    const parse = (s: string) => Number(/dropped (\d+)/.exec(s)?.[1] ?? 0);
    return (
      parse(sh(["tc", "-s", "qdisc", "show", "dev", this.hostIf], true).out) +
      parse(sh(["ip", "netns", "exec", this.ns, "tc", "-s", "qdisc", "show", "dev", this.nsIf], true).out)
    );
  }

  /** Removes everything: relay processes in the namespace, the namespace and the veth pair. */
  destroy(): void {
    this.heal();
    const pids = sh(["ip", "netns", "pids", this.ns], true).out.split(/\s+/).filter(Boolean).map(Number);
    if (this.relay?.pid) pids.push(this.relay.pid);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    sh(["ip", "netns", "del", this.ns], true);
    sh(["ip", "link", "del", this.hostIf], true);
  }
}
