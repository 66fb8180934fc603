/**
 * Keeps the benchmarks' contract floor (scripts/bench-lib/floor-server.ts) honest: on a small
 * load it must do the broker work it stands for — one presence event per welcome, every pub
 * confirmed before its ack, every reply delivered to its device — over the line protocol and
 * MQTT, or the floor's numbers in docs/benchmarks.md would be a floor of something else.
 */
import { afterAll, expect, test } from "bun:test";
import { owslaCommand, ROOT, uniquePrefix } from "./helpers/gateway.ts";
import { startBareServers } from "../scripts/bench-lib/procs.ts";
import { TestBackend } from "./helpers/backend.ts";

const prefix = uniquePrefix("floorq");
const mqttPort = 20_000 + Math.floor(Math.random() * 10_000);
const floor = await startBareServers(2, { prefix, gateway: "floorq", mqttPort });

afterAll(async () => {
  await floor.stop();
  const b = await new TestBackend(prefix).start("none.#");
  await b.stop([]);
});

async function load(args: string[]): Promise<any> {
  const hostBase = `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}.1`;
  const proc = Bun.spawn([...owslaCommand(), "load", "--auth", "none", "--duration", "8", "--settle", "1", "--msg-rate", "200", "--with-backend", "--prefix", prefix, "--cmd-rate", "0", "--quiet", "--host-base", hostBase, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`owsla load exited with ${code}:\n${err.slice(-3000)}`);
  return JSON.parse(out);
}

for (const [name, args] of [
  ["the line protocol", ["--devices", "300", "--port", String(floor.port)]],
  ["MQTT", ["--mqtt", "--devices", "300", "--mqtt-port", String(mqttPort)]],
] as const) {
  test(`the contract floor over ${name}: presence per welcome, acks after confirms, every reply delivered`, async () => {
    const s = await load([...args]);
    expect(s.problems).toEqual([]);
    expect(s.errors).toEqual({});
    expect(s.lost_devices).toBe(0);
    expect(s.backend.presence_events).toBeGreaterThanOrEqual(300);
    expect(s.messages.acked).toBeGreaterThan(500);
    expect(s.messages.acked).toBe(s.messages.sent - s.messages.unacked_at_end);
    // Every reply the back-end sent reached a device (a few may still be in flight at the end).
    expect(s.messages.rpc_replies).toBeGreaterThan(0.95 * s.backend.rpc_replies_sent);
    expect(s.backend.rpc_replies_sent).toBeGreaterThan(500);
  }, 60_000);
}

