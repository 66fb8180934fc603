/**
 * Shared pieces of the chaos tests (tests/chaos-*.test.ts) and their full-size scripts
 * (scripts/chaos/*.ts): load devices that number their messages, a back-end that survives
 * broker restarts and records everything, a commander with publisher confirms, and the
 * accounting (lost / duplicated / reordered) plus probes of the gateway (logs, /readyz,
 * /metrics, RSS).
 */
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { Database } from "bun:sqlite";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestDevice } from "./device.ts";
import { GatewayProcess, freePort } from "./gateway.ts";
import { parseExposition, sumOverWorkers } from "../../src/api/prometheus-parse.ts";

type ConfirmEntry = [number, (v: unknown) => void, (e: unknown) => void];

/**
 * `ch.basicPublish` on a confirm-mode channel, minus an amqp-client 4.1.1 quirk: it creates the
 * confirm promise before the frames are written and chains it only after the write, so when
 * the broker dies mid-publish the channel's close rejects a promise nothing awaits yet, and
 * `bun test` fails the running test on that unhandled rejection (process handlers do not
 * help there). The entry the library queues is rewired to resolve with the failure, which is
 * rethrown here: the caller sees the same outcome, and no promise is ever left rejected.
 */
async function publishConfirmed(ch: AMQPChannel, ...args: Parameters<AMQPChannel["basicPublish"]>): Promise<void> {
  const queue = (ch as unknown as { unconfirmedPublishes: ConfirmEntry[] }).unconfirmedPublishes;
  const at = queue.length;
  const sent = ch.basicPublish(...args);
  const entry = queue[at];
  if (entry) entry[2] = (err) => entry[1]({ failed: err });
  const r = (await sent) as unknown;
  if (typeof r === "object" && r !== null && "failed" in r) throw (r as { failed: unknown }).failed;
}

/** Bearer token the chaos gateways are started with (so no token file is needed). */
export const API_TOKEN = "chaos-api-token-0123456789abcdef";

/** Where a device connects. */
export type Target = () => { host: string; port: number };

/**
 * A device that keeps reconnecting and publishes numbered messages (`body.n`, `ref` = n) at a
 * fixed pace, without waiting for acks (fire and forget, as a sensor would). Records which
 * numbers the gateway acknowledged or refused, and acks every command.
 */
export class LoadDevice {
  /** n of every message the gateway acked. */
  readonly acked = new Set<number>();
  /** n of messages refused with server_busy. */
  readonly busy = new Set<number>();
  /** n of messages refused with rate_limited. */
  readonly limited = new Set<number>();
  /** Other error codes received, counted. */
  readonly errors = new Map<string, number>();
  /** Command ids received. */
  readonly cmds = new Set<string>();
  cmdDeliveries = 0;
  /** Messages sent (n of the next one). */
  sent = 0;
  connects = 0;
  deviceId = "";
  lastAckAt = 0;
  private running = true;
  private paused = false;
  private dev: TestDevice | null = null;
  private readonly loop: Promise<void>;

  constructor(
    readonly hardwareId: string,
    private readonly token: string,
    private readonly target: Target,
    private readonly everyMs = 20,
    private readonly padBytes = 0,
  ) {
    this.loop = this.run();
  }

  /** Whether the device has a welcomed connection now. */
  get connected(): boolean {
    return this.dev !== null && !this.dev.closed && this.deviceId !== "";
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const t = this.target();
        const dev = await TestDevice.connect(t.port, t.host);
        this.dev = dev;
        const w = await dev.hello({ device: this.hardwareId, token: this.token });
        this.deviceId = w.id;
        this.connects++;
        const reader = (async () => {
          while (!dev.closed) {
            const f = await dev.next(() => true, 3_600_000);
            if (f.op === "ack") {
              this.acked.add(Number(f.ref));
              this.lastAckAt = Date.now();
            } else if (f.op === "cmd") {
              this.cmds.add(f.id);
              this.cmdDeliveries++;
              dev.send({ op: "ack", ref: f.id });
            } else if (f.op === "error") {
              if (f.code === "server_busy" && f.ref !== undefined) this.busy.add(Number(f.ref));
              else if (f.code === "rate_limited" && f.ref !== undefined) this.limited.add(Number(f.ref));
              else this.errors.set(f.code, (this.errors.get(f.code) ?? 0) + 1);
            }
          }
        })().catch(() => {});
        while (this.running && !dev.closed) {
          if (!this.paused) {
            const n = this.sent++;
            dev.send({ op: "pub", topic: "load", body: this.padBytes > 0 ? { n, pad: "x".repeat(this.padBytes) } : { n }, ref: String(n) });
          }
          await Bun.sleep(this.everyMs);
        }
        if (!this.running && !dev.closed) {
          await Bun.sleep(300);
          dev.close();
        }
        await reader;
      } catch {
        // Refused or dropped: retry shortly.
      }
      this.dev = null;
      if (this.running) await Bun.sleep(100 + Math.random() * 150);
    }
  }

  /** Stops publishing (the connection stays, commands keep arriving). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Stops for good and closes the connection. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** Starts `count` load devices on gateway `gw` (hardware ids `<tag>-<i>`). */
export function loadDevices(gw: GatewayProcess, tag: string, count: number, everyMs: number, padBytes = 0, target?: Target): LoadDevice[] {
  const t: Target = target ?? (() => ({ host: "127.0.0.1", port: gw.port }));
  return Array.from({ length: count }, (_, i) => new LoadDevice(`${tag}-${i}`, gw.token(`${tag}-${i}`), t, everyMs, padBytes));
}

/** Waits until every device has been welcomed at least once. */
export async function waitConnected(devices: LoadDevice[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (devices.some((d) => !d.connected)) {
    if (Date.now() > deadline) throw new Error(`${devices.filter((d) => !d.connected).length} devices not connected after ${timeoutMs} ms`);
    await Bun.sleep(50);
  }
}

/** A message the back-end received. */
export interface Rec {
  device: string;
  topic: string;
  n: number;
  messageId: string;
  redelivered: boolean;
  at: number;
}

/**
 * A back-end consuming a durable queue bound to `<prefix>owsla.up` with manual acks; it
 * reconnects by itself when the broker goes away (so nothing routed while it is away is lost).
 */
export class ChaosBackend {
  readonly received: Rec[] = [];
  presence = 0;
  private client: AMQPClient | null = null;
  private ch: AMQPChannel | null = null;
  private running = true;
  private reconnecting: Promise<void> | null = null;
  connects = 0;

  /**
   * `declare`: declare the exchange, the queue and the binding (when the broker's definitions
   * do not already provide them).
   */
  constructor(
    readonly url: string,
    readonly prefix: string,
    readonly queue: string,
    private readonly declare = false,
  ) {}

  async start(): Promise<this> {
    await this.connect();
    return this;
  }

  private async connect(): Promise<void> {
    const client = new AMQPClient(this.url);
    client.onerror = () => {};
    await client.connect();
    const ch = await client.channel();
    if (this.declare) {
      await ch.exchangeDeclare(`${this.prefix}owsla.up`, "topic", { durable: true });
      await ch.queueDeclare(this.queue, { durable: true });
      await ch.queueBind(this.queue, `${this.prefix}owsla.up`, "#");
    }
    await ch.basicQos(2000);
    await ch.basicConsume(this.queue, { noAck: false }, (msg) => {
      const h = (msg.properties.headers ?? {}) as Record<string, unknown>;
      const topic = String(h.topic ?? "");
      if (topic === "$presence") this.presence++;
      else {
        let n = -1;
        try {
          n = Number((JSON.parse(msg.bodyString() ?? "null") as { n?: number } | null)?.n ?? -1);
        } catch {}
        this.received.push({ device: String(h.device_id ?? ""), topic, n, messageId: msg.properties.messageId ?? "", redelivered: msg.redelivered, at: Date.now() });
      }
      msg.ack().catch(() => {});
    });
    client.ondisconnect = () => {
      if (this.running) this.reconnect();
    };
    this.client = client;
    this.ch = ch;
    this.connects++;
  }

  private reconnect(): void {
    this.reconnecting ??= (async () => {
      while (this.running) {
        await Bun.sleep(200);
        try {
          await this.connect();
          break;
        } catch {}
      }
      this.reconnecting = null;
    })();
  }

  /** Stops consuming; deletes the queue when asked. */
  async stop(deleteQueue = false): Promise<void> {
    this.running = false;
    if (deleteQueue) await this.ch?.queueDelete(this.queue).catch(() => {});
    await this.client?.close().catch(() => {});
  }
}

/**
 * A back-end publishing commands to devices with publisher confirms (on its own connection);
 * `confirmed` holds every command the broker accepted.
 */
export class Commander {
  /** command id -> device UUID, for every publish the broker confirmed. */
  readonly confirmed = new Map<string, string>();
  attempts = 0;
  failures = 0;
  private running = false;
  private paused = false;
  private loop: Promise<void> | null = null;
  private client: AMQPClient | null = null;
  private ch: AMQPChannel | null = null;
  private seq = 0;
  /** Time the last confirm arrived. */
  lastConfirmAt = 0;

  constructor(
    readonly url: string,
    readonly prefix: string,
    readonly gatewayId: string,
    readonly tag = "cmd",
  ) {}

  private opening: Promise<AMQPChannel> | null = null;

  /** The confirm-mode channel, (re)opened once however many sends wait for it. */
  private channel(): Promise<AMQPChannel> {
    if (this.ch && !this.ch.closed && this.client && !this.client.closed) return Promise.resolve(this.ch);
    this.opening ??= (async () => {
      try {
        this.client?.close().catch(() => {});
        const client = new AMQPClient(this.url);
        client.onerror = () => {};
        await client.connect();
        const ch = await client.channel();
        await ch.confirmSelect();
        this.client = client;
        this.ch = ch;
        return ch;
      } finally {
        this.opening = null;
      }
    })();
    return this.opening;
  }

  /** Publishes one command for `deviceId`; resolves true once the broker confirmed it. */
  async send(deviceId: string): Promise<boolean> {
    const id = `${this.tag}-${this.seq++}`;
    this.attempts++;
    try {
      const ch = await this.channel();
      await publishConfirmed(ch, `${this.prefix}owsla.down`, this.gatewayId, JSON.stringify({ id }), {
        headers: { device_id: deviceId, topic: "chaos" },
        messageId: id,
        deliveryMode: 2,
        contentType: "application/json",
      });
      this.confirmed.set(id, deviceId);
      this.lastConfirmAt = Date.now();
      return true;
    } catch {
      this.failures++;
      this.ch = null;
      return false;
    }
  }

  /** Keeps commanding the devices round-robin, one command every `everyMs`. */
  start(devices: () => LoadDevice[], everyMs = 20): this {
    this.running = true;
    this.loop = (async () => {
      let i = 0;
      while (this.running) {
        const ds = devices().filter((d) => d.deviceId);
        if (!this.paused && ds.length > 0) {
          const ok = await this.send(ds[i++ % ds.length]!.deviceId);
          if (!ok) await Bun.sleep(200);
        }
        await Bun.sleep(everyMs);
      }
    })();
    return this;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client?.close().catch(() => {});
  }
}

/** What a scenario did to the messages. */
export interface Tally {
  /** Device messages the gateway acknowledged. */
  acked: number;
  /** Of those, how many the back-end has not received. */
  lost: number;
  lostSample: string[];
  /** Distinct device messages the back-end received. */
  delivered: number;
  /** Extra deliveries of a message id the gateway published more than once (re-sends). */
  duplicated: number;
  /** Extra deliveries caused by the back-end's own connection loss (broker redelivery). */
  backendRedeliveries: number;
  /** Messages that arrived after a later message of the same device. */
  reordered: number;
  /** A few of them: `<hardware id>#<n> after #<highest n seen before>`. */
  reorderedSample: string[];
  /** Messages refused with server_busy / rate_limited. */
  refusedBusy: number;
  refusedLimited: number;
  /** Commands the broker confirmed to the back-end. */
  cmdsConfirmed: number;
  /** Of those, how many never reached their device. */
  cmdsLost: number;
  cmdsLostSample: string[];
  /** Deliveries of a command beyond the first (at-least-once repeats). */
  cmdsRepeated: number;
}

/** Accounting over everything so far. */
export function tally(devices: LoadDevice[], backend: ChaosBackend, commander?: Commander): Tally {
  const byDev = new Map<string, Rec[]>();
  const seen = new Map<string, number>();
  let duplicated = 0;
  let backendRedeliveries = 0;
  for (const r of backend.received) {
    if (r.topic !== "load") continue;
    const k = seen.get(r.messageId) ?? 0;
    seen.set(r.messageId, k + 1);
    if (k > 0) {
      if (r.redelivered) backendRedeliveries++;
      else duplicated++;
      continue;
    }
    let l = byDev.get(r.device);
    if (!l) byDev.set(r.device, (l = []));
    l.push(r);
  }
  let acked = 0;
  let lost = 0;
  let delivered = 0;
  let reordered = 0;
  const reorderedSample: string[] = [];
  const lostSample: string[] = [];
  let refusedBusy = 0;
  let refusedLimited = 0;
  for (const d of devices) {
    const recs = byDev.get(d.deviceId) ?? [];
    const got = new Set<number>();
    let max = -1;
    for (const r of recs) {
      got.add(r.n);
      if (r.n < max) {
        reordered++;
        if (reorderedSample.length < 5) reorderedSample.push(`${d.hardwareId}#${r.n} after #${max}`);
      } else max = r.n;
    }
    delivered += got.size;
    acked += d.acked.size;
    refusedBusy += d.busy.size;
    refusedLimited += d.limited.size;
    for (const n of d.acked) {
      if (!got.has(n)) {
        lost++;
        if (lostSample.length < 10) lostSample.push(`${d.hardwareId}#${n}`);
      }
    }
  }
  let cmdsLost = 0;
  let cmdsRepeated = 0;
  const cmdsLostSample: string[] = [];
  if (commander) {
    const byId = new Map(devices.map((d) => [d.deviceId, d]));
    for (const [id, dev] of commander.confirmed) {
      if (!byId.get(dev)?.cmds.has(id)) {
        cmdsLost++;
        if (cmdsLostSample.length < 10) cmdsLostSample.push(id);
      }
    }
    for (const d of devices) cmdsRepeated += d.cmdDeliveries - d.cmds.size;
  }
  return {
    acked,
    lost,
    lostSample,
    delivered,
    duplicated,
    backendRedeliveries,
    reordered,
    reorderedSample,
    refusedBusy,
    refusedLimited,
    cmdsConfirmed: commander?.confirmed.size ?? 0,
    cmdsLost,
    cmdsLostSample,
    cmdsRepeated,
  };
}

/** Per-scenario numbers: the difference between two tallies (lost is the latest value). */
export function delta(now: Tally, before: Tally | null): Tally {
  if (!before) return now;
  const keys = ["acked", "delivered", "duplicated", "backendRedeliveries", "reordered", "refusedBusy", "refusedLimited", "cmdsConfirmed", "cmdsRepeated"] as const;
  const out = { ...now };
  for (const k of keys) out[k] = now[k] - before[k];
  return out;
}

/**
 * Waits until every acked message reached the back-end and every confirmed command reached its
 * device; returns the tally and how long that took (ms). Does not throw on timeout.
 */
export async function waitSettled(
  devices: LoadDevice[],
  backend: ChaosBackend,
  commander: Commander | undefined,
  timeoutMs = 30_000,
): Promise<{ tally: Tally; ms: number; settled: boolean }> {
  const start = Date.now();
  let t = tally(devices, backend, commander);
  // Stop early once nothing has moved for `quietMs` (what is missing then stays missing).
  const quietMs = 6000;
  const progress = () => backend.received.length + devices.reduce((s, d) => s + d.cmdDeliveries, 0);
  let last = progress();
  let lastChange = Date.now();
  while ((t.lost > 0 || t.cmdsLost > 0) && Date.now() - start < timeoutMs && Date.now() - lastChange < quietMs) {
    await Bun.sleep(100);
    t = tally(devices, backend, commander);
    const p = progress();
    if (p !== last) {
      last = p;
      lastChange = Date.now();
    }
  }
  return { tally: t, ms: Date.now() - start, settled: t.lost === 0 && t.cmdsLost === 0 };
}

/** Options for {@link startChaosGateway}. */
export interface ChaosGatewayOptions {
  brokerUrl: string;
  prefix: string;
  gatewayId: string;
  workers?: number;
  heartbeatS?: number;
  reconnectMaxMs?: number;
  dir?: string;
  args?: string[];
  waitBroker?: boolean;
}

/**
 * Starts a gateway for chaos runs: JSON debug logs, fixed API token, its own broker URL.
 * Retries on a fresh port when the start fails (another process on this busy machine may take
 * the free port between the probe and the gateway's bind).
 */
export async function startChaosGateway(o: ChaosGatewayOptions): Promise<GatewayProcess> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "owsla-chaos-gw-"));
  const args = [
    "--broker", o.brokerUrl,
    "--workers", String(o.workers ?? 2),
    "--broker-heartbeat-s", String(o.heartbeatS ?? 2),
    "--broker-reconnect-max-ms", String(o.reconnectMaxMs ?? 2000),
    "--api-token", API_TOKEN,
    "--log-level", "debug",
    ...(o.args ?? []),
  ];
  let lastErr: Error | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const gw = new GatewayProcess(dir, o.gatewayId, o.prefix, freePort(), args, {});
    try {
      await gw.start(o.waitBroker !== false);
      return gw;
    } catch (e) {
      lastErr = e as Error;
      if (gw.proc) await gw.kill().catch(() => {});
    }
  }
  throw lastErr!;
}

/** A parsed gateway log line. */
export type LogLine = Record<string, any> & { t: string; msg: string };

/** Log lines whose message starts with `prefix`, logged at or after `sinceMs`. */
export function logsSince(gw: GatewayProcess, prefix: string, sinceMs = 0): LogLine[] {
  return (gw.json() as LogLine[]).filter((l) => typeof l.msg === "string" && l.msg.startsWith(prefix) && Date.parse(l.t) >= sinceMs);
}

/** Waits for `count` log lines starting with `prefix` at or after `sinceMs` (per distinct worker when `perWorker`). */
export async function waitLog(gw: GatewayProcess, prefix: string, sinceMs: number, count: number, timeoutMs: number, perWorker = true): Promise<LogLine[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = logsSince(gw, prefix, sinceMs);
    const n = perWorker ? new Set(lines.map((l) => l.worker)).size : lines.length;
    if (n >= count) return lines;
    if (Date.now() > deadline) throw new Error(`Gateway logged "${prefix}" ${n} times (want ${count}) within ${timeoutMs} ms; last lines:\n${gw.logs.slice(-15).join("\n")}`);
    await Bun.sleep(50);
  }
}

/** Port of the gateway's control API (from its "Control API listening" line). */
export function apiPort(gw: GatewayProcess): number {
  const line = logsSince(gw, "Control API listening").at(-1);
  const m = line ? /:(\d+)\/?$/.exec(String(line.url)) : null;
  if (!m) throw new Error("No 'Control API listening' line in the gateway log");
  return Number(m[1]);
}

/** GET `path` on the gateway's control API with the chaos token. */
export async function api(gw: GatewayProcess, path: string, timeoutMs = 5000): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${apiPort(gw)}${path}`, {
    headers: { authorization: `Bearer ${API_TOKEN}` },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body };
}

/** Sum of a metric over the gateway's processes (every series of that name and no other labels), or null. */
export async function metric(gw: GatewayProcess, name: string): Promise<number | null> {
  const { status, body } = await api(gw, "/metrics");
  if (status !== 200) return null;
  const sums = sumOverWorkers(parseExposition(String(body)));
  let sum: number | null = null;
  for (const [series, v] of sums) {
    if ((series === name || series.startsWith(name + "{")) && Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

/** A metric's gateway-wide values by label set (worker label dropped), e.g. {"reason=\"rejected\"": 3}. */
export async function metricByLabel(gw: GatewayProcess, name: string): Promise<Record<string, number>> {
  const { status, body } = await api(gw, "/metrics");
  const out: Record<string, number> = {};
  if (status !== 200) return out;
  for (const [series, v] of sumOverWorkers(parseExposition(String(body)))) {
    if (series.startsWith(name + "{")) out[series.slice(name.length + 1, -1)] = v;
  }
  return out;
}

/** Resident memory of the gateway's process tree (supervisor + workers), in MiB. */
export function rssMiB(gw: GatewayProcess): number {
  let kb = 0;
  for (const pid of [gw.proc.pid, ...gw.workerPids()]) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      kb += Number(m?.[1] ?? 0);
    } catch {}
  }
  return Math.round(kb / 1024);
}

export { integrity, outboxRows } from "./store-files.ts";

/** Samples `fn` every `everyMs` until stopped; returns the max. */
export function sampler(fn: () => number | null | Promise<number | null>, everyMs = 250): { stop(): Promise<number>; max: number; last: number } {
  const s = { max: 0, last: 0, running: true, stop: async () => 0 };
  const loop = (async () => {
    while (s.running) {
      try {
        const v = await fn();
        if (v !== null) {
          s.last = v;
          if (v > s.max) s.max = v;
        }
      } catch {}
      await Bun.sleep(everyMs);
    }
  })();
  s.stop = async () => {
    s.running = false;
    await loop;
    return s.max;
  };
  return s;
}

/** Milliseconds between consecutive timestamps of `lines` (e.g. reconnect attempts). */
export function gaps(lines: LogLine[]): number[] {
  const ts = lines.map((l) => Date.parse(l.t)).sort((a, b) => a - b);
  return ts.slice(1).map((t, i) => t - ts[i]!);
}

/** Round to one decimal. */
export function r1(x: number): number {
  return Math.round(x * 10) / 10;
}
