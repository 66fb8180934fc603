/**
 * Slowloris and a connection flood on the MQTT port (issue 14 item 8), CI size, against a real
 * gateway with 2 workers:
 *  - slowloris: 1000 sockets that never send and 100 that drip one byte of a valid CONNECT
 *    every 300 ms, with a 2 s connect deadline: every one is closed by the deadline counted from
 *    accept (dripping does not extend it), none gets a CONNACK, descriptors return to the
 *    baseline, and a well-behaved MQTT device round-trips meanwhile and afterwards;
 *  - flood: two addresses open MQTT connections as fast as they can against
 *    --device-accept-rate-per-ip 50 (kernel drops off, so every refusal goes through the
 *    worker): each address gets at most its rate, refusals are CONNACK 0x9F or a close
 *    without CONNACK, and a device from another address is never refused.
 * In both, no worker crashes or restarts and nothing crashes in the logs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HostileGateway } from "../scripts/hostile/lib/gateway.ts";
import { mqttProbe, type MqttProbeResult } from "../scripts/hostile/lib/mqtt-probe.ts";
import { connectBytes, MqttRawConn } from "../scripts/hostile/lib/mqtt-raw.ts";
import { read } from "../scripts/hostile/lib/proc.ts";

/** Probes a well-behaved device every `everyMs` until `stop()`; returns the failures. */
function probeLoop(gw: HostileGateway, tag: string, localAddress: string, everyMs: number): { stop: () => Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  const failed: string[] = [];
  let ok = 0;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const hw = `${tag}-${i % 5}`;
      const p: MqttProbeResult = await mqttProbe(gw.gw.mqttPort, hw, gw.token(hw), { localAddress });
      if (p.ok) ok++;
      else failed.push(p.why ?? "?");
      await Bun.sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

describe("MQTT slowloris", () => {
  const DEADLINE_MS = 2000;
  /** The connect deadline is enforced by a sweep once a second; allow that plus scheduling. */
  const SLACK_MS = 1000 + 1500;
  let gw: HostileGateway;
  beforeAll(async () => {
    gw = await HostileGateway.start({ gatewayId: "mqttloris", args: ["--workers", "2", "--device-hello-timeout-ms", String(DEADLINE_MS)] });
  }, 30_000);
  afterAll(async () => await gw?.stop());

  test("1000 silent and 100 dripping sockets are all closed by the connect deadline, none accepted, and a device is served meanwhile", async () => {
    const pids = gw.workerPids();
    const baseline = read(pids);
    const probes = probeLoop(gw, "loris-probe", "127.99.0.3", 200);
    const conns: { c: MqttRawConn; openedAt: number }[] = [];
    const drips: Timer[] = [];
    for (let i = 0; i < 1100; i++) {
      const local = `127.77.${Math.floor(i / 200)}.${(i % 200) + 1}`;
      const c = await MqttRawConn.connect({ port: gw.gw.mqttPort, localAddress: local });
      conns.push({ c, openedAt: performance.now() });
      if (i >= 1000) {
        const hw = `loris-${i}`;
        const bytes = connectBytes(hw, gw.token(hw));
        let k = 0;
        drips.push(setInterval(() => k < bytes.length - 1 && c.write(bytes.subarray(k, ++k)), 300));
      }
    }
    const allClosed = await Promise.all(conns.map(({ c, openedAt }) => c.waitClosed(Math.max(0, openedAt + DEADLINE_MS + SLACK_MS - performance.now()))));
    for (const d of drips) clearInterval(d);
    const late = conns.filter(({ c, openedAt }) => !c.closed || c.closedAt - openedAt > DEADLINE_MS + SLACK_MS).length;
    const accepted = conns.filter(({ c }) => c.packets.some((p) => p.cmd === "connack" && (p.reasonCode ?? p.returnCode) === 0)).length;
    for (const { c } of conns) c.terminate();
    const meanwhile = await probes.stop();
    // Descriptors return to the baseline (allow a few for the probes' last connections).
    let fds = read(pids).fds;
    for (let i = 0; i < 20 && fds > baseline.fds + 8; i++) {
      await Bun.sleep(250);
      fds = read(pids).fds;
    }
    const after = await mqttProbe(gw.gw.mqttPort, "loris-after", gw.token("loris-after"));
    console.log(`hostile-mqtt slowloris: ${allClosed.filter(Boolean).length}/1100 closed, ${late} late, fds ${baseline.fds} -> ${fds}, probes ${meanwhile.ok} ok`);
    expect({
      closed: allClosed.filter(Boolean).length,
      lateOrOpen: late,
      accepted,
      probesFailed: meanwhile.failed,
      probesOk: meanwhile.ok > 0,
      fdsBack: fds <= baseline.fds + 8 ? "yes" : `baseline ${baseline.fds}, now ${fds}`,
      after,
      workersUnchanged: gw.workersUnchanged(),
      crashLines: gw.crashLines(),
    }).toEqual({ closed: 1100, lateOrOpen: 0, accepted: 0, probesFailed: [], probesOk: true, fdsBack: "yes", after: { ok: true }, workersUnchanged: true, crashLines: [] });
  }, 60_000);
});

describe("MQTT connection flood", () => {
  const RATE = 50;
  const FLOOD_MS = 4000;
  let gw: HostileGateway;
  beforeAll(async () => {
    gw = await HostileGateway.start({ gatewayId: "mqttflood", args: ["--workers", "2", "--device-accept-rate-per-ip", String(RATE), "--device-flood-threshold", "0"] });
  }, 30_000);
  afterAll(async () => await gw?.stop());

  test("each flooding address gets at most its accept rate, refusals are CONNACK 0x9F or a close, other devices are never refused", async () => {
    const probes = probeLoop(gw, "flood-probe", "127.99.0.4", 100);
    const perAddress: Record<string, { accepted: number; refused: number; other: string[] }> = {};
    const t0 = performance.now();
    const flooders = ["127.78.0.1", "127.78.0.2"].map(async (local) => {
      const tally = (perAddress[local] = { accepted: 0, refused: 0, other: [] as string[] });
      const one = async (i: number) => {
        const hw = `flood-${local}-${i}`;
        let c: MqttRawConn;
        try {
          c = await MqttRawConn.connect({ port: gw.gw.mqttPort, localAddress: local });
        } catch {
          tally.refused++;
          return;
        }
        c.write(connectBytes(hw, gw.token(hw)));
        const rc = await c.connack(3000);
        if (rc === 0) tally.accepted++;
        else if (rc === 0x9f || (rc === null && c.closed)) tally.refused++;
        else if (tally.other.length < 5) tally.other.push(rc === null ? "no CONNACK and not closed within 3 s" : `CONNACK ${rc}`);
        c.terminate();
      };
      // 32 connection attempts in flight per address, for FLOOD_MS.
      let i = 0;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (performance.now() - t0 < FLOOD_MS) await one(i++);
      }));
    });
    await Promise.all(flooders);
    const seconds = (performance.now() - t0) / 1000;
    const meanwhile = await probes.stop();
    const after = await mqttProbe(gw.gw.mqttPort, "flood-after", gw.token("flood-after"));
    const limit = Math.ceil(RATE * (seconds + 1)); // the rate over the run plus one second's burst
    console.log(`hostile-mqtt flood: ${seconds.toFixed(1)} s, limit ${limit} per address, ${JSON.stringify(perAddress)}, probes ${meanwhile.ok} ok`);
    expect({
      perAddress: Object.fromEntries(Object.entries(perAddress).map(([a, t]) => [a, { withinRate: t.accepted <= limit ? "yes" : `${t.accepted} > ${limit}`, refusedSome: t.refused > 0, other: t.other }])),
      probesFailed: meanwhile.failed,
      after,
      workersUnchanged: gw.workersUnchanged(),
      crashLines: gw.crashLines(),
    }).toEqual({
      perAddress: {
        "127.78.0.1": { withinRate: "yes", refusedSome: true, other: [] },
        "127.78.0.2": { withinRate: "yes", refusedSome: true, other: [] },
      },
      probesFailed: [],
      after: { ok: true },
      workersUnchanged: true,
      crashLines: [],
    });
  }, 60_000);
});
