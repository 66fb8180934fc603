/**
 * Smoke test of a built binary (used in CI for the arm64 build under qemu-user):
 * starts it with one worker, mints a device token with it, does hello/welcome, sends one
 * message through the real broker to a back-end, checks /healthz, and publishes once over
 * MQTT 5 with mosquitto_pub (Debian mosquitto-clients), which must reach the back-end too.
 *
 * Usage: bun scripts/smoke-binary.ts <path-to-binary>   (exit 0 on success)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TestDevice } from "../tests/helpers/device.ts";
import { TestBackend } from "../tests/helpers/backend.ts";
import { BROKER_URL, freePort, uniquePrefix } from "../tests/helpers/gateway.ts";

const bin = process.argv[2];
if (!bin) {
  console.error("Usage: bun scripts/smoke-binary.ts <path-to-binary>");
  process.exit(2);
}
const exe = resolve(bin);
const dir = mkdtempSync(join(tmpdir(), "owsla-smoke-"));
const port = freePort();
const apiPort = freePort();
const mqttPort = freePort();
const prefix = uniquePrefix("smoke");
const gatewayId = "smoke";
const fail = (msg: string): never => {
  console.error(`SMOKE FAILED: ${msg}`);
  process.exit(1);
};

const version = Bun.spawnSync([exe, "version"]);
if (!version.success) fail(`${exe} version exited ${version.exitCode}: ${version.stderr}`);
console.log(version.stdout.toString().trim().replace(/\n/g, "; "));

const backend = await new TestBackend(prefix).start();
const gw = Bun.spawn(
  [exe, "serve", "--workers", "1", "--data", dir, "--port", String(port), "--mqtt-port", String(mqttPort), "--api-port", String(apiPort), "--gateway", gatewayId, "--broker-prefix", prefix, "--broker", BROKER_URL, "--log-format", "json"],
  { stdout: "pipe", stderr: "inherit" },
);
const started = performance.now();
let log = "";
const ready = (async () => {
  const dec = new TextDecoder();
  for await (const chunk of gw.stdout) {
    log += dec.decode(chunk);
    if (log.includes("Gateway ready") && log.includes("Broker link up")) return;
  }
})();
const timeout = Bun.sleep(60_000).then(() => "timeout");
if ((await Promise.race([ready, timeout])) === "timeout") fail(`gateway not ready within 60 s:\n${log}`);
console.log(`ready in ${Math.round(performance.now() - started)} ms`);

try {
  const token = Bun.spawnSync([exe, "token", "smoke-device-1", "--data", dir]).stdout.toString().trim();
  const dev = await TestDevice.connect(port);
  const welcome = await dev.hello({ device: "smoke-device-1", token });
  console.log(`welcome ${welcome.id}`);
  dev.send({ op: "pub", topic: "smoke", body: { ok: true }, ref: "s1" });
  const ack = await dev.op("ack", 20_000);
  if (ack.ref !== "s1") fail(`unexpected ack ${JSON.stringify(ack)}`);
  const got = await backend.wait((r) => r.routingKey === `${gatewayId}.${welcome.id}.smoke`, 20_000);
  if (got.body?.ok !== true) fail(`back-end got ${JSON.stringify(got.body)}`);
  console.log("message reached the back-end");
  const health = await fetch(`http://127.0.0.1:${apiPort}/healthz`).then((r) => r.json());
  if ((health as { status?: string }).status !== "ok") fail(`/healthz said ${JSON.stringify(health)}`);
  console.log("/healthz ok");
  dev.close();
  // MQTT 5 on the same binary, from a client nobody here wrote: a QoS 1 publish, PUBACKed
  // after the broker confirm (mosquitto_pub exits 0 only once it has the PUBACK).
  const mqttToken = Bun.spawnSync([exe, "token", "smoke-device-2", "--data", dir]).stdout.toString().trim();
  const mqttArgs = ["-h", "127.0.0.1", "-p", String(mqttPort), "-V", "mqttv5", "-i", "smoke-device-2", "-u", "device", "-P", mqttToken, "-q", "1", "-t", "smoke/mqtt", "-m", '{"mqtt":true}'];
  const pub = Bun.spawnSync(["mosquitto_pub", ...mqttArgs], { timeout: 30_000, stderr: "pipe" });
  if (!pub.success) fail(`mosquitto_pub exited with ${pub.exitCode ?? pub.signalCode}: ${pub.stderr.toString().trim()}`);
  const viaMqtt = await backend.wait((r) => r.routingKey.endsWith(".smoke.mqtt"), 20_000);
  if (viaMqtt.body?.mqtt !== true) fail(`back-end got ${JSON.stringify(viaMqtt.body)} over MQTT`);
  console.log("MQTT publish (mosquitto_pub, MQTT 5, QoS 1) reached the back-end");
} finally {
  gw.kill("SIGTERM");
  await gw.exited;
  await backend.stop([gatewayId]);
  rmSync(dir, { recursive: true, force: true });
}
console.log("SMOKE OK");
