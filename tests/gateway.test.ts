/**
 * Black-box tests of one gateway process: devices over real TCP sockets, the back-end on the
 * real RabbitMQ. Covers the line protocol, identity, both message paths and the store.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestDevice } from "./helpers/device.ts";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { Database } from "bun:sqlite";
import { join } from "node:path";

let gw: GatewayProcess;
let backend: TestBackend;

beforeAll(async () => {
  gw = await startGateway({ gatewayId: "bldg-7", args: ["--device-hello-timeout-ms", "1500", "--device-keepalive-s", "2"] });
  backend = await new TestBackend(gw.prefix).start();
});

afterAll(async () => {
  await gw.stop();
  await backend.stop([gw.gatewayId]);
  removeDir(gw.dir);
});

describe("hello", () => {
  test("welcome carries a stable v5 UUID, a fresh connection id, gateway id and keepalive", async () => {
    const a = await gw.device("thermo-00042");
    const b = await gw.device("thermo-00043");
    expect(a.welcome.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-/);
    expect(a.welcome.gateway).toBe("bldg-7");
    expect(a.welcome.keepalive).toBe(2);
    expect(b.welcome.id).not.toBe(a.welcome.id);
    a.dev.send({ op: "bye" });
    await a.dev.waitClosed();
    const again = await gw.device("thermo-00042");
    expect(again.welcome.id).toBe(a.welcome.id);
    expect(again.welcome.conn).not.toBe(a.welcome.conn);
    again.dev.close();
    b.dev.close();
  });

  test("a wrong or missing token is refused with unauthorized and the connection closed", async () => {
    const d = await TestDevice.connect(gw.port);
    d.send({ op: "hello", v: 1, device: "lock-1", token: "forged" });
    const e = await d.op("error");
    expect(e.code).toBe("unauthorized");
    await d.waitClosed();
    const d2 = await TestDevice.connect(gw.port);
    d2.send({ op: "hello", v: 1, device: "lock-1" });
    expect((await d2.op("error")).code).toBe("unauthorized");
    await d2.waitClosed();
  });

  test("a newer connection of the same device takes over the older one", async () => {
    const first = await gw.device("lock-takeover");
    const second = await gw.device("lock-takeover");
    const e = await first.dev.op("error");
    expect(e.code).toBe("taken_over");
    await first.dev.waitClosed();
    second.dev.send({ op: "ping" });
    await second.dev.op("pong");
    second.dev.close();
  });

  test("no hello within the hello timeout closes with hello_timeout", async () => {
    const d = await TestDevice.connect(gw.port);
    const e = await d.op("error", 4000);
    expect(e.code).toBe("hello_timeout");
    await d.waitClosed();
  });

  test("a silent device is closed with keepalive_timeout after 1.5 x keepalive", async () => {
    const { dev } = await gw.device("sleepy");
    const e = await dev.op("error", 6000);
    expect(e.code).toBe("keepalive_timeout");
    await dev.waitClosed();
  });
});

describe("frames", () => {
  test("unknown op gets unknown_op and the connection stays open", async () => {
    const { dev } = await gw.device("fw-new");
    dev.send({ op: "teleport" });
    expect((await dev.op("error")).code).toBe("unknown_op");
    dev.send({ op: "ping", extra: "ignored" });
    await dev.op("pong");
    dev.close();
  });

  test("invalid JSON gets bad_frame and a close", async () => {
    const { dev } = await gw.device("fw-bad");
    dev.send("this is not json\n");
    expect((await dev.op("error")).code).toBe("bad_frame");
    await dev.waitClosed();
  });

  test("a line over max_frame_bytes gets frame_too_large and a close, before any newline", async () => {
    const d = await TestDevice.connect(gw.port);
    d.send(new Uint8Array(70_000).fill(0x61));
    expect((await d.op("error")).code).toBe("frame_too_large");
    await d.waitClosed();
  });

  test("pub before hello gets not_ready", async () => {
    const d = await TestDevice.connect(gw.port);
    d.send({ op: "pub", topic: "temp", body: 1, ref: "x" });
    expect((await d.op("error")).code).toBe("not_ready");
    d.close();
  });
});

describe("upstream", () => {
  test("pub reaches the back-end per the contract and the device gets its ack", async () => {
    const { dev, welcome } = await gw.device("thermo-up");
    dev.send({ op: "pub", topic: "sensors.temp", body: { c: 21.5 }, ref: "r1" });
    expect((await dev.op("ack")).ref).toBe("r1");
    const m = await backend.wait((r) => r.routingKey === `bldg-7.${welcome.id}.sensors.temp`);
    expect(m.body).toEqual({ c: 21.5 });
    expect(m.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(m.correlationId).toBe(`${welcome.id}:r1`);
    expect(m.replyTo).toBe(`${gw.prefix}owsla.gw.bldg-7`);
    expect(m.headers).toMatchObject({ device_id: welcome.id, connection_id: welcome.conn, hardware_id: "thermo-up", gateway_id: "bldg-7", topic: "sensors.temp" });
    expect(m.msg.properties.deliveryMode).toBe(2);
    expect(m.msg.properties.contentType).toBe("application/json");
    expect(m.msg.properties.timestamp).toBeInstanceOf(Date);
    dev.close();
  });

  test("presence events announce connect and disconnect with the reason", async () => {
    const { dev, welcome } = await gw.device("thermo-presence");
    const on = await backend.wait((r) => r.routingKey === `bldg-7.${welcome.id}.$presence` && r.body.event === "connected");
    expect(on.headers.connection_id).toBe(welcome.conn);
    dev.send({ op: "bye" });
    const off = await backend.wait((r) => r.routingKey === `bldg-7.${welcome.id}.$presence` && r.body.event === "disconnected");
    expect(off.body.reason).toBe("bye");
    expect(Date.parse(off.body.at)).toBeGreaterThan(0);
  });
});

describe("downstream", () => {
  test("a command published to owsla.down reaches the device, and its ack removes it", async () => {
    const { dev, welcome } = await gw.device("lock-cmd");
    await backend.command("bldg-7", welcome.id, { unlock: true }, { topic: "door.unlock", messageId: "cmd-1", correlationId: "c-9" });
    const c = await dev.op("cmd");
    expect(c).toEqual({ op: "cmd", id: "cmd-1", topic: "door.unlock", body: { unlock: true }, corr: "c-9" });
    dev.send({ op: "ack", ref: "cmd-1" });
    dev.send({ op: "ping" });
    await dev.op("pong");
    // The ack's removal is a group commit, possibly waiting for the consuming worker's insert:
    // a device reconnecting within those milliseconds may see the command again (at least once).
    await Bun.sleep(300);
    dev.close();
    await dev.waitClosed();
    const again = await gw.device("lock-cmd");
    again.dev.send({ op: "ping" });
    await again.dev.op("pong");
    await Bun.sleep(200);
    expect(again.dev.frames.filter((f) => f.op === "cmd")).toEqual([]);
    again.dev.close();
  });

  test("an RPC reply sent the standard way reaches the requesting device with corr = its ref", async () => {
    const { dev, welcome } = await gw.device("thermo-rpc");
    dev.send({ op: "pub", topic: "rpc.get_schedule", body: {}, ref: "q-77" });
    const req = await backend.wait((r) => r.routingKey === `bldg-7.${welcome.id}.rpc.get_schedule`);
    await backend.reply(req, { schedule: [1, 2] });
    const c = await dev.op("cmd");
    expect(c.corr).toBe("q-77");
    expect(c.body).toEqual({ schedule: [1, 2] });
    expect(c.topic).toBe("cmd");
    dev.close();
  });

  test("a command for an offline device is stored and delivered on reconnect until acked", async () => {
    const { dev, welcome } = await gw.device("lock-offline");
    dev.send({ op: "bye" });
    await dev.waitClosed();
    await backend.command("bldg-7", welcome.id, { unlock: 1 }, { messageId: "off-1" });
    await Bun.sleep(300);
    const r1 = await gw.device("lock-offline");
    expect((await r1.dev.op("cmd")).id).toBe("off-1");
    r1.dev.close(); // no ack: it must come again
    await r1.dev.waitClosed();
    const r2 = await gw.device("lock-offline");
    expect((await r2.dev.op("cmd")).id).toBe("off-1");
    r2.dev.send({ op: "ack", ref: "off-1" });
    await Bun.sleep(100);
    r2.dev.close();
    await r2.dev.waitClosed();
    const r3 = await gw.device("lock-offline");
    await Bun.sleep(300);
    expect(r3.dev.frames.filter((f) => f.op === "cmd")).toEqual([]);
    r3.dev.close();
  });

  test("an expired command is not delivered", async () => {
    const { dev, welcome } = await gw.device("lock-expire");
    dev.send({ op: "bye" });
    await dev.waitClosed();
    await backend.command("bldg-7", welcome.id, { x: 1 }, { messageId: "exp-1", expiration: "200" });
    await Bun.sleep(600);
    const r = await gw.device("lock-expire");
    await Bun.sleep(300);
    expect(r.dev.frames.filter((f) => f.op === "cmd")).toEqual([]);
    r.dev.close();
  });

  test("a command for a device never seen is dead-lettered, not delivered", async () => {
    const ghost = "00000000-0000-4000-8000-000000000000";
    const q = await backend.ch.queueDeclare(`${gw.prefix}owsla.dead`, { passive: true });
    const before = q.messageCount;
    await backend.command("bldg-7", ghost, { x: 1 });
    let after = before;
    for (let i = 0; i < 50 && after === before; i++) {
      await Bun.sleep(50);
      after = (await backend.ch.queueDeclare(`${gw.prefix}owsla.dead`, { passive: true })).messageCount;
    }
    expect(after).toBe(before + 1);
  });
});

describe("store", () => {
  /** The device's row in the site database. */
  const siteRow = (id: string): Record<string, any> => {
    const db = new Database(join(gw.dir, "owsla.db"), { readonly: true });
    try {
      return db.query("SELECT * FROM devices WHERE id = ?").get(id) as Record<string, any>;
    } finally {
      db.close();
    }
  };
  /** The row once the site database has recorded the device's close (its close reason). */
  const closedRow = async (id: string): Promise<Record<string, any>> => {
    let row = siteRow(id);
    for (let i = 0; i < 100 && row.close_reason === null; i++) {
      await Bun.sleep(20);
      row = siteRow(id);
    }
    return row;
  };

  test("the device table records identity, connection state, last close reason, and last seen = last traffic", async () => {
    const { dev, welcome } = await gw.device("thermo-table");
    await Bun.sleep(400);
    const pingAt = Date.now();
    dev.send({ op: "ping" });
    await dev.op("pong");
    dev.send({ op: "bye" });
    await dev.waitClosed();
    const row = await closedRow(welcome.id);
    // The bye itself is traffic too: last seen is at least the ping, well after the connect.
    expect(row.last_seen).toBeGreaterThanOrEqual(pingAt - 5);
    expect(row.last_seen - row.first_seen).toBeGreaterThanOrEqual(350);
    expect(row.hardware_id).toBe("thermo-table");
    expect(row.connected).toBe(0);
    expect(row.close_reason).toBe("bye");
    expect(row.last_seen).toBeGreaterThanOrEqual(row.first_seen);
  });

  test("last seen is the last traffic, not the close: a device silent after its ping and then cut keeps the ping's time", async () => {
    const { dev, welcome } = await gw.device("thermo-silent");
    await Bun.sleep(400);
    const pingAt = Date.now();
    dev.send({ op: "ping" });
    await dev.op("pong");
    const pongAt = Date.now();
    await Bun.sleep(400); // silence: no frame either way
    const closedAt = Date.now();
    dev.close(); // no bye: the socket just goes
    const row = await closedRow(welcome.id);
    expect(row.close_reason).not.toBeNull();
    // The ping was the last traffic: after the connect, before the silence and the close.
    expect(row.last_seen).toBeGreaterThanOrEqual(pingAt - 5);
    expect(row.last_seen).toBeLessThanOrEqual(pongAt);
    expect(row.last_seen).toBeLessThan(closedAt);
  });
});
