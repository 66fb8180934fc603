/** Connection limits: max_connections per worker and accept-rate limits per source address. */
import { expect, test } from "bun:test";
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
