/**
 * The broker says no (wrong password, missing vhost, nothing listening): the gateway backs off
 * exactly as for an unreachable broker instead of hammering RabbitMQ with logins, logs one line
 * that names the cause, and never logs the password. Connection attempts are counted by a TCP
 * proxy in front of the real broker.
 */
import { afterEach, expect, test } from "bun:test";
import { BrokerProxy } from "./helpers/proxy.ts";
import { freePort, removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";

const WORKERS = 2;
/** Broker links of such a gateway: one per worker, and the supervisor's site-events link. */
const LINKS = WORKERS + 1;
/** Shortest delay between two attempts of one worker: the bound below follows from it. */
const MIN_MS = 200;
const WINDOW_MS = 4000;

let gw: GatewayProcess | null = null;
let proxy: BrokerProxy | null = null;
afterEach(async () => {
  await gw?.stop();
  if (gw) removeDir(gw.dir);
  proxy?.down();
  gw = null;
  proxy = null;
});

/**
 * Starts a gateway whose broker URL is `url(proxyPort)` and counts the TCP connections it opens
 * through the proxy during WINDOW_MS.
 */
async function attemptsWith(url: (port: number) => string, upstreamPort = 5672): Promise<{ connections: number; gw: GatewayProcess }> {
  proxy = new BrokerProxy(upstreamPort).up();
  gw = await startGateway({
    gatewayId: "refused",
    waitBroker: false,
    args: ["--workers", String(WORKERS), "--broker", url(proxy.port), "--broker-reconnect-min-ms", String(MIN_MS), "--broker-reconnect-max-ms", "1000"],
  });
  const before = proxy.accepted;
  await Bun.sleep(WINDOW_MS);
  return { connections: proxy.accepted - before, gw };
}

/** At most one attempt per MIN_MS per link (plus the one in progress), two connections each. */
const BOUND = LINKS * 2 * (WINDOW_MS / MIN_MS + 1);

/**
 * The gateway backed off (at most BOUND attempts through the proxy) and logged the cause once
 * per link; returns those warning lines.
 */
function expectBackedOff(g: GatewayProcess, connections: number, cause: string): Record<string, any>[] {
  expect(connections).toBeLessThanOrEqual(BOUND);
  const lines = g.json().filter((l) => l.level === "warn" && l.cause === cause);
  expect(lines.length).toBeGreaterThanOrEqual(1);
  expect(lines.length).toBeLessThanOrEqual(LINKS);
  return lines;
}

test("a wrong password is retried with backoff, logged once per link as auth refused, password never logged", async () => {
  const { connections, gw: g } = await attemptsWith((p) => `amqp://guest:wrong-pw-4711@127.0.0.1:${p}`);
  // Before the fix: ~130 logins per second per worker (a late failure of the second
  // connection woke the backoff sleep at once): 3098 connections in this window.
  expect(connections).toBeGreaterThan(0);
  const lines = expectBackedOff(g, connections, "auth_refused");
  expect(lines[0]!.msg).toContain("auth refused");
  expect(lines[0]!.node).toBe(`127.0.0.1:${proxy!.port}`);
  expect(g.logs.join("\n")).not.toContain("wrong-pw-4711");
});

test("a missing vhost is retried with backoff and logged as vhost missing, with the rest of a mistyped list scrubbed", async () => {
  // A second URL glued into the vhost (its "://" percent-encoded, so it passes as one URL);
  // the broker echoes the vhost, decoded, password included.
  const { connections, gw: g } = await attemptsWith((p) => `amqp://guest:guest@127.0.0.1:${p}/,amqp:%2F%2Fguest:hunter2-vh@mq-2`);
  expect(connections).toBeGreaterThan(0);
  const lines = expectBackedOff(g, connections, "vhost_missing");
  expect(lines[0]!.err).toContain("not found");
  expect(lines[0]!.err).toContain(":***@mq-2"); // the echo was there, scrubbed (the user "guest" is the other URL's password)
  expect(g.logs.join("\n")).not.toContain("hunter2-vh");
});

test("an unreachable node is reported as unreachable and backs off the same way", async () => {
  const dead = freePort();
  const { connections, gw: g } = await attemptsWith(() => `amqp://guest:guest@127.0.0.1:${dead}`);
  expect(connections).toBe(0); // the proxy is not involved; the log tells
  const attempts = g.json().filter((l) => l.level === "debug" || (l.level === "warn" && l.cause === "unreachable"));
  const lines = expectBackedOff(g, attempts.length, "unreachable");
  expect(lines[0]!.node).toBe(`127.0.0.1:${dead}`);
});
