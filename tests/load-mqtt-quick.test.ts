/**
 * Keeps `owsla load --mqtt` working: simulated MQTT devices against a real gateway's MQTT port
 * (2 workers, RabbitMQ behind it, the AMQP back-end simulator answering every request and
 * sending door unlocks), and against a private Mosquitto (the Debian `mosquitto` package, on
 * its own port) with the tool's MQTT back-end, in MQTT 5 and 3.1.1. Checks that every device
 * got its CONNACK, nobody was lost, and every path was measured. The full comparison is the
 * `mqtt` phase of scripts/bench (docs/benchmarks.md).
 */
import { expect, test } from "bun:test";
import { owslaCommand, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { startMosquitto } from "../scripts/bench-lib/mqtt-peers.ts";

/** Seconds each `owsla load` runs. */
const DURATION_S = 8;

/** A fresh 127.x.y range per run, so connections of an earlier run in TIME_WAIT never collide. */
const freshHosts = () => `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}.1`;

/** Runs `owsla load` with `args`; returns its JSON summary and stderr. */
async function runLoad(args: string[]): Promise<{ s: any; err: string }> {
  const proc = Bun.spawn([...owslaCommand(), "load", "--mqtt", "--host-base", freshHosts(), "--duration", String(DURATION_S), "--settle", "1", ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`owsla load exited with ${code}:\n${err.slice(-3000)}`);
  return { s: JSON.parse(out), err };
}

/** What every healthy run shows. */
function expectHealthy(s: any, devices: number): void {
  expect(s.problems).toEqual([]);
  expect(s.errors).toEqual({});
  expect(s.all_welcomed).toBe(true);
  expect(s.connections_held).toBe(devices);
  expect(s.lost_devices).toBe(0);
  expect(s.latency_ms.handshake.count).toBe(devices);
  expect(s.messages.acked).toBeGreaterThan(300);
  expect(s.messages.rpc_replies).toBeGreaterThan(300);
  expect(s.latency_ms.round_trip_pub_reply.count).toBe(s.messages.rpc_replies);
  expect(s.latency_ms.round_trip_pub_reply.p50_ms).toBeGreaterThanOrEqual(s.latency_ms.pub_ack.p50_ms * 0.5);
  expect(s.gateway.rss_bytes.held).toBeGreaterThan(0);
  expect(s.gateway.cpu_s.end).toBeGreaterThan(0);
}

test("owsla load --mqtt: every device connects to the gateway's MQTT port, requests get PUBACK and replies, door unlocks are PUBACKed and timed", async () => {
  const devices = 1000;
  const gw = await startGateway({ gatewayId: "loadmq", args: ["--workers", "2"] });
  try {
    const { s, err } = await runLoad(["--devices", String(devices), "--data", gw.dir, "--mqtt-port", String(gw.mqttPort), "--msg-rate", "100", "--with-backend", "--prefix", gw.prefix, "--cmd-rate", "10"]);
    expect(err.split("\n").filter((l) => l.startsWith("load ")).length).toBeGreaterThanOrEqual(DURATION_S - 2);
    expectHealthy(s, devices);
    expect(s.gateway.processes).toBe(3);
    // Every request went to the back-end through RabbitMQ and its reply came back on reply/<n>.
    expect(s.backend.rpc_replies_sent).toBeGreaterThanOrEqual(s.messages.rpc_replies);
    expect(s.backend.presence_events).toBeGreaterThanOrEqual(devices);
    expect(s.messages.door_acks_sent).toBeGreaterThan(20);
    expect(s.backend.door_acks_received).toBeGreaterThan(20);
    expect(s.backend.latency_ms.door_unlock_round_trip.count).toBe(s.backend.door_acks_received);
  } finally {
    await Promise.race([gw.stop(), Bun.sleep(20_000).then(() => gw.kill())]);
    const cleanup = await new TestBackend(gw.prefix).start("none.#");
    await cleanup.stop([gw.gatewayId]);
    removeDir(gw.dir);
  }
}, 90_000);

test("owsla load --mqtt --mqtt-broker drives Mosquitto in MQTT 5 and 3.1.1, the MQTT back-end answering each request on its response topic", async () => {
  const devices = 500;
  const mosquitto = await startMosquitto(20_000 + Math.floor(Math.random() * 10_000));
  try {
    for (const version of ["5", "3.1.1"]) {
      const { s } = await runLoad(["--devices", String(devices), "--mqtt-broker", "--mqtt-version", version, "--mqtt-port", String(mosquitto.mqttPort), "--gateway-pid", String(mosquitto.pid), "--msg-rate", "100", "--with-backend"]);
      expectHealthy(s, devices);
      expect(s.gateway.processes).toBe(1);
      expect(s.backend.messages_received).toBeGreaterThanOrEqual(s.messages.rpc_replies);
      expect(s.backend.rpc_replies_sent).toBe(s.backend.messages_received);
      expect(s.backend.errors).toEqual({});
    }
  } finally {
    await mosquitto.stop();
  }
}, 90_000);
