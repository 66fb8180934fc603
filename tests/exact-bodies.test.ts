/**
 * Bodies pass through exactly, hostile commands cannot take a worker down, and a device that
 * half-closes still gets its answers. Raw sockets and raw broker bodies: nothing is parsed
 * and re-encoded on the test's side either.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";

let gw: GatewayProcess;
let backend: TestBackend;

beforeAll(async () => {
  gw = await startGateway({ gatewayId: "exact", args: ["--workers", "2"] });
  backend = await new TestBackend(gw.prefix).start();
});

afterAll(async () => {
  await gw.stop();
  await backend.stop([gw.gatewayId]);
  removeDir(gw.dir);
});

/** A raw device: lines as received, unparsed. */
class RawDevice {
  lines: string[] = [];
  closed = false;
  private buf = "";
  private constructor(readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf("\n")) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
    });
    sock.on("close", () => (this.closed = true));
    sock.on("error", () => {});
  }
  static connect(port: number): Promise<RawDevice> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => resolve(new RawDevice(s)));
      s.once("error", reject);
    });
  }
  write(line: string): void {
    this.sock.write(line + "\n");
  }
  async line(pred: (l: string) => boolean, timeoutMs = 5000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const l = this.lines.find(pred);
      if (l !== undefined) return l;
      if (Date.now() > end) throw new Error(`No matching line within ${timeoutMs} ms; got ${JSON.stringify(this.lines.slice(-3)).slice(0, 300)}`);
      await Bun.sleep(10);
    }
  }
  async hello(hw: string): Promise<string> {
    this.write(JSON.stringify({ op: "hello", v: 1, device: hw, token: gw.token(hw) }));
    const w = await this.line((l) => l.includes('"op":"welcome"'));
    return (JSON.parse(w) as { id: string }).id;
  }
}

async function deadLetters(): Promise<number> {
  return (await backend.ch.queueDeclare(`${gw.prefix}owsla.dead`, { passive: true })).messageCount;
}

describe("exact bodies", () => {
  test("a pub body reaches the broker byte for byte (huge exponent, big integer, spacing)", async () => {
    const d = await RawDevice.connect(gw.port);
    await d.hello("exact-up");
    const body = '{"x": 1e999999, "big":12345678901234567890123,"f":0.10000000000000000001,"s":"\\u00e9"}';
    d.write(`{"op":"pub","topic":"raw","body":${body},"ref":"r1"}`);
    await d.line((l) => l === '{"op":"ack","ref":"r1"}');
    const got = await backend.wait((r) => r.routingKey.endsWith(".raw"));
    expect(got.msg.bodyString()).toBe(body);
    d.sock.destroy();
  });

  test("a command body reaches the device byte for byte", async () => {
    const d = await RawDevice.connect(gw.port);
    const id = await d.hello("exact-down");
    const body = '{"n":12345678901234567890123,"e":1e999999,"deep":[[[["x"]]]]}';
    await backend.ch.basicPublish(`${gw.prefix}owsla.down`, gw.gatewayId, body, { headers: { device_id: id }, messageId: "exact-1" });
    const line = await d.line((l) => l.includes('"exact-1"'));
    expect(line).toBe(`{"op":"cmd","id":"exact-1","topic":"cmd","body":${body},"corr":null}`);
    d.sock.destroy();
  });
});

describe("hostile commands", () => {
  test("a command too deep to re-encode is delivered as sent when it fits a frame; one over the frame limit is dead-lettered; the worker keeps serving", async () => {
    const d = await RawDevice.connect(gw.port);
    const id = await d.hello("nested-lock");
    const pids = gw.workerPids();
    const before = await deadLetters();
    const huge = "[".repeat(60_000) + "]".repeat(60_000); // 120 KB: over the 64 KiB frame limit
    await backend.ch.basicPublish(`${gw.prefix}owsla.down`, gw.gatewayId, huge, { headers: { device_id: id }, messageId: "nested-huge" });
    const deep = "[".repeat(30_000) + "]".repeat(30_000); // 60 KB, 30,000 levels: JSON.stringify would throw
    await backend.ch.basicPublish(`${gw.prefix}owsla.down`, gw.gatewayId, deep, { headers: { device_id: id }, messageId: "nested-deep" });
    const line = await d.line((l) => l.includes('"nested-deep"'));
    expect(line).toBe(`{"op":"cmd","id":"nested-deep","topic":"cmd","body":${deep},"corr":null}`);
    d.write('{"op":"ack","ref":"nested-deep"}');
    let after = before;
    for (let i = 0; i < 100 && after === before; i++) {
      await Bun.sleep(50);
      after = await deadLetters();
    }
    expect(after).toBe(before + 1);
    expect(d.lines.some((l) => l.includes("nested-huge"))).toBe(false);
    d.write('{"op":"ping"}');
    await d.line((l) => l === '{"op":"pong"}');
    expect(gw.workerPids()).toEqual(pids);
    d.sock.destroy();
  });
});

describe("hostile headers", () => {
  test("a refused command with a malformed x-death header is dead-lettered by copy (RabbitMQ would crash the queue), and commands keep flowing", async () => {
    const d = await RawDevice.connect(gw.port);
    const id = await d.hello("xdeath-lock");
    const before = await deadLetters();
    // Unknown device + an x-death that is not a list of tables: rabbit_dead_letter crashes on it.
    await backend.ch.basicPublish(`${gw.prefix}owsla.down`, gw.gatewayId, "{}", { headers: { device_id: crypto.randomUUID(), "x-death": [1, "a", [null]] }, messageId: "xdeath-poison" });
    await backend.ch.basicPublish(`${gw.prefix}owsla.down`, gw.gatewayId, "{}", { headers: { "x-death": [1, "a", [null]] }, messageId: "xdeath-nodevice" });
    let after = before;
    for (let i = 0; i < 100 && after < before + 2; i++) {
      await Bun.sleep(50);
      after = await deadLetters();
    }
    expect(after).toBe(before + 2);
    const copies: Record<string, Record<string, unknown> | undefined> = {};
    for (let m = await backend.ch.basicGet(`${gw.prefix}owsla.dead`, { noAck: true }); m; m = await backend.ch.basicGet(`${gw.prefix}owsla.dead`, { noAck: true })) {
      if (m.properties.messageId?.startsWith("xdeath-")) copies[m.properties.messageId] = m.properties.headers;
    }
    expect(copies["xdeath-poison"]?.["x-death"]).toBeUndefined();
    expect(copies["xdeath-poison"]?.["x-owsla-rejected"]).toBe("unknown_device");
    expect(copies["xdeath-nodevice"]?.["x-owsla-rejected"]).toBe("no_device");
    for (let i = 0; i < 3; i++) {
      await backend.ch.basicPublish(`${gw.prefix}owsla.down`, gw.gatewayId, `{"i":${i}}`, { headers: { device_id: id }, messageId: `xdeath-after-${i}` });
      await d.line((l) => l.includes(`"xdeath-after-${i}"`), 10_000);
    }
    d.sock.destroy();
  }, 30_000);
});

describe("half-close", () => {
  test("a device that sends and half-closes (nc -q1) gets its welcome and the ack, then the close", async () => {
    for (let i = 0; i < 4; i++) {
      const d = await RawDevice.connect(gw.port);
      const hw = `half-${i}`;
      d.sock.write(`${JSON.stringify({ op: "hello", v: 1, device: hw, token: gw.token(hw) })}\n{"op":"pub","topic":"temp","body":{"c":21.5},"ref":"r1"}\n`);
      d.sock.end();
      await d.line((l) => l.includes('"op":"welcome"'));
      await d.line((l) => l === '{"op":"ack","ref":"r1"}');
      for (let j = 0; j < 100 && !d.closed; j++) await Bun.sleep(20);
      expect(d.closed).toBe(true);
    }
  });
});
