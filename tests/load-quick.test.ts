/**
 * Keeps `owsla load` from rotting: a few thousand simulated devices against a real gateway
 * (2 workers) and RabbitMQ for about ten seconds, with the back-end simulator answering every
 * message and sending door-unlock commands. Checks that the JSON summary is sane: everyone
 * welcomed, nobody lost, latencies measured on every path. The full-size runs are
 * `scripts/bench` (see docs/benchmarks.md).
 */
import { expect, test } from "bun:test";
import { owslaCommand, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";

/** Simulated devices. */
const DEVICES = 3000;
/** Seconds `owsla load` runs. */
const DURATION_S = 10;

test("owsla load welcomes every simulated device, measures all latency paths and reports gateway memory", async () => {
  const gw = await startGateway({ gatewayId: "loadq", args: ["--workers", "2"] });
  // A fresh 127.x.y range per run, so connections of an earlier run in TIME_WAIT never collide.
  const hostBase = `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}.1`;
  try {
    const proc = Bun.spawn(
      [
        ...owslaCommand(),
        "load",
        "--devices", String(DEVICES),
        "--processes", "2",
        "--data", gw.dir,
        "--port", String(gw.port),
        "--host-base", hostBase,
        "--duration", String(DURATION_S),
        "--settle", "1",
        "--msg-rate", "300",
        "--with-backend",
        "--prefix", gw.prefix,
        "--cmd-rate", "20",
      ],
      { stdout: "pipe", stderr: "pipe", stdin: "ignore" },
    );
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`owsla load exited with ${code}:\n${err.slice(-3000)}`);
    const s = JSON.parse(out);

    expect(s.problems).toEqual([]);
    expect(s.all_welcomed).toBe(true);
    expect(s.connections_held).toBe(DEVICES);
    expect(s.lost_devices).toBe(0);
    expect(s.never_welcomed).toBe(0);
    expect(s.welcomes_per_s).toBeGreaterThan(0);
    expect(s.errors).toEqual({});
    // Progress lines on stderr, one a second.
    expect(err.split("\n").filter((l: string) => l.startsWith("load ")).length).toBeGreaterThanOrEqual(DURATION_S - 2);

    expect(s.messages.acked).toBeGreaterThan(1000);
    expect(s.latency_ms.handshake.count).toBe(DEVICES);
    expect(s.latency_ms.pub_ack.count).toBeGreaterThan(1000);
    expect(s.latency_ms.pub_ack.p99_ms).toBeGreaterThanOrEqual(s.latency_ms.pub_ack.p50_ms);
    expect(s.latency_ms.round_trip_pub_reply.count).toBeGreaterThan(1000);
    expect(s.latency_ms.cmd_delivery.count).toBeGreaterThan(50);

    expect(s.backend.presence_events).toBeGreaterThanOrEqual(DEVICES);
    expect(s.backend.rpc_replies_sent).toBeGreaterThan(1000);
    expect(s.backend.door_acks_received).toBeGreaterThan(50);
    expect(s.backend.latency_ms.door_unlock_round_trip.p50_ms).toBeGreaterThan(0);

    expect(s.gateway.processes).toBe(3);
    expect(s.gateway.rss_bytes.held).toBeGreaterThan(0);
    expect(s.kernel.tcp_sockets_in_use.held).toBeGreaterThanOrEqual(2 * DEVICES);
  } finally {
    await Promise.race([gw.stop(), Bun.sleep(20_000).then(() => gw.kill())]);
    const cleanup = await new TestBackend(gw.prefix).start("none.#");
    await cleanup.stop([gw.gatewayId]);
    removeDir(gw.dir);
  }
}, 60_000);
