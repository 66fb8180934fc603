/**
 * Back-end fuzzing (issue 12): a seeded stream of random and hostile AMQP messages (headers,
 * properties, bodies, sizes, encodings; see lib/backend-fuzz-gen.ts) on `owsla.down` and on the
 * reply path (default exchange, the gateway queue), addressed to connected devices, to known
 * devices that are offline (their commands are stored and sent when they come back, the path
 * where a poison command once crashed every worker), to unknown devices and to nothing. The run
 * then checks that:
 *  - no process crashed: worker pids unchanged, no crash line in any log output;
 *  - every line a device received is one valid JSON frame within device.max_frame_bytes;
 *  - a command that cannot fit a frame never reaches a device;
 *  - marked valid commands sent during the fuzzing reach their device byte for byte;
 *  - the gateway queue is drained (nothing stuck, nothing redelivered for ever);
 *  - a valid device is served during and after the fuzzing.
 *
 * Usage: bun scripts/hostile/backend-fuzz.ts [--duration-s 600] [--rate 200] [--seed N] [--workers 2]
 * Prints one JSON object (see scripts/hostile/README.md); exit 0 when all checks pass.
 */
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { BROKER_URL } from "../../tests/helpers/gateway.ts";
import { BackendFuzzGen, NEVER_DELIVERED, type FuzzTargets } from "./lib/backend-fuzz-gen.ts";
import { Checks, runCli, type ScenarioResult } from "./lib/cli.ts";
import { HostileGateway } from "./lib/gateway.ts";
import { randomSeed } from "./lib/prng.ts";
import { RawConn } from "./lib/raw.ts";
import { latencySummary } from "./lib/stats.ts";

/** Options of {@link run}. */
export const BACKEND_FUZZ_DEFAULTS = {
  duration_s: 600,
  /** Messages published per second at most. */
  rate: 200,
  /** 0 = random (printed in the result). */
  seed: 0,
  workers: 2,
  /** Devices connected for the whole run, and known devices kept offline. */
  online: 4,
  offline: 4,
  /** Longest wait for the gateway queue to drain after the run, s. */
  settle_s: 30,
};
export type BackendFuzzOptions = typeof BACKEND_FUZZ_DEFAULTS;

const USAGE = `
Usage: bun scripts/hostile/backend-fuzz.ts [options]
Hostile AMQP messages at a running gateway's queue; prints a JSON result.
  --duration-s N   fuzzing time (default 600)
  --rate N         messages per second at most (default 200)
  --seed N         PRNG seed, 0 = random (default 0); the result prints it for replay
  --workers N      gateway worker processes (default 2)
  --online N       devices connected during the run (default 4)
  --offline N      known devices kept offline, reconnected now and then (default 4)
  --settle-s N     longest wait for the gateway queue to drain (default 30)
Exit 0 when every check passed, 1 when one failed, 2 when the run itself failed.`;

const MAX_FRAME_BYTES = 65536;

/** What the devices saw. */
interface DeviceTally {
  lines: number;
  overLimit: string[];
  badLines: string[];
  neverDeliveredSeen: string[];
  /** Marked command id -> the line received. */
  marked: Map<string, string>;
}

/** A device that acks every command and checks every line it gets. */
async function device(gw: HostileGateway, hw: string, t: DeviceTally, never: Set<string>): Promise<{ conn: RawConn; id: string }> {
  const conn = await RawConn.connect({
    port: gw.port,
    keepBytes: MAX_FRAME_BYTES * 2,
    onLine: (line, c) => {
      t.lines++;
      if (Buffer.byteLength(line) + 1 > MAX_FRAME_BYTES) t.overLimit.push(`${Buffer.byteLength(line) + 1} bytes: ${line.slice(0, 80)}`);
      const f = JSON.parse(line);
      if (f.op !== "cmd") return;
      if (never.has(f.id)) t.neverDeliveredSeen.push(f.id);
      if (typeof f.id === "string" && f.id.startsWith("marked-")) t.marked.set(f.id, line);
      c.write(JSON.stringify({ op: "ack", ref: f.id }) + "\n");
    },
  });
  conn.write(JSON.stringify({ op: "hello", v: 1, device: hw, token: gw.token(hw) }) + "\n");
  const w = await conn.waitFrame((f) => f.op === "welcome" || f.op === "error", 10_000);
  if (w?.op !== "welcome") throw new Error(`Device ${hw} was not welcomed: ${JSON.stringify(w)}`);
  return { conn, id: w.id as string };
}

/** Longest wait for a publish confirm before the channel is given up, ms. */
const CONFIRM_TIMEOUT_MS = 3000;

/**
 * Publishes with confirms on a channel that is replaced when the broker closes it or a confirm
 * does not come (seen with hostile properties: the client's confirm count and the broker's
 * drift apart and every later publish on that channel waits for ever).
 */
class Publisher {
  private ch: AMQPChannel | null = null;
  channelCloses = 0;
  confirmTimeouts = 0;
  /** Errors the client library raised before anything reached the broker, by message. */
  readonly clientErrors: Record<string, number> = {};
  constructor(private readonly client: AMQPClient) {}
  async publish(exchange: string, key: string, body: Uint8Array | string, props: Record<string, unknown>): Promise<"ok" | "client_refused" | "broker_refused" | "no_confirm"> {
    if (!this.ch || this.ch.closed) {
      this.ch = await this.client.channel();
      await this.ch.confirmSelect();
    }
    const ch = this.ch;
    let timer: Timer | undefined;
    try {
      const confirmed = ch.basicPublish(exchange, key, body, props).then(() => true);
      const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), CONFIRM_TIMEOUT_MS)));
      if (await Promise.race([confirmed, late])) return "ok";
      confirmed.catch(() => {});
      this.confirmTimeouts++;
      if (this.ch === ch) this.ch = null;
      ch.close().catch(() => {});
      return "no_confirm";
    } catch (e) {
      if (ch.closed) {
        this.channelCloses++;
        return "broker_refused";
      }
      if (/closed/i.test((e as Error).message)) return "broker_refused";
      const why = (e as Error).message.replace(/\d+/g, "N").slice(0, 60);
      this.clientErrors[why] = (this.clientErrors[why] ?? 0) + 1;
      return "client_refused";
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Runs the scenario. */
export async function run(o: BackendFuzzOptions, log: (msg: string) => void = () => {}): Promise<ScenarioResult> {
  const seed = o.seed || randomSeed();
  const checks = new Checks();
  const gw = await HostileGateway.start({ gatewayId: "bfuzz", args: ["--workers", String(o.workers)] });
  const client = new AMQPClient(`${BROKER_URL}?frameMax=131072`);
  const t: DeviceTally = { lines: 0, overLimit: [], badLines: [], neverDeliveredSeen: [], marked: new Map() };
  const never = new Set<string>();
  const conns: RawConn[] = [];
  try {
    await client.connect();
    const pub = new Publisher(client);
    const down = `${gw.gw.prefix}owsla.down`;
    const queue = `${gw.gw.prefix}owsla.gw.${gw.gw.gatewayId}`;
    const online: { conn: RawConn; id: string }[] = [];
    for (let i = 0; i < o.online; i++) online.push(await device(gw, `bfuzz-on-${i}`, t, never));
    conns.push(...online.map((d) => d.conn));
    const offline: string[] = [];
    for (let i = 0; i < o.offline; i++) {
      const d = await device(gw, `bfuzz-off-${i}`, t, never);
      offline.push(d.id);
      d.conn.write('{"op":"bye"}\n');
      await d.conn.waitClosed(2000);
    }
    const targets: FuzzTargets = { online: online.map((d) => d.id), offline };
    const gen = new BackendFuzzGen(seed, targets);
    const byKind: Record<string, number> = {};
    const outcomes: Record<string, number> = {};
    const probeFailures: string[] = [];
    const probeMs: number[] = [];
    const markedSent = new Map<string, string>();
    let published = 0;
    let seq = 0;
    log(`backend-fuzz: seed ${seed}, ${o.duration_s} s at up to ${o.rate} msg/s`);
    const started = performance.now();
    const end = started + o.duration_s * 1000;

    const fuzzer = (async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const m = gen.next();
        const id = `f-${seq++}`;
        // Commands that cannot fit a frame must reach no device (connected or stored): known ids.
        const dev = (m.props.headers as Record<string, unknown> | undefined)?.device_id;
        if (NEVER_DELIVERED.has(m.kind) && typeof dev === "string") {
          m.props.messageId = id;
          never.add(id);
        }
        const r = await pub.publish(m.route === "down" ? down : "", m.route === "down" ? gw.gw.gatewayId : queue, m.body, m.props as Record<string, unknown>);
        byKind[m.kind] = (byKind[m.kind] ?? 0) + 1;
        outcomes[r] = (outcomes[r] ?? 0) + 1;
        published++;
        if (published % 500 === 0) log(`backend-fuzz: ${published} messages published`);
        await Bun.sleep(Math.max(0, 1000 / o.rate - (performance.now() - t0)));
      }
    })();

    const prober = (async () => {
      let i = 0;
      while (performance.now() < end) {
        // A valid device round trip, a marked valid command, and an offline device coming back for its stored commands.
        const p = await gw.probe(`bfuzz-probe-${i % 4}`);
        if (p.ok) probeMs.push(p.welcomeMs! + p.pubAckMs!);
        else probeFailures.push(p.why ?? "?");
        const target = online[i % online.length]!;
        const markedId = `marked-${i}`;
        const body = `{"i":${i},"big":12345678901234567890123,"e":1e999999,"deep":[[[[${i}]]]]}`;
        markedSent.set(markedId, `{"op":"cmd","id":"${markedId}","topic":"cmd","body":${body},"corr":null}`);
        await pub.publish(down, gw.gw.gatewayId, body, { headers: { device_id: target.id }, messageId: markedId, deliveryMode: 2 });
        const back = await device(gw, `bfuzz-off-${i % o.offline}`, t, never).catch((e: Error) => (probeFailures.push(e.message), null));
        await Bun.sleep(1000);
        if (back) conns.push(back.conn);
        back?.conn.terminate();
        i++;
        await Bun.sleep(1000);
      }
    })();
    await fuzzer;
    log(`backend-fuzz: fuzzer done ${JSON.stringify(outcomes)}`);
    await prober;
    const fuzzMs = performance.now() - started;
    log(`backend-fuzz: ${published} messages in ${Math.round(fuzzMs / 1000)} s; waiting for the gateway queue to drain`);

    // The gateway queue drains: every message acked (stored or delivered) or dead-lettered.
    const probeCh = await client.channel();
    let left = -1;
    for (let i = 0; i < o.settle_s * 2; i++) {
      left = (await probeCh.queueDeclare(queue, { passive: true })).messageCount;
      if (left === 0 && [...markedSent.keys()].every((k) => t.marked.has(k))) break;
      await Bun.sleep(500);
    }
    const after: boolean[] = [];
    for (let i = 0; i < 3; i++) after.push((await gw.probe(`bfuzz-after-${i}`)).ok);
    const m = await gw.metrics();
    const crash = gw.crashLines();
    for (const c of conns) t.badLines.push(...c.badLines);
    const markedWrong = [...markedSent].filter(([k, want]) => t.marked.get(k) !== want).map(([k]) => `${k}: ${t.marked.get(k)?.slice(0, 120) ?? "not received"}`);

    checks.check("workers_unchanged", gw.workersUnchanged(), `pids at start ${gw.pidsAtStart.join(",")}, now ${gw.workerPids().join(",")}`);
    checks.check("no_crash_lines", crash.length === 0, crash.length ? crash.slice(0, 5).join("\n") : "none");
    checks.check("device_output_valid", t.badLines.length === 0 && t.overLimit.length === 0, `${t.lines} lines; invalid: ${t.badLines.slice(0, 3).join(" | ") || "none"}; over the frame limit: ${t.overLimit.slice(0, 3).join(" | ") || "none"}`);
    checks.check("too_large_never_delivered", t.neverDeliveredSeen.length === 0, `${never.size} sent to connected devices; delivered: ${t.neverDeliveredSeen.slice(0, 5).join(", ") || "none"}`);
    checks.check("marked_commands_exact", markedSent.size > 0 && markedWrong.length === 0, `${markedSent.size - markedWrong.length}/${markedSent.size} byte for byte; ${markedWrong.slice(0, 3).join(" | ") || ""}`);
    checks.check("queue_drained", left === 0, `${left} messages ready in ${queue} after the run`);
    checks.check("probe_during_fuzz", probeFailures.length === 0 && probeMs.length > 0, `${probeMs.length} ok, ${probeFailures.length} failed ${probeFailures.slice(0, 3).join(" | ")}`);
    checks.check("served_after", after.every(Boolean), `${after.filter(Boolean).length}/${after.length} valid devices served after the run`);

    return {
      scenario: "backend-fuzz",
      ok: checks.ok,
      seed,
      replay: `bun scripts/hostile/backend-fuzz.ts --seed ${seed} --duration-s ${o.duration_s} --rate ${o.rate}`,
      params: o,
      checks: checks.all,
      durations: { fuzz_s: Math.round(fuzzMs / 100) / 10 },
      messages: published,
      messages_per_s: Math.round(published / (fuzzMs / 1000)),
      by_kind: byKind,
      publish_outcomes: outcomes,
      broker_channel_closes: pub.channelCloses,
      confirm_timeouts: pub.confirmTimeouts,
      client_errors: pub.clientErrors,
      device_lines: t.lines,
      commands_rejected_by_reason: HostileGateway.family(m, "owsla_commands_rejected_total"),
      commands_quarantined: HostileGateway.metric(m, 'owsla_quarantined_total{kind="command"}'),
      lost: probeFailures.length + after.filter((x) => !x).length + markedWrong.length,
      probe_round_trip_ms: latencySummary(probeMs),
      log_warnings: gw.problemLines(),
    };
  } finally {
    for (const c of conns) c.terminate();
    await client.close().catch(() => {});
    await gw.stop();
  }
}

if (import.meta.main) await runCli(BACKEND_FUZZ_DEFAULTS, USAGE, run);
