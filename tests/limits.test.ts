/** Connection limits: max_connections per worker and accept-rate limits per source address. */
import { expect, test } from "bun:test";
import net from "node:net";
import { TestDevice } from "./helpers/device.ts";
import { removeDir, startGateway } from "./helpers/gateway.ts";

test("past max_connections new devices get server_busy at once while existing ones are unaffected", async () => {
  const gw = await startGateway({ gatewayId: "full", waitBroker: false, args: ["--workers", "1", "--device-max-connections", "5"] });
  try {
    const held = [];
    for (let i = 0; i < 5; i++) held.push((await gw.device(`full-${i}`)).dev);
    const extra = await TestDevice.connect(gw.port);
    const e = await extra.op("error");
    expect(e.code).toBe("server_busy");
    expect(e.retry_after).toBeGreaterThan(0);
    await extra.waitClosed();
    for (const d of held) {
      d.send({ op: "ping" });
      await d.op("pong");
    }
    held[0]!.close();
    await held[0]!.waitClosed();
    await Bun.sleep(50);
    const again = await gw.device("full-0");
    expect(again.welcome.op).toBe("welcome");
  } finally {
    await gw.stop();
    removeDir(gw.dir);
  }
});

test("accept_rate_per_ip refuses a burst from one address with rate_limited but admits another address", async () => {
  const gw = await startGateway({ gatewayId: "rate", waitBroker: false, args: ["--workers", "1", "--device-accept-rate-per-ip", "3"] });
  try {
    const devs = await Promise.all(Array.from({ length: 8 }, () => TestDevice.connect(gw.port, "127.0.0.1", undefined, "127.0.0.1")));
    const first = await Promise.all(devs.map((d) => d.next((f) => f.op === "error", 500).then((f) => f.code, () => "open")));
    expect(first.filter((c) => c === "rate_limited").length).toBeGreaterThanOrEqual(4);
    expect(first.filter((c) => c === "open").length).toBeGreaterThanOrEqual(1);
    const other = await TestDevice.connect(gw.port, "127.0.0.1", undefined, "127.0.0.2");
    const w = await other.hello({ device: "other-addr", token: gw.token("other-addr") });
    expect(w.op).toBe("welcome");
    for (const d of devs) d.close();
  } finally {
    await gw.stop();
    removeDir(gw.dir);
  }
});

/**
 * The first frame a connection from `local` gets after sending ping: "pong", an error code, or
 * "no answer" when not even the TCP handshake is answered within `ms` (the kernel dropped it).
 */
function firstAnswer(port: number, local: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: local });
    let connected = false;
    let buf = "";
    const finish = (what: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => finish(connected ? "connected, no frame" : "no answer"), ms);
    s.on("connect", () => {
      connected = true;
      s.write('{"op":"ping"}\n');
    });
    s.on("data", (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf("\n");
      if (i < 0) return;
      const f = JSON.parse(buf.slice(0, i));
      finish(f.op === "error" ? f.code : f.op);
    });
    s.on("error", (e: NodeJS.ErrnoException) => finish(`error ${e.code}`));
  });
}

test("an address that floods past flood_threshold gets no answer at all for flood_block_s, then is served again; other addresses are served throughout", async () => {
  const gw = await startGateway({
    gatewayId: "flooddrop",
    waitBroker: false,
    args: ["--workers", "1", "--device-accept-rate-per-ip", "2", "--device-flood-threshold", "10", "--device-flood-block-s", "2"],
  });
  try {
    // 2 admitted, then refusals; the 10th refusal hands the address to the kernel. Connects the
    // kernel had already answered still get their refusal; later ones get nothing.
    const burst = await Promise.all(Array.from({ length: 30 }, () => firstAnswer(gw.port, "127.61.0.1")));
    const seen = (o: string) => burst.filter((x) => x === o).length;
    expect(seen("pong")).toBe(2);
    expect(seen("rate_limited")).toBeGreaterThanOrEqual(10);
    expect(seen("pong") + seen("rate_limited") + seen("no answer")).toBe(30);
    expect(await firstAnswer(gw.port, "127.61.0.1", 500)).toBe("no answer");
    expect(await firstAnswer(gw.port, "127.61.0.2")).toBe("pong");
    const dropped = gw.json().filter((l) => l.msg === "Connection flood from 127.61.0.1: the kernel drops its new connections for 2 s");
    expect(dropped.length).toBe(1);
    // Dropped for 2 s (ended by the once-a-second sweep): answered again within a few seconds.
    let again = "no answer";
    for (let i = 0; i < 16 && again === "no answer"; i++) again = await firstAnswer(gw.port, "127.61.0.1", 500);
    expect(["pong", "rate_limited"]).toContain(again);
    expect(gw.json().some((l) => l.msg === "Connection flood from 127.61.0.1: accepting its connections again")).toBe(true);
  } finally {
    await gw.stop();
    removeDir(gw.dir);
  }
});
