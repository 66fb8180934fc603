/**
 * Black-box tests of `serve --workers 2`: real supervisor and worker processes, devices over
 * real sockets, the back-end on the real RabbitMQ. Which worker holds a device is read from the
 * `worker` column of the device table (opened read-only); which pid a worker id has is read
 * from the supervisor's "Worker started" log lines.
 *
 * Covers: connections spread over workers; SIGKILL of one worker leaves the other's devices
 * untouched and loses nothing; commands reach a device whichever worker consumed them;
 * SIGTERM drains devices with `shutting_down` and exits 0.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { storedCommands } from "./helpers/store-files.ts";
import { join } from "node:path";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { BROKER_URL, removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { TestDevice, type Frame } from "./helpers/device.ts";

/** Graceful-stop deadline given to the gateway, in seconds. */
const SHUTDOWN_DEADLINE_S = 10;
/** `shutting_down` frames per second per worker during the drain (low, so the pacing is visible). */
const DRAIN_RATE = 20;

let gw: GatewayProcess;
let backend: TestBackend;
/** What a test started and must stop even when it fails; run after each test. */
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  gw = await startGateway({
    gatewayId: "multi",
    args: ["--workers", "2", "--workers-shutdown-deadline-s", String(SHUTDOWN_DEADLINE_S), "--device-drain-rate", String(DRAIN_RATE)],
  });
  backend = await new TestBackend(gw.prefix).start();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve().then(c).catch(() => {});
});

afterAll(async () => {
  await gw?.kill();
  await backend?.stop([gw.gatewayId]);
  removeDir(gw.dir);
});

/** Worker id of every connected device, from the control API (live state of the workers). */
function holders(): Promise<Map<string, number>> {
  return gw.connectedDevices();
}

/** Waits until every id in `ids` is a connected row; returns id -> worker. */
async function waitHolders(ids: string[], timeoutMs = 3000): Promise<Map<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await holders();
    const missing = ids.filter((id) => !h.has(id));
    if (missing.length === 0) return h;
    if (Date.now() > deadline) throw new Error(`Devices not recorded as connected within ${timeoutMs} ms: ${missing.join(", ")}`);
    await Bun.sleep(20);
  }
}

/** Current pid of worker `id`, from the supervisor's last "Worker started" line for it. */
function workerPid(id: number): number {
  const line = gw.json().filter((l) => l.msg === "Worker started" && l.worker === id).at(-1);
  if (!line) throw new Error(`No "Worker started" log line for worker ${id}`);
  return line.pid as number;
}

/**
 * A device that keeps reconnecting, publishes numbered messages with refs, acks every command,
 * and records every welcome, close and error frame with its time.
 */
class TrackedDevice {
  readonly acked = new Map<string, number>(); // ref -> time the ack arrived
  readonly cmds = new Map<string, number>(); // command id -> first arrival
  readonly welcomes: { at: number; id: string }[] = [];
  readonly incidents: { at: number; what: string }[] = [];
  deviceId = "";
  private seq = 0;
  private running = true;
  private dev: TestDevice | null = null;
  private readonly loop: Promise<void>;

  constructor(
    readonly hw: string,
    private pubEveryMs = 10,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const dev = await TestDevice.connect(gw.port);
        this.dev = dev;
        const w = await dev.hello({ device: this.hw, token: gw.token(this.hw) });
        this.deviceId = w.id;
        this.welcomes.push({ at: Date.now(), id: w.id });
        const reader = (async () => {
          for (;;) {
            let f: Frame;
            try {
              f = await dev.next(() => true, 60_000);
            } catch {
              if (this.running) this.incidents.push({ at: Date.now(), what: "close" });
              return;
            }
            if (f.op === "ack") this.acked.set(f.ref, Date.now());
            else if (f.op === "cmd") {
              if (!this.cmds.has(f.id)) this.cmds.set(f.id, Date.now());
              dev.send({ op: "ack", ref: f.id });
            } else if (f.op === "error") this.incidents.push({ at: Date.now(), what: `error ${f.code}` });
          }
        })();
        while (this.running && !dev.closed) {
          if (this.pubEveryMs > 0) dev.send({ op: "pub", topic: "sim", body: { n: this.seq }, ref: `${this.hw}-${this.seq++}` });
          await Bun.sleep(this.pubEveryMs || 50);
        }
        if (!this.running) {
          await Bun.sleep(200); // last acks
          dev.close();
        }
        await reader;
      } catch (e) {
        if (this.running) this.incidents.push({ at: Date.now(), what: `connect failed: ${(e as Error).message}` });
      }
      if (this.running) await Bun.sleep(50 + Math.random() * 100);
    }
  }

  /** Stops publishing; keeps taking commands. */
  quiet(): void {
    this.pubEveryMs = 0;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** refs acked to `devices` that the back-end has not received. */
function upMissing(devices: TrackedDevice[]): string[] {
  const got = new Set(backend.received.map((r) => r.correlationId));
  return devices.flatMap((d) => [...d.acked.keys()].filter((ref) => !got.has(`${d.deviceId}:${ref}`)));
}

test("connections are spread over both workers", async () => {
  const conns: { dev: TestDevice; welcome: Frame }[] = [];
  cleanups.push(() => conns.forEach((c) => c.dev.close()));
  for (let i = 0; i < 40; i++) conns.push(await gw.device(`spread-${i}`));
  const h = await waitHolders(conns.map((c) => c.welcome.id));
  const perWorker = [0, 0];
  for (const c of conns) perWorker[h.get(c.welcome.id)!]!++;
  console.log(`workers: 40 devices spread as ${perWorker.join(" / ")} over workers 0 / 1`);
  expect(perWorker[0]).toBeGreaterThan(0);
  expect(perWorker[1]).toBeGreaterThan(0);
});


test("back-to-back takeovers across workers: the newest connection always wins", async () => {
  // Each round opens two connections of one device and sends the second's hello as soon as the
  // first is welcomed, so the two welcomes often fall on different workers within the same
  // millisecond: the home worker must order them by a clock both workers read alike. The older
  // connection gets taken_over, the newer one stays.
  const ROUNDS = 100;
  const hw = "takeover-race";
  const hello = { device: hw, token: gw.token(hw) };
  const workersSeen = new Set<number>();
  for (let i = 0; i < ROUNDS; i++) {
    const older = await TestDevice.connect(gw.port);
    const newer = await TestDevice.connect(gw.port);
    cleanups.push(() => older.close(), () => newer.close());
    await older.hello(hello);
    const welcome = await newer.hello(hello);
    // On failure, say what the newer connection got instead (typically: taken_over itself).
    const e = await older.op("error").catch((err: Error) => ({ code: `no error frame (${err.message}); the newer connection got ${JSON.stringify(newer.frames)}` }));
    expect(`round ${i}: ${e.code}`).toBe(`round ${i}: taken_over`);
    await older.waitClosed();
    newer.send({ op: "ping" });
    await newer.op("pong");
    if (i % 10 === 9) workersSeen.add((await waitHolders([welcome.id])).get(welcome.id)!);
    newer.send({ op: "bye" });
    await newer.waitClosed();
  }
  console.log(`workers: ${ROUNDS} takeovers; the newer connection was held by workers ${[...workersSeen].join(", ")}`);
});

test("SIGKILL of one worker: the other's devices see nothing, the worker is back within 1 s, nothing acked is lost", async () => {
  // Devices with traffic both ways, until both workers hold at least 4.
  const devices: TrackedDevice[] = [];
  cleanups.push(() => Promise.all(devices.map((d) => d.stop())));
  let h = new Map<string, number>();
  const onWorker = (w: number) => devices.filter((d) => h.get(d.deviceId) === w);
  while (devices.length < 16 || (devices.length < 64 && (onWorker(0).length < 4 || onWorker(1).length < 4))) {
    const batch = Array.from({ length: 8 }, (_, i) => new TrackedDevice(`iso-${devices.length + i}`));
    devices.push(...batch);
    for (let i = 0; i < 200 && batch.some((d) => !d.deviceId); i++) await Bun.sleep(10);
    h = await waitHolders(devices.map((d) => d.deviceId));
  }
  const victim = 1;
  const survivors = onWorker(0);
  const victims = onWorker(victim);
  expect(survivors.length).toBeGreaterThanOrEqual(4);
  expect(victims.length).toBeGreaterThanOrEqual(4);

  // A back-end commanding every device, with publisher confirms (so the broker accepted each).
  const cmdClient = new AMQPClient(BROKER_URL);
  await cmdClient.connect();
  const cmdCh = await cmdClient.channel();
  cleanups.push(() => cmdClient.close());
  await cmdCh.confirmSelect();
  const accepted = new Map<string, TrackedDevice>();
  const sentAt = new Map<string, number>();
  let commanding = true;
  const commander = (async () => {
    for (let n = 0; commanding; n++) {
      const d = devices[n % devices.length]!;
      const id = `iso-cmd-${n}`;
      sentAt.set(id, Date.now());
      await cmdCh.basicPublish(`${gw.prefix}owsla.down`, gw.gatewayId, JSON.stringify({ n }), { headers: { device_id: d.deviceId }, messageId: id, deliveryMode: 2 });
      accepted.set(id, d);
      await Bun.sleep(3);
    }
  })();
  commander.catch(() => {}); // awaited below; a failed test must not leave an unhandled rejection
  cleanups.push(() => {
    commanding = false;
    return commander;
  });
  await Bun.sleep(800);

  const pid = workerPid(victim);
  const before = gw.workerPids();
  expect(before).toContain(pid);
  const killedAt = Date.now();
  process.kill(pid, "SIGKILL");
  let newPid = 0;
  while (Date.now() - killedAt < 3000) {
    const now = gw.workerPids();
    newPid = now.find((p) => !before.includes(p)) ?? 0;
    if (newPid && now.length === 2) break;
    await Bun.sleep(5);
  }
  const respawnMs = Date.now() - killedAt;
  expect(newPid).toBeGreaterThan(0);
  // Same worker id, new process (the supervisor's log line may trail pgrep by a few ms).
  for (let i = 0; i < 100 && workerPid(victim) !== newPid; i++) await Bun.sleep(10);
  expect(workerPid(victim)).toBe(newPid);
  let readyMs = -1;
  for (; readyMs < 0 && Date.now() - killedAt < 5000; await Bun.sleep(5)) {
    const ready = gw.json().find((l) => l.msg === "Worker ready" && l.worker === victim && l.pid === newPid);
    if (ready) readyMs = Date.parse(ready.t) - killedAt;
  }

  // Victims reconnect (to either worker) with their old UUIDs.
  const reconnected = () => victims.filter((d) => d.welcomes.some((w) => w.at > killedAt));
  while (reconnected().length < victims.length && Date.now() - killedAt < 5000) await Bun.sleep(10);
  const reconnectMs = Date.now() - killedAt;
  await Bun.sleep(Math.max(0, 2000 - (Date.now() - killedAt))); // traffic goes on
  const windowEnd = Date.now();
  console.log(`workers: killed worker ${victim} (${victims.length} devices; ${survivors.length} on worker 0); new pid after ${respawnMs} ms, ready after ${readyMs} ms, all its devices welcomed again after ${reconnectMs} ms`);

  expect(respawnMs).toBeLessThan(1000);
  expect(readyMs).toBeGreaterThanOrEqual(0);
  expect(readyMs).toBeLessThan(1000);
  expect(reconnected().map((d) => d.hw)).toEqual(victims.map((d) => d.hw));
  for (const d of victims) expect(new Set(d.welcomes.map((w) => w.id))).toEqual(new Set([d.deviceId]));
  // The other worker's devices: one welcome, no close, no error frame, and traffic both ways after the kill.
  expect(survivors.flatMap((d) => d.incidents.map((i) => `${d.hw}: ${i.what} at kill${i.at - killedAt >= 0 ? "+" : ""}${i.at - killedAt} ms`))).toEqual([]);
  expect(survivors.filter((d) => d.welcomes.length !== 1).map((d) => d.hw)).toEqual([]);
  const inWindow = (t: number) => t > killedAt && t <= windowEnd;
  expect(survivors.filter((d) => ![...d.acked.values()].some(inWindow)).map((d) => d.hw)).toEqual([]);
  expect(survivors.filter((d) => ![...d.cmds.values()].some(inWindow)).map((d) => d.hw)).toEqual([]);

  commanding = false;
  await commander;
  for (const d of devices) d.quiet();
  const downMissing = () => [...accepted].filter(([id, d]) => !d.cmds.has(id)).map(([id, d]) => `${id} -> ${d.hw}`);
  for (let i = 0; i < 100 && (upMissing(devices).length > 0 || downMissing().length > 0); i++) await Bun.sleep(100);
  if (downMissing().length > 0) {
    for (const [id, d] of accepted) {
      if (d.cmds.has(id)) continue;
      console.log(`workers: command ${id} for ${d.hw} not delivered: (worker ${h.get(d.deviceId)} before kill); sent at kill${sentAt.get(id)! - killedAt} ms; welcomes at ${d.welcomes.map((w) => w.at - killedAt).join(",")}; incidents ${JSON.stringify(d.incidents.map((i) => [i.what, i.at - killedAt]))}; stored for the device: ${storedCommands(gw.dir, d.deviceId)}`);
    }
  }
  const acked = devices.reduce((s, d) => s + d.acked.size, 0);
  console.log(`workers: ${acked} device messages acked, ${accepted.size} commands confirmed by the broker`);
  expect(acked).toBeGreaterThan(500);
  expect(accepted.size).toBeGreaterThan(200);
  expect(upMissing(devices)).toEqual([]);
  expect(downMissing()).toEqual([]);
}, 30_000);

test("a command reaches its device whichever worker consumed it", async () => {
  // One device on each worker.
  const held: { dev: TestDevice; id: string }[] = [];
  cleanups.push(() => held.forEach((d) => d.dev.close()));
  let h = new Map<string, number>();
  for (let i = 0; i < 40 && new Set(held.map((d) => h.get(d.id))).size < 2; i++) {
    const { dev, welcome } = await gw.device(`xw-${i}`);
    held.push({ dev, id: welcome.id });
    h = await waitHolders(held.map((d) => d.id));
  }
  const targets = [0, 1].map((w) => held.find((d) => h.get(d.id) === w)!);
  expect(targets.every(Boolean)).toBe(true);

  // Both workers consume the queue: commands for unknown devices are dead-lettered by whichever took them.
  const rejectedBefore = gw.json().filter((l) => l.msg?.startsWith("Rejected command")).length;
  for (let i = 0; i < 10; i++) await backend.command(gw.gatewayId, crypto.randomUUID(), { probe: i });
  for (let i = 0; i < 100 && gw.json().filter((l) => l.msg?.startsWith("Rejected command")).length < rejectedBefore + 10; i++) await Bun.sleep(20);
  const consumers = new Set(gw.json().filter((l) => l.msg?.startsWith("Rejected command")).slice(rejectedBefore).map((l) => l.worker));
  expect([...consumers].sort()).toEqual([0, 1]);

  // 50 commands to each: the broker round-robins them over the two consumers, so about half cross workers.
  for (const t of targets) {
    for (let i = 0; i < 50; i++) await backend.command(gw.gatewayId, t.id, { i }, { messageId: `xw-${t.id}-${i}` });
  }
  for (const t of targets) {
    const ids = new Set<string>();
    while (ids.size < 50) {
      const f = await t.dev.op("cmd", 3000);
      ids.add(f.id);
      t.dev.send({ op: "ack", ref: f.id });
    }
    expect(ids).toEqual(new Set(Array.from({ length: 50 }, (_, i) => `xw-${t.id}-${i}`)));
  }
});

test("SIGTERM: devices get shutting_down with retry_after at a bounded rate, acked messages are delivered, exit 0", async () => {
  // Plain devices that publish until the gateway closes them (no reconnect).
  const devs: { dev: TestDevice; id: string; acked: Set<string> }[] = [];
  cleanups.push(() => devs.forEach((d) => d.dev.close()));
  for (let i = 0; i < 20; i++) {
    const { dev, welcome } = await gw.device(`drain-${i}`);
    devs.push({ dev, id: welcome.id, acked: new Set() });
  }
  const h = await waitHolders(devs.map((d) => d.id));
  expect(new Set(devs.map((d) => h.get(d.id))).size).toBe(2);
  let seq = 0;
  const pubs = devs.map(async (d) => {
    while (!d.dev.closed) {
      d.dev.send({ op: "pub", topic: "drain", body: { n: seq }, ref: `r${seq++}` });
      await Bun.sleep(5);
      for (let f; (f = d.dev.frames.findIndex((x) => x.op === "ack")) >= 0; ) d.acked.add(d.dev.frames.splice(f, 1)[0]!.ref);
    }
    for (let f; (f = d.dev.frames.findIndex((x) => x.op === "ack")) >= 0; ) d.acked.add(d.dev.frames.splice(f, 1)[0]!.ref);
  });
  await Bun.sleep(500);

  const stoppedAt = Date.now();
  const exitCode = gw.stop();
  const errors = await Promise.all(devs.map(async (d) => ({ f: await d.dev.op("error", SHUTDOWN_DEADLINE_S * 1000), at: Date.now() })));
  await Promise.all(devs.map((d) => d.dev.waitClosed(5000)));
  await Promise.all(pubs);
  expect(await exitCode).toBe(0);
  const stopMs = Date.now() - stoppedAt;

  for (const { f } of errors) {
    expect(f.code).toBe("shutting_down");
    expect(f.retry_after).toBeGreaterThan(0);
  }
  // 20 devices over 2 workers at DRAIN_RATE per second each take at least ~(10 - 1) / DRAIN_RATE s.
  const spreadMs = Math.max(...errors.map((e) => e.at)) - Math.min(...errors.map((e) => e.at));
  const stopped = gw.json().filter((l) => l.msg === "Worker stopped");
  console.log(`workers: SIGTERM drained 20 devices over ${spreadMs} ms, exit after ${stopMs} ms`);
  expect(spreadMs).toBeGreaterThan(300);
  expect(stopMs).toBeLessThan(SHUTDOWN_DEADLINE_S * 1000);
  expect(gw.logs.filter((l) => l.includes("shutdown deadline"))).toEqual([]);
  expect(stopped.map((l) => [l.worker, l.code]).sort()).toEqual([[0, 0], [1, 0]]);

  const missing = () => {
    const got = new Set(backend.received.map((r) => r.correlationId));
    return devs.flatMap((d) => [...d.acked].filter((ref) => !got.has(`${d.id}:${ref}`)));
  };
  for (let i = 0; i < 50 && missing().length > 0; i++) await Bun.sleep(100);
  expect(devs.reduce((s, d) => s + d.acked.size, 0)).toBeGreaterThan(100);
  expect(missing()).toEqual([]);
}, 30_000);
