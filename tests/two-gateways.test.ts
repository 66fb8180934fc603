/**
 * Two gateways (ids gw-a and gw-b, two worker processes each) on one broker with one name prefix, as two
 * buildings of one site would run: commands reach only the addressed gateway's devices,
 * upstream messages say which gateway sent them, and RPC replies find their way back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TestDevice } from "./helpers/device.ts";
import { GatewayProcess, removeDir, startGateway, uniquePrefix } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";

const prefix = uniquePrefix("two");
let gwA: GatewayProcess;
let gwB: GatewayProcess;
let backend: TestBackend;

/** A connected device and its welcome. */
interface Dev {
  hw: string;
  gw: GatewayProcess;
  dev: TestDevice;
  id: string;
  conn: string;
}
const devices: Dev[] = [];
const onA = () => devices.filter((d) => d.gw === gwA);
const onB = () => devices.filter((d) => d.gw === gwB);

/** Time given to a message that must not arrive. */
const SETTLE_MS = 400;

beforeAll(async () => {
  [gwA, gwB] = await Promise.all([
    startGateway({ gatewayId: "gw-a", prefix, args: ["--workers", "2"] }),
    startGateway({ gatewayId: "gw-b", prefix, args: ["--workers", "2"] }),
  ]);
  backend = await new TestBackend(prefix).start();
  for (const [gw, hws] of [[gwA, ["a-thermo-1", "a-lock-2"]], [gwB, ["b-thermo-1", "b-lock-2"]]] as const) {
    for (const hw of hws) {
      const { dev, welcome } = await gw.device(hw);
      expect(welcome.gateway).toBe(gw.gatewayId);
      devices.push({ hw, gw, dev, id: welcome.id, conn: welcome.conn });
    }
  }
});

afterAll(async () => {
  for (const d of devices) d.dev.close();
  await Promise.all([gwA, gwB].filter(Boolean).map((g) => g.stop()));
  if (backend) {
    await backend.ch.queueDelete(`${prefix}owsla.dead`).catch(() => {});
    await backend.ch.exchangeDelete(`${prefix}owsla.dead`).catch(() => {});
    await backend.stop(["gw-a", "gw-b"]);
  }
  for (const g of [gwA, gwB].filter(Boolean)) removeDir(g.dir);
});

/** Commands (`cmd` frames) a device got so far that nobody has claimed with `next`. */
function unclaimedCmds(d: Dev) {
  return d.dev.frames.filter((f) => f.op === "cmd");
}

/** Messages in the shared dead-letter queue. */
async function deadCount(): Promise<number> {
  return (await backend.ch.queueDeclare(`${prefix}owsla.dead`, { durable: true })).messageCount;
}

describe("two gateways on one broker", () => {
  test("each gateway declares and consumes its own durable queue", async () => {
    for (const id of ["gw-a", "gw-b"]) {
      const q = await backend.ch.queueDeclare(`${prefix}owsla.gw.${id}`, { passive: true });
      expect(q.consumerCount).toBeGreaterThanOrEqual(1);
    }
  });

  test("each device gets exactly the commands addressed to it through its own gateway", async () => {
    for (const d of devices) {
      for (const n of [1, 2]) {
        await backend.command(d.gw.gatewayId, d.id, { for: d.hw, n }, { topic: "set", messageId: `${d.hw}-cmd-${n}` });
      }
    }
    for (const d of devices) {
      const got = [await d.dev.op("cmd"), await d.dev.op("cmd")];
      expect(got.map((c) => c.id).sort()).toEqual([`${d.hw}-cmd-1`, `${d.hw}-cmd-2`]);
      for (const c of got) {
        expect(c.topic).toBe("set");
        expect(c.body.for).toBe(d.hw);
        d.dev.send({ op: "ack", ref: c.id });
      }
    }
    await Bun.sleep(SETTLE_MS);
    for (const d of devices) expect(unclaimedCmds(d)).toEqual([]);
  });

  test("a command to gateway A for a device that only ever connected to B is dead-lettered, delivered to no one", async () => {
    const target = onB()[0]!;
    const before = await deadCount();
    await backend.command("gw-a", target.id, { wrong: "gateway" }, { messageId: "misrouted-1" });
    let after = before;
    for (let i = 0; i < 60 && after === before; i++) {
      await Bun.sleep(50);
      after = await deadCount();
    }
    expect(after).toBe(before + 1);
    await Bun.sleep(SETTLE_MS);
    for (const d of devices) expect(unclaimedCmds(d)).toEqual([]);
    // Gateway B never sees it either: the device reconnecting to B gets nothing stored.
    target.dev.send({ op: "bye" });
    await target.dev.waitClosed();
    const { dev, welcome } = await gwB.device(target.hw);
    expect(welcome.id).toBe(target.id);
    target.dev = dev;
    target.conn = welcome.conn;
    dev.send({ op: "ping" });
    await dev.op("pong");
    await Bun.sleep(SETTLE_MS);
    expect(unclaimedCmds(target)).toEqual([]);
    const rejected = gwA.json().filter((l) => String(l.msg).startsWith("Rejected command"));
    expect(rejected.map((l) => l.reason)).toEqual(["unknown_device"]);
    expect(gwB.json().filter((l) => String(l.msg).startsWith("Rejected command"))).toEqual([]);
  });

  test("upstream messages carry the sending gateway's id in the gateway_id header and routing-key prefix", async () => {
    for (const d of devices) d.dev.send({ op: "pub", topic: "sensors.temp", body: { from: d.hw }, ref: `up-${d.hw}` });
    for (const d of devices) expect((await d.dev.op("ack")).ref).toBe(`up-${d.hw}`);
    for (const d of devices) {
      const gwId = d.gw.gatewayId;
      const m = await backend.wait((r) => r.body?.from === d.hw);
      expect(m.routingKey).toBe(`${gwId}.${d.id}.sensors.temp`);
      expect(m.headers).toMatchObject({ gateway_id: gwId, device_id: d.id, hardware_id: d.hw, connection_id: d.conn, topic: "sensors.temp" });
      expect(m.replyTo).toBe(`${prefix}owsla.gw.${gwId}`);
    }
    await Bun.sleep(100);
    const ups = backend.received.filter((r) => r.body?.from);
    expect(ups.length).toBe(devices.length);
    for (const r of ups) {
      const d = devices.find((x) => x.hw === r.body.from)!;
      expect(r.routingKey.split(".")[0]).toBe(d.gw.gatewayId);
    }
  });

  test("presence is announced under the gateway that holds the device", async () => {
    for (const d of devices) {
      const p = await backend.wait((r) => r.routingKey === `${d.gw.gatewayId}.${d.id}.$presence` && r.body.event === "connected" && r.headers.connection_id === d.conn);
      expect(p.headers.gateway_id).toBe(d.gw.gatewayId);
    }
  });

  test("RPC replies reach the requesting device on the right gateway, even with equal refs", async () => {
    const a = onA()[0]!;
    const b = onB()[0]!;
    for (const d of [a, b]) d.dev.send({ op: "pub", topic: "rpc.get_schedule", body: { ask: d.hw }, ref: "q-1" });
    const reqA = await backend.wait((r) => r.routingKey === `gw-a.${a.id}.rpc.get_schedule`);
    const reqB = await backend.wait((r) => r.routingKey === `gw-b.${b.id}.rpc.get_schedule`);
    expect(reqA.replyTo).toBe(`${prefix}owsla.gw.gw-a`);
    expect(reqB.replyTo).toBe(`${prefix}owsla.gw.gw-b`);
    // Reply in the opposite order from the requests.
    await backend.reply(reqB, { answer: b.hw });
    await backend.reply(reqA, { answer: a.hw });
    for (const d of [a, b]) {
      const c = await d.dev.op("cmd");
      expect(c).toMatchObject({ op: "cmd", corr: "q-1", topic: "cmd", body: { answer: d.hw } });
      d.dev.send({ op: "ack", ref: c.id });
    }
    await Bun.sleep(SETTLE_MS);
    for (const d of devices) expect(unclaimedCmds(d)).toEqual([]);
  });
});
