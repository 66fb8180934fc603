/**
 * Black-box tests of device identity across gateway processes: a hardware id maps to one UUID
 * on every gateway of a site and across restarts; anonymous devices (auth mode `none`) keep
 * their UUID through `resume`, even after a crash; token mode refuses a hello without `device`.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { v5 as uuidv5 } from "uuid";
import { TestDevice } from "./helpers/device.ts";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { DEFAULT_GATEWAY_SITE_NAMESPACE } from "../src/config/defaults.ts";

/** Waits inside tests are shorter, so a failure is reported as such, not as a timeout. */
setDefaultTimeout(20_000);

/** A site namespace other than the default. */
const OTHER_NAMESPACE = "6f1c2d3e-4b5a-4978-8a1b-2c3d4e5f6a7b";
const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Gateways of the default site (a, b) and of another site (c); d runs with auth mode none. */
let a: GatewayProcess;
let b: GatewayProcess;
let c: GatewayProcess;
let d: GatewayProcess;
const all = () => [a, b, c, d].filter(Boolean);

beforeAll(async () => {
  [a, b, c, d] = await Promise.all([
    startGateway({ gatewayId: "site-a" }),
    startGateway({ gatewayId: "site-b" }),
    startGateway({ gatewayId: "other-site", args: ["--gateway-site-namespace", OTHER_NAMESPACE] }),
    // Two workers, so that resume is served by whichever worker the kernel picks.
    startGateway({ gatewayId: "anon", args: ["--auth-mode", "none", "--workers", "2"] }),
  ]);
});

afterAll(async () => {
  for (const gw of all()) {
    if (gw.proc.exitCode === null) await gw.stop();
    const backend = await new TestBackend(gw.prefix).start().catch(() => null);
    if (backend) {
      await backend.ch.queueDelete(`${gw.prefix}owsla.dead`).catch(() => {});
      await backend.ch.exchangeDelete(`${gw.prefix}owsla.dead`).catch(() => {});
      await backend.stop([gw.gatewayId]);
    }
    removeDir(gw.dir);
  }
});

/** Says hello, returns the welcome and closes the connection gracefully. */
async function idOnce(gw: GatewayProcess, hardwareId: string): Promise<string> {
  const { dev, welcome } = await gw.device(hardwareId);
  dev.send({ op: "bye" });
  await dev.waitClosed();
  return welcome.id as string;
}

/** Sends `hello` with `fields` on a new connection; returns the reply (welcome or error) and the device. */
async function helloRaw(gw: GatewayProcess, fields: Record<string, unknown>) {
  const dev = await TestDevice.connect(gw.port);
  dev.send({ op: "hello", v: 1, ...fields });
  const reply = await dev.next((f) => f.op === "welcome" || f.op === "error");
  return { dev, reply };
}

describe("hardware id", () => {
  test("the same hardware id gets the same UUID after a graceful restart on the same data dir", async () => {
    const before = await idOnce(a, "thermo-restart-1");
    expect(before).toBe(uuidv5("thermo-restart-1", DEFAULT_GATEWAY_SITE_NAMESPACE));
    expect(await a.stop()).toBe(0);
    await a.start();
    expect(await idOnce(a, "thermo-restart-1")).toBe(before);
    // A different hardware id still gets a different UUID after the restart.
    expect(await idOnce(a, "thermo-restart-2")).not.toBe(before);
  });

  test("a second gateway of the same site (own id, data dir and secret) gives the same UUID", async () => {
    expect(b.dir).not.toBe(a.dir);
    expect(b.token("lock-shared")).not.toBe(a.token("lock-shared")); // different site secrets
    const onA = await a.device("lock-shared");
    const onB = await b.device("lock-shared");
    expect(onA.welcome.gateway).toBe("site-a");
    expect(onB.welcome.gateway).toBe("site-b");
    expect(onB.welcome.id).toBe(onA.welcome.id);
    expect(onB.welcome.conn).not.toBe(onA.welcome.conn);
    onA.dev.close();
    onB.dev.close();
  });

  test("a gateway with another --gateway-site-namespace gives a different UUID", async () => {
    const site = await idOnce(a, "lock-elsewhere");
    const other = await idOnce(c, "lock-elsewhere");
    expect(other).not.toBe(site);
    expect(other).toBe(uuidv5("lock-elsewhere", OTHER_NAMESPACE));
    expect(site).toBe(uuidv5("lock-elsewhere", DEFAULT_GATEWAY_SITE_NAMESPACE));
  });
});

describe("auth mode none", () => {
  test("a device without `device` gets a fresh UUID each time it does not resume", async () => {
    const first = await helloRaw(d, {});
    const second = await helloRaw(d, {});
    expect(first.reply.op).toBe("welcome");
    expect(second.reply.op).toBe("welcome");
    expect(first.reply.id).toMatch(V4);
    expect(second.reply.id).toMatch(V4);
    expect(second.reply.id).not.toBe(first.reply.id);
    first.dev.close();
    second.dev.close();
  });

  test("resume gets the same identity on a new connection and after SIGKILL and restart", async () => {
    const fresh = await helloRaw(d, {});
    expect(fresh.reply.op).toBe("welcome");
    const id = fresh.reply.id as string;
    fresh.dev.send({ op: "bye" });
    await fresh.dev.waitClosed();

    // Several new connections (spread over the workers) all get the same identity back.
    const conns = new Set<string>([fresh.reply.conn]);
    for (let i = 0; i < 4; i++) {
      const again = await helloRaw(d, { resume: id });
      expect(again.reply).toMatchObject({ op: "welcome", id, gateway: "anon" });
      conns.add(again.reply.conn);
      again.dev.send({ op: "bye" });
      await again.dev.waitClosed();
    }
    expect(conns.size).toBe(5);

    // A device that learnt its identity and is then cut by a crash keeps it.
    const live = await helloRaw(d, {});
    const liveId = live.reply.id as string;
    await d.kill();
    await live.dev.waitClosed();
    await d.start();

    const afterCrash = await helloRaw(d, { resume: id });
    expect(afterCrash.reply).toMatchObject({ op: "welcome", id });
    afterCrash.dev.close();
    const liveAfterCrash = await helloRaw(d, { resume: liveId });
    expect(liveAfterCrash.reply).toMatchObject({ op: "welcome", id: liveId });
    liveAfterCrash.dev.close();
  });

  test("resume of a UUID that belongs to a hardware-id device is refused with unauthorized", async () => {
    const hw = await helloRaw(d, { device: "thermo-hw-owned" });
    expect(hw.reply.op).toBe("welcome");
    expect(hw.reply.id).toBe(uuidv5("thermo-hw-owned", DEFAULT_GATEWAY_SITE_NAMESPACE));
    hw.dev.send({ op: "bye" });
    await hw.dev.waitClosed();

    const thief = await helloRaw(d, { resume: hw.reply.id });
    expect(thief.reply).toMatchObject({ op: "error", code: "unauthorized" });
    await thief.dev.waitClosed();

    // Also while the hardware-id device is connected: it is not taken over.
    const owner = await helloRaw(d, { device: "thermo-hw-owned" });
    const thief2 = await helloRaw(d, { resume: owner.reply.id });
    expect(thief2.reply).toMatchObject({ op: "error", code: "unauthorized" });
    await thief2.dev.waitClosed();
    owner.dev.send({ op: "ping" });
    await owner.dev.op("pong");
    expect(owner.dev.frames.filter((f) => f.op === "error")).toEqual([]);
    owner.dev.close();
  });

  test("resume of a hardware-id device's UUID is refused even right after that device's first welcome", async () => {
    const accepted: string[] = [];
    for (let i = 0; i < 8; i++) {
      const hw = `lock-fresh-${i}-${Math.random().toString(36).slice(2, 8)}`;
      const owner = await helloRaw(d, { device: hw });
      expect(owner.reply.op).toBe("welcome");
      const thief = await helloRaw(d, { resume: owner.reply.id });
      if (thief.reply.op !== "error" || thief.reply.code !== "unauthorized") accepted.push(`${hw}: ${JSON.stringify(thief.reply)}`);
      thief.dev.close();
      owner.dev.close();
    }
    expect(accepted).toEqual([]);
  });
});

describe("auth mode token (default)", () => {
  test("hello without `device` is refused with unauthorized and closed", async () => {
    const bare = await helloRaw(a, {});
    expect(bare.reply).toMatchObject({ op: "error", code: "unauthorized" });
    await bare.dev.waitClosed();
  });

  test("hello with only `resume` (no `device`) is refused with unauthorized", async () => {
    const anonId = "3b0f7c52-0c7e-4f6e-9d0a-6a3e9c1b2d4f";
    const r = await helloRaw(a, { resume: anonId, token: a.token("x") });
    expect(r.reply).toMatchObject({ op: "error", code: "unauthorized" });
    await r.dev.waitClosed();
  });
});
