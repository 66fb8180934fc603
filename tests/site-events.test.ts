/**
 * The site events module against the real broker: a revocation published while the broker is
 * unreachable is kept in the pending file and sent after a restart; invalid site events are
 * dropped without stopping the consumer; a failing store is retried, not lost.
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { SiteEvents, siteNames, type SiteRevocation } from "../src/bridge/site-events.ts";
import { topology } from "../src/bridge/topology.ts";
import { createLogger } from "../src/log/logger.ts";
import { BROKER_URL, freePort, removeDir, uniquePrefix } from "./helpers/gateway.ts";

const prefix = uniquePrefix("sev");
const dir = mkdtempSync(join(tmpdir(), "owsla-site-"));
const log = createLogger({ level: "error" });
const open: SiteEvents[] = [];

afterAll(async () => {
  for (const s of open) await s.close();
  const c = new AMQPClient(BROKER_URL);
  await c.connect();
  const ch = await c.channel();
  for (const id of ["a", "b"]) await ch.queueDelete(siteNames(prefix, id).queue).catch(() => {});
  await ch.exchangeDelete(siteNames(prefix, "a").exchange).catch(() => {});
  await c.close();
  removeDir(dir);
});

function events(id: string, url: string, onRevoked: (r: SiteRevocation) => Promise<void>): SiteEvents {
  const s = new SiteEvents({
    link: { url, topology: topology(prefix, id), heartbeatS: 2, reconnectMinMs: 50, reconnectMaxMs: 200, prefetch: 10, name: `site ${id}`, log },
    prefix,
    gatewayId: id,
    queueType: "quorum",
    pendingFile: join(dir, `${id}-pending.json`),
    onRevoked,
    log,
  });
  open.push(s);
  s.start();
  return s;
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

const DEVICE = "0b5e0c6a-1111-5222-8333-444455556666";

test("a revocation made while the broker is unreachable is kept on disk and sent after a restart", async () => {
  const gotB: SiteRevocation[] = [];
  // B exists first (its queue must exist to receive), and fails its first store attempt.
  let failOnce = true;
  const b = events("b", BROKER_URL, async (r) => {
    if (failOnce) {
      failOnce = false;
      throw new Error("disk full (test)");
    }
    gotB.push(r);
  });
  await until("b up", () => b.link.up);

  const offline = events("a", `amqp://guest:guest@127.0.0.1:${freePort()}`, async () => {});
  const how = await offline.publishRevocation({ deviceId: DEVICE, generation: 3, hardwareId: "lock-7", origin: "a", at: Date.now() });
  expect(how).toBe("pending");
  const file = join(dir, "a-pending.json");
  expect(existsSync(file)).toBe(true);
  expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject([{ deviceId: DEVICE, generation: 3 }]);
  await offline.close();

  // Restarted with the broker reachable: the pending revocation goes out.
  const a = events("a", BROKER_URL, async () => {});
  await until("a's pending revocation sent", () => a.pendingCount === 0);
  expect(JSON.parse(readFileSync(file, "utf8"))).toEqual([]);
  // B stored it on the second delivery (the first store failed and was retried, not lost).
  await until("b stored it", () => gotB.length === 1, 15_000);
  expect(gotB[0]).toMatchObject({ deviceId: DEVICE, generation: 3, hardwareId: "lock-7", origin: "a" });
});

test("an invalid site event is dropped and the consumer keeps going", async () => {
  const b = open.find((s) => s.names.queue === siteNames(prefix, "b").queue)!;
  const a = open.findLast((s) => s.names.queue === siteNames(prefix, "a").queue && s.link.up)!;
  const before = b.received;
  const c = new AMQPClient(BROKER_URL);
  await c.connect();
  const ch = await c.channel();
  for (const body of ["not json", '{"type":"revocation","device_id":"x","generation":1}', '{"type":"other"}']) {
    await ch.basicPublish(siteNames(prefix, "a").exchange, "", body, { deliveryMode: 2 });
  }
  await c.close();
  await a.publishRevocation({ deviceId: DEVICE, generation: 4, hardwareId: null, origin: "a", at: Date.now() });
  await until("b got the valid one", () => b.received === before + 1);
});
