/**
 * Cross-worker forwarding latency, measured end to end from the outside.
 *
 * Starts a gateway with 2 workers, connects devices (some held by each worker, read from the
 * device table), and publishes commands one at a time from a back-end with `performance.now()`
 * in the body; the same process holds the device sockets, so publish -> device receipt needs
 * no clock sync. Each command is classed by which worker consumed it from the broker:
 *
 * - local: the consumer holds the device and writes it to the socket;
 * - cross: the other worker consumed it and forwarded it over the worker mesh.
 *
 * Which worker consumed a command is not visible from outside, so the benchmark pins it down:
 * the broker hands a classic queue's messages to its two consumers strictly in turn when one
 * message is in flight at a time. A probe (a command for an unknown device) is dead-lettered by
 * whichever worker took it, and that worker logs the rejection with its id; a block of commands
 * is framed by two probes, the commands in between are assigned by alternation, and a block
 * whose closing probe does not land where alternation predicts is discarded.
 *
 * Added forwarding latency = cross - local, per percentile (local is the in-run baseline).
 *
 * Usage: bun scripts/bench-forward.ts [--samples 6000] [--block 50] [--gap-ms 4] [--devices 4]
 * Prints one JSON object.
 */
import { Database } from "bun:sqlite";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "bun";
import { removeDir, startGateway } from "../tests/helpers/gateway.ts";
import { TestBackend } from "../tests/helpers/backend.ts";

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v < 0) throw new Error(`Invalid --${name} ${process.argv[i + 1]}: expected a non-negative number`);
  return v;
}

/** Total commands to time (local + cross). */
const SAMPLES = flag("samples", 6000);
/** Commands between two probes. */
const BLOCK = flag("block", 50);
/** Pause after each receipt so the previous command's store commit and ack are done, in ms. */
const GAP_MS = flag("gap-ms", 4);
/** Devices per worker. */
const PER_WORKER = flag("devices", 2);

/** Percentile `p` (0..100) of ascending `sorted`, linear interpolation between closest ranks. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const round = (x: number) => Math.round(x * 1000) / 1000;

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
    p50: round(percentile(s, 50)),
    p90: round(percentile(s, 90)),
    p99: round(percentile(s, 99)),
    p999: round(percentile(s, 99.9)),
    max: round(s.at(-1)!),
  };
}

/** A bare device: hello, then timestamps every `cmd` on arrival and acks it. */
class Device {
  id = "";
  worker = -1;
  private buf = "";
  private welcomed!: () => void;
  private socket!: Socket<undefined>;
  /** Called with (sequence number from the body, latency in ms) for each command. */
  onCmd: (k: number, ms: number) => void = () => {};

  static async connect(port: number, hw: string, token: string): Promise<Device> {
    const d = new Device();
    const welcome = new Promise<void>((r) => (d.welcomed = r));
    d.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: { data: (_s, data) => d.onData(data), close: () => {}, error: () => {} },
    });
    d.socket.setNoDelay(true);
    d.socket.write(JSON.stringify({ op: "hello", v: 1, device: hw, token }) + "\n");
    await welcome;
    return d;
  }

  private onData(data: Buffer): void {
    const now = performance.now();
    this.buf += data.toString("utf8");
    let i: number;
    while ((i = this.buf.indexOf("\n")) >= 0) {
      const f = JSON.parse(this.buf.slice(0, i));
      this.buf = this.buf.slice(i + 1);
      if (f.op === "welcome") {
        this.id = f.id;
        this.welcomed();
      } else if (f.op === "cmd") {
        this.socket.write(JSON.stringify({ op: "ack", ref: f.id }) + "\n");
        this.onCmd(f.body.k, now - f.body.t0);
      }
    }
  }

  close(): void {
    this.socket.end();
  }
}

const dir = mkdtempSync(join(tmpdir(), "owsla-bench-"));
/** What to stop at the end, whatever happens. */
let started: { gw: Awaited<ReturnType<typeof startGateway>>; backend?: TestBackend } | null = null;
const devices: Device[] = [];
try {
  const gw = await startGateway({ dir, gatewayId: "bench-fwd", args: ["--workers", "2"] });
  started = { gw };
  const backend = (started.backend = await new TestBackend(gw.prefix).start("none.#"));
  // Devices until each worker holds PER_WORKER of them (the kernel picks the worker).
  const byWorker: Device[][] = [[], []];
  for (let i = 0; byWorker.some((w) => w.length < PER_WORKER); i++) {
    if (i > 200) throw new Error("Could not get devices onto both workers after 200 connections");
    const hw = `fwd-${i}`;
    const d = await Device.connect(gw.port, hw, gw.token(hw));
    devices.push(d);
    for (let t = 0; t < 100 && d.worker < 0; t++) {
      const w = (await gw.connectedDevices()).get(d.id);
      if (w !== undefined) d.worker = w;
      else await Bun.sleep(10);
    }
    if (d.worker >= 0 && byWorker[d.worker]!.length < PER_WORKER) byWorker[d.worker]!.push(d);
  }

  const down = `${gw.prefix}owsla.down`;
  let rejectedSeen = 0;
  /** Sends a probe and returns the id of the worker that consumed (and dead-lettered) it. */
  const probe = async (): Promise<number> => {
    await backend.ch.basicPublish(down, gw.gatewayId, "{}", { headers: { device_id: crypto.randomUUID() } });
    for (let t = 0; t < 1000; t++) {
      const rejected = gw.json().filter((l) => typeof l.msg === "string" && l.msg.startsWith("Rejected command"));
      if (rejected.length > rejectedSeen) {
        rejectedSeen = rejected.length;
        return rejected.at(-1)!.worker as number;
      }
      await Bun.sleep(2);
    }
    throw new Error("No worker logged the rejection of a probe within 2 s");
  };

  /** Publishes command `k` for `d` and resolves with its latency once it arrived. */
  const timeOne = (d: Device, k: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Command ${k} did not reach device ${d.id} within 5 s`)), 5000);
      d.onCmd = (got, ms) => {
        if (got !== k) return; // a re-send of an earlier command
        clearTimeout(timer);
        d.onCmd = () => {};
        resolve(ms);
      };
      const t0 = performance.now();
      void backend.ch.basicPublish(down, gw.gatewayId, JSON.stringify({ k, t0 }), { headers: { device_id: d.id } });
    });

  // Warm-up: JIT, IPC channels, SQLite page cache.
  for (let k = 0; k < 200; k++) await timeOne(byWorker[k % 2]![0]!, -1 - k);

  const local: number[] = [];
  const cross: number[] = [];
  let blocks = 0;
  let discarded = 0;
  let k = 0;
  let consumer = await probe();
  while (local.length + cross.length < SAMPLES) {
    const block: { ms: number; local: boolean }[] = [];
    for (let i = 0; i < BLOCK; i++) {
      consumer = 1 - consumer; // the next message goes to the other consumer
      const holder = Math.floor(i / 2) % 2; // target worker pattern 0,0,1,1: every (consumer, holder) pair
      const d = byWorker[holder]![(k >> 2) % PER_WORKER]!;
      block.push({ ms: await timeOne(d, k++), local: consumer === holder });
      if (GAP_MS > 0) await Bun.sleep(GAP_MS);
    }
    const predicted = 1 - consumer;
    consumer = await probe();
    blocks++;
    if (consumer !== predicted) {
      discarded++;
      continue;
    }
    for (const s of block) (s.local ? local : cross).push(s.ms);
  }

  const l = summary(local);
  const c = summary(cross);
  const result = {
    bench: "forward",
    what: "publish -> device receipt of one command at a time; cross = consumed by the worker not holding the device, forwarded over the worker mesh (unix sockets, via the device home worker)",
    workers: 2,
    cpus: navigator.hardwareConcurrency,
    bun: Bun.version,
    gap_ms: GAP_MS,
    blocks,
    blocks_discarded: discarded,
    local_ms: l,
    cross_ms: c,
    added_forwarding_ms: {
      p50: round(c.p50 - l.p50),
      p90: round(c.p90 - l.p90),
      p99: round(c.p99 - l.p99),
      p999: round(c.p999 - l.p999),
      mean: round(c.mean - l.mean),
    },
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  for (const d of devices) d.close();
  if (started) {
    const { gw, backend } = started;
    const stopped = await Promise.race([gw.stop(), Bun.sleep(40_000).then(() => null)]);
    if (stopped === null) await gw.kill();
    await backend?.stop([gw.gatewayId]);
  }
  removeDir(dir);
}
