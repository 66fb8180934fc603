/**
 * Malformed-input fuzzing of the MQTT port of a running gateway (supervisor and workers, real
 * broker). Many concurrent connections send generated hostile MQTT sessions (see
 * lib/mqtt-fuzz-gen.ts), before or after a valid CONNECT; the run then checks that:
 *  - no process crashed or restarted, and no crash line is in any log output;
 *  - everything the gateway sent parses as MQTT server packets (3.1.1 or 5);
 *  - valid sessions split at random points got CONNACK 0 and PUBACK 0;
 *  - valid CONNECTs before fuzz payloads were accepted;
 *  - a well-behaved MQTT device is served during and after the fuzzing;
 *  - every fuzz connection is closed afterwards, and workers' VmRSS returns near the baseline.
 *
 * Usage: bun scripts/hostile/mqtt-fuzz.ts [--duration-s 600] [--concurrency 48] [--seed N]
 *          [--addresses 200] [--workers 2] [--rss-margin-mb 100] [--settle-s 30]
 * Prints one JSON object (see scripts/hostile/README.md); exit 0 when all checks pass.
 */
import { Checks, runCli, type ScenarioResult } from "./lib/cli.ts";
import { HostileGateway } from "./lib/gateway.ts";
import { MqttFuzzGenerator, type MqttFuzzSession } from "./lib/mqtt-fuzz-gen.ts";
import { mqttProbe } from "./lib/mqtt-probe.ts";
import { connectBytes, invalidServerOutput, MqttRawConn } from "./lib/mqtt-raw.ts";
import { concat } from "./lib/fuzz-payloads.ts";
import { Prng, randomSeed } from "./lib/prng.ts";
import { read, settleRss } from "./lib/proc.ts";
import { count, mb } from "./lib/stats.ts";

/** Options of {@link run}. */
export const MQTT_FUZZ_DEFAULTS = {
  duration_s: 600,
  concurrency: 48,
  /** 0 = random (printed in the result). */
  seed: 0,
  /** Distinct source addresses the sessions come from (127.89.x.y). */
  addresses: 200,
  workers: 2,
  /** Allowed VmRSS above the baseline after the run, summed over workers, MiB (as scripts/hostile/fuzz.ts). */
  rss_margin_mb: 100,
  settle_s: 30,
  max_packet_bytes: 65536,
};
export type MqttFuzzOptions = typeof MQTT_FUZZ_DEFAULTS;

const USAGE = `
Usage: bun scripts/hostile/mqtt-fuzz.ts [options]
Malformed-input fuzzing of a running gateway through its MQTT port; prints a JSON result.
  --duration-s N       fuzzing time (default 600)
  --concurrency N      connections in flight (default 48)
  --seed N             PRNG seed, 0 = random (default 0); the result prints it for replay
  --addresses N        source addresses 127.89.x.y (default 200)
  --workers N          gateway worker processes (default 2)
  --rss-margin-mb N    allowed VmRSS growth after the run, all workers (default 100)
  --settle-s N         longest wait for memory to settle (default 30)
  --max-packet-bytes N gateway mqtt.max_packet_bytes (default 65536)
Exit 0 when every check passed, 1 when one failed, 2 when the run itself failed.`;

/** CONNACK codes that mean "come back later" (rate limits, busy), not a failure. */
const BUSY = new Set([0x9f, 0x89, 0x97, 3]);

interface Tally {
  sessions: number;
  byKind: Record<string, number>;
  disconnectReasons: Record<string, number>;
  closedByGateway: number;
  refusedAtOpen: number;
  connectFailed: number;
  badOutput: string[];
  expectViolations: string[];
  expectMet: number;
  connectFailures: string[];
}

async function runSession(s: MqttFuzzSession, port: number, local: string, token: (hw: string) => string, t: Tally): Promise<void> {
  let c: MqttRawConn;
  try {
    c = await MqttRawConn.connect({ port, localAddress: local, version: s.version });
  } catch {
    t.connectFailed++;
    return;
  }
  t.sessions++;
  count(t.byKind, s.kind);
  try {
    if (s.connectFirst) {
      c.write(connectBytes(s.hardwareId, token(s.hardwareId), s.version));
      if (s.awaitConnack) {
        const rc = await c.connack(5000);
        if (rc !== 0) {
          if (rc !== null && BUSY.has(rc)) t.refusedAtOpen++;
          else t.connectFailures.push(`${s.kind}: ${rc === null ? "no CONNACK within 5 s" : `CONNACK ${rc}`}`);
          return;
        }
      }
    }
    await c.writeChunks(s.chunks, s.pausesMs);
    if (s.expect === "puback") {
      const rc = await c.connack(5000);
      const ack = rc === 0 ? await c.waitPacket((p) => p.cmd === "puback" && p.messageId === 2, 5000) : null;
      if (rc !== null && BUSY.has(rc)) t.refusedAtOpen++;
      else if (rc === 0 && ack && (ack.reasonCode ?? 0) === 0) t.expectMet++;
      else t.expectViolations.push(`${s.kind} v${s.version}: CONNACK ${rc}, PUBACK ${ack ? ack.reasonCode ?? 0 : "none"}`);
    }
    if (s.close === "wait") await c.waitClosed(1500);
    else if (s.close === "end") await Promise.race([c.drained(), Bun.sleep(1000)]);
    if (c.closed) t.closedByGateway++;
    if (s.close === "terminate") c.terminate();
    else c.end();
    await c.waitClosed(2000);
  } finally {
    c.terminate();
    const d = c.disconnectReason();
    if (d !== null) count(t.disconnectReasons, `0x${d.toString(16)}`);
    if (c.badOutput.length > 0) {
      // A mutated CONNECT may have changed the version the gateway answers in: try the other.
      const other = s.version === 5 ? 4 : 5;
      const why = invalidServerOutput(concat(c.rawIn), other);
      if (why && t.badOutput.length < 20) t.badOutput.push(`${s.kind} v${s.version}: ${c.badOutput[0]} (as v${other}: ${why}); bytes ${Buffer.from(concat(c.rawIn)).subarray(0, 64).toString("hex")}`);
    }
  }
}

/** Runs the MQTT fuzz scenario and returns its result. */
export async function run(o: MqttFuzzOptions, log: (m: string) => void = () => {}): Promise<ScenarioResult> {
  const seed = o.seed || randomSeed();
  log(`mqtt-fuzz: seed ${seed}, ${o.duration_s} s, ${o.concurrency} connections in flight`);
  const checks = new Checks();
  const gw = await HostileGateway.start({ gatewayId: "mqttfuzz", args: ["--workers", String(o.workers), "--mqtt-max-packet-bytes", String(o.max_packet_bytes)] });
  try {
    const port = gw.gw.mqttPort;
    const tokenFor = (hw: string) => gw.token(hw);
    for (let i = 0; i < 10; i++) await mqttProbe(port, `mfz-warm-${i % 5}`, tokenFor(`mfz-warm-${i % 5}`));
    await Bun.sleep(1000);
    const pids = gw.workerPids();
    const baseline = read(pids);
    const prng = new Prng(seed);
    const gen = new MqttFuzzGenerator(prng, tokenFor, o.max_packet_bytes);
    const t: Tally = { sessions: 0, byKind: {}, disconnectReasons: {}, closedByGateway: 0, refusedAtOpen: 0, connectFailed: 0, badOutput: [], expectViolations: [], expectMet: 0, connectFailures: [] };
    const started = performance.now();
    const deadline = started + o.duration_s * 1000;
    const loops = Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < deadline) {
        const i = prng.int(0, o.addresses - 1);
        await runSession(gen.next(), port, `127.89.${Math.floor(i / 250)}.${(i % 250) + 1}`, tokenFor, t);
      }
    });
    const probeFailures: string[] = [];
    let probesOk = 0;
    const prober = (async () => {
      for (let i = 0; performance.now() < deadline; i++) {
        const hw = `mfz-probe-${i % 10}`;
        const p = await mqttProbe(port, hw, tokenFor(hw), { localAddress: "127.99.0.2" });
        if (p.ok) probesOk++;
        else probeFailures.push(p.why ?? "?");
        await Bun.sleep(500);
      }
    })();
    await Promise.all([...loops, prober]);
    const fuzzMs = performance.now() - started;
    log(`mqtt-fuzz: ${t.sessions} sessions in ${Math.round(fuzzMs / 1000)} s; waiting for connections to close`);

    const open = await gw.connectionsAfterRun();
    const after: string[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await mqttProbe(port, `mfz-after-${i}`, tokenFor(`mfz-after-${i}`));
      if (!p.ok) after.push(p.why ?? "?");
    }
    const limitKb = baseline.rssKb + o.rss_margin_mb * 1024;
    const { end } = await settleRss(pids, limitKb, o.settle_s);
    const crash = gw.crashLines();
    checks.check("workers_unchanged", gw.workersUnchanged(), `pids at start ${gw.pidsAtStart.join(",")}, now ${gw.workerPids().join(",")}`);
    checks.check("no_crash_lines", crash.length === 0, crash.length ? crash.slice(0, 5).join("\n") : "none");
    checks.check("gateway_output_valid", t.badOutput.length === 0, t.badOutput.slice(0, 5).join(" | ") || "all output parsed as MQTT server packets");
    checks.check("expected_answers", t.expectViolations.length === 0, `${t.expectMet} met; violations: ${t.expectViolations.slice(0, 5).join(" | ") || "none"}`);
    checks.check("valid_connects_accepted", t.connectFailures.length === 0, t.connectFailures.slice(0, 5).join(" | ") || "all");
    checks.check("probe_during_fuzz", probeFailures.length === 0 && probesOk > 0, `${probesOk} ok, ${probeFailures.length} failed ${probeFailures.slice(0, 3).join(" | ")}`);
    checks.check("connections_closed", open === 0, `owsla_connections ${open} after the run`);
    checks.check("served_after", after.length === 0, after.length ? after.join(" | ") : "5/5 well-behaved devices served after the run");
    checks.check("rss_back_near_baseline", end.rssKb <= limitKb, `baseline ${mb(baseline.rssKb)} MiB, after ${mb(end.rssKb)} MiB, limit ${mb(limitKb)} MiB`);
    return {
      scenario: "mqtt-fuzz",
      ok: checks.ok,
      seed,
      replay: `bun scripts/hostile/mqtt-fuzz.ts --seed ${seed} --duration-s ${o.duration_s} --concurrency ${o.concurrency}`,
      params: o,
      checks: checks.all,
      sessions: t.sessions,
      sessions_per_s: Math.round(t.sessions / (fuzzMs / 1000)),
      by_kind: t.byKind,
      disconnect_reasons: t.disconnectReasons,
      closed_by_gateway_before_client: t.closedByGateway,
      refused_at_open: t.refusedAtOpen,
      connect_failed: t.connectFailed,
      memory_mb: { before: mb(baseline.rssKb), after: mb(end.rssKb) },
      log_warnings: gw.problemLines(),
    };
  } finally {
    await gw.stop();
  }
}

if (import.meta.main) await runCli(MQTT_FUZZ_DEFAULTS, USAGE, run);
