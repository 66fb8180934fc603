/**
 * Two gateways (ids gw-a and gw-b, two worker processes each) on one broker with one name
 * prefix, as two buildings of one site would run: commands reach only the addressed gateway's
 * devices, upstream messages say which gateway sent them, and RPC replies find their way back.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { TestDevice } from "./helpers/device.ts";
import { GatewayProcess, removeDir, startGateway, uniquePrefix } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";

/** Waits inside tests are shorter, so a failure is reported as such, not as a timeout. */
setDefaultTimeout(20_000);

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
  return (await backend.ch.queueDeclare(`${prefix}owsla.dead`, { passive: true })).messageCount;
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
      const got = [await d.dev.op("cmd", 3000), await d.dev.op("cmd", 3000)];
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
    const isMisrouted = (f: Record<string, any>) => f.op === "cmd" && f.id === "misrouted-1";
    const before = await deadCount();
    await backend.command("gw-a", target.id, { wrong: "gateway" }, { messageId: "misrouted-1" });
    let after = before;
    for (let i = 0; i < 60 && after === before; i++) {
      await Bun.sleep(50);
      after = await deadCount();
    }
    expect(after).toBe(before + 1);
    await Bun.sleep(SETTLE_MS);
    for (const d of devices) expect(d.dev.frames.filter(isMisrouted)).toEqual([]);
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
    expect(dev.frames.filter(isMisrouted)).toEqual([]);
    const rejections = (gw: GatewayProcess) =>
      gw.json().filter((l) => String(l.msg).startsWith("Rejected command") && String(l.detail).includes("misrouted-1"));
    expect(rejections(gwA).map((l) => l.reason)).toEqual(["unknown_device"]);
    expect(rejections(gwB)).toEqual([]);
  });

  test("a command sent as soon as the device's connected presence arrives is delivered, not dead-lettered", async () => {
    // The back-end learns from presence which gateway holds a device, and may command it at once.
    const before = await deadCount();
    const fresh: TestDevice[] = [];
    const misses: string[] = [];
    for (let i = 0; i < 6; i++) {
      const hw = `b-eager-${i}`;
      const { dev, welcome } = await gwB.device(hw);
      fresh.push(dev);
      await backend.wait((r) => r.routingKey === `gw-b.${welcome.id}.$presence` && r.body.event === "connected" && r.headers.connection_id === welcome.conn, 3000);
      // Two commands: the broker hands them to different workers of gw-b.
      await backend.command("gw-b", welcome.id, { n: 1 }, { messageId: `${hw}-1` });
      await backend.command("gw-b", welcome.id, { n: 2 }, { messageId: `${hw}-2` });
      for (const id of [`${hw}-1`, `${hw}-2`]) {
        const c = await dev.next((f) => f.op === "cmd" && f.id === id, 2000).catch(() => null);
        if (c) dev.send({ op: "ack", ref: id });
        else misses.push(id);
      }
    }
    for (const dev of fresh) dev.close();
    expect(misses).toEqual([]);
    expect(await deadCount()).toBe(before);
  });

  test("a command the device acked is not sent again when it reconnects", async () => {
    // Commands taken from the broker by one worker for a device held by another, acked at once.
    const PER_DEVICE = 5;
    const resent: string[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4, 5].map(async (i) => {
        const hw = `a-acker-${i}`;
        const first = await gwA.device(hw);
        const id = first.welcome.id as string;
        await backend.wait((r) => r.routingKey === `gw-a.${id}.$presence` && r.body.event === "connected" && r.headers.connection_id === first.welcome.conn, 3000);
        await Bun.sleep(100); // the device row is committed: no race with "unknown device"
        const ids = Array.from({ length: PER_DEVICE }, (_, n) => `${hw}-once-${n}`);
        await Promise.all(ids.map((m, n) => backend.command("gw-a", id, { n }, { messageId: m })));
        for (const m of ids) {
          await first.dev.next((f) => f.op === "cmd" && f.id === m, 3000);
          first.dev.send({ op: "ack", ref: m });
        }
        first.dev.send({ op: "ping" });
        await first.dev.op("pong");
        await Bun.sleep(200);
        first.dev.send({ op: "bye" });
        await first.dev.waitClosed();
        const again = await gwA.device(hw);
        again.dev.send({ op: "ping" });
        await again.dev.op("pong");
        await Bun.sleep(SETTLE_MS);
        for (const f of again.dev.frames) if (f.op === "cmd") resent.push(f.id);
        again.dev.close();
      }),
    );
    expect(resent).toEqual([]);
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
      const c = await d.dev.next((f) => f.op === "cmd" && f.corr === "q-1", 3000);
      expect(c).toMatchObject({ op: "cmd", corr: "q-1", topic: "cmd", body: { answer: d.hw } });
      d.dev.send({ op: "ack", ref: c.id });
    }
    await Bun.sleep(SETTLE_MS);
    for (const d of devices) expect(d.dev.frames.filter((f) => f.op === "cmd" && f.corr === "q-1")).toEqual([]);
  });
});
