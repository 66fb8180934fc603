/**
 * Upgrading to quorum queues on a broker that holds classic ones from an older gateway: the
 * gateway queue and the shared dead-letter queue become quorum queues without losing a message
 * and with the commands in their order; a delivery limit makes the broker dead-letter a command
 * that keeps coming back.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { BROKER_URL, removeDir, startGateway, uniquePrefix, type GatewayProcess } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { CLASSIC, declareTopology, gatewayQueueArgs, topology } from "../src/bridge/topology.ts";
import { holdingQueue } from "../src/bridge/queue-rebuild.ts";

const prefix = uniquePrefix("qup");
const ID = "upgrade";
const COMMANDS = 300;
let backend: TestBackend;
let gw: GatewayProcess | null = null;
let dir = "";

beforeAll(async () => {
  backend = await new TestBackend(prefix).start();
});

afterAll(async () => {
  await gw?.stop();
  await backend.stop([ID, "poison"]);
  if (dir) removeDir(dir);
});

/** Runs `fn` on a channel of its own (a refused declaration closes the channel). */
async function onChannel<T>(fn: (ch: AMQPChannel) => Promise<T>): Promise<T> {
  const ch = await backend.client.channel();
  try {
    return await fn(ch);
  } finally {
    if (!ch.closed) await ch.close().catch(() => {});
  }
}

/** Whether a declaration with `args` is accepted for the existing queue `name`. */
function accepts(name: string, args: Record<string, unknown>): Promise<boolean> {
  return onChannel((ch) => ch.queueDeclare(name, { durable: true }, args).then(() => true, () => false));
}

test("classic gateway and dead-letter queues become quorum queues with every message (two workers racing for the rebuild)", async () => {
  const first = await startGateway({ gatewayId: ID, prefix, args: ["--workers", "2", "--broker-queue-type", "classic"] });
  dir = first.dir;
  const { dev, welcome } = await first.device("lock-upgrade");
  dev.close();
  await first.stop();
  const queue = `${prefix}owsla.gw.${ID}`;
  const dead = `${prefix}owsla.dead`;
  expect(await accepts(queue, { "x-dead-letter-exchange": dead })).toBe(true); // classic, as older versions made it
  // Commands wait in the classic queue while the gateway is being upgraded; the dead-letter
  // queue holds an older rejected command.
  for (let i = 0; i < COMMANDS; i++) await backend.command(ID, welcome.id, { n: i }, { messageId: `c${i}` });
  await backend.ch.basicPublish("", dead, JSON.stringify({ old: "dead letter" }), { messageId: "dead-1", deliveryMode: 2 });

  gw = await startGateway({ dir, gatewayId: ID, prefix, args: ["--workers", "2"] });
  expect(gw.logs.some((l) => l.includes("Queue rebuilt"))).toBe(true);
  const again = await gw.device("lock-upgrade");
  const ids: string[] = [];
  for (let i = 0; i < COMMANDS; i++) {
    const c = await again.dev.op("cmd");
    ids.push(c.id);
    again.dev.send({ op: "ack", ref: c.id });
  }
  // Two workers consume the queue, so the device sees them in the gateway's delivery order;
  // the queue order itself is checked by the next test.
  expect(ids.sort()).toEqual(Array.from({ length: COMMANDS }, (_, i) => `c${i}`).sort());
  again.dev.close();

  expect(await accepts(queue, { "x-dead-letter-exchange": dead, "x-queue-type": "quorum", "x-delivery-limit": 20 })).toBe(true);
  expect(await accepts(dead, { "x-queue-type": "quorum" })).toBe(true);
  const deadLetters = await onChannel((ch) => ch.queueDeclare(dead, { passive: true }));
  expect(deadLetters.messageCount).toBe(1);
  // No holding queue is left behind.
  expect(await onChannel((ch) => ch.queueDeclare(`${queue}.rebuild`, { passive: true }).then(() => true, () => false))).toBe(false);
  // A second start finds everything in place and rebuilds nothing.
  await gw.stop();
  gw = await startGateway({ dir, gatewayId: ID, prefix, args: ["--workers", "2"] });
  expect(gw.logs.some((l) => l.includes("rebuilding it"))).toBe(false);
}, 90_000);

test("the rebuilt queue holds the messages in their order, and an interrupted rebuild is finished on the next declaration", async () => {
  const p = uniquePrefix("qord");
  const t = topology(p, "order");
  const client = new AMQPClient(BROKER_URL);
  await client.connect();
  try {
    const ch = await client.channel();
    await ch.confirmSelect();
    await declareTopology(client, ch, t, CLASSIC);
    for (let i = 0; i < COMMANDS; i++) await ch.basicPublish(t.down, t.gatewayKey, `{"n":${i}}`, { messageId: `m${i}`, deliveryMode: 2 });
    await declareTopology(client, ch, t, { type: "quorum", deliveryLimit: 5 });
    const got: string[] = [];
    for (;;) {
      const m = await ch.basicGet(t.queue, { noAck: true });
      if (!m) break;
      got.push(m.properties.messageId!);
    }
    expect(got).toEqual(Array.from({ length: COMMANDS }, (_, i) => `m${i}`));

    // A crash left messages in the holding queue: the next declaration moves them back.
    await ch.queueDeclare(holdingQueue(t.queue), { durable: true }, gatewayQueueArgs(t, { type: "quorum", deliveryLimit: 5 }));
    for (let i = 0; i < 10; i++) await ch.basicPublish("", holdingQueue(t.queue), "{}", { messageId: `h${i}`, deliveryMode: 2 });
    await declareTopology(client, ch, t, { type: "quorum", deliveryLimit: 5 });
    expect((await ch.queueDeclare(t.queue, { passive: true })).messageCount).toBe(10);
    const probe = await client.channel();
    expect(await probe.queueDeclare(holdingQueue(t.queue), { passive: true }).then(() => true, () => false)).toBe(false);
    const cleanup = await client.channel();
    await cleanup.queueDelete(t.queue);
    await cleanup.queueDelete(t.deadQueue);
    for (const x of [t.up, t.down, t.dead]) await cleanup.exchangeDelete(x);
  } finally {
    await client.close().catch(() => {});
  }
}, 60_000);

test("a command redelivered more often than broker.delivery_limit is dead-lettered, not looped forever", async () => {
  const g = await startGateway({ gatewayId: "poison", prefix, args: ["--workers", "1", "--broker-delivery-limit", "3"] });
  const { dev, welcome } = await g.device("lock-poison");
  dev.close();
  await g.stop();
  removeDir(g.dir);
  const dead = `${prefix}owsla.dead`;
  const before = (await onChannel((ch) => ch.queueDeclare(dead, { passive: true }))).messageCount;
  await backend.command("poison", welcome.id, { crash: true }, { messageId: "poison-1" });
  // Stand in for a consumer that crashes on this command every time: take it and give it back.
  const client = new AMQPClient(BROKER_URL);
  await client.connect();
  const ch = await client.channel();
  let deliveries = 0;
  for (let i = 0; i < 20; i++) {
    const m = await ch.basicGet(`${prefix}owsla.gw.poison`, { noAck: false });
    if (!m) break;
    deliveries++;
    await m.nack(true);
  }
  await client.close();
  expect(deliveries).toBe(4); // the first delivery and 3 redeliveries
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    after = (await onChannel((c) => c.queueDeclare(dead, { passive: true }))).messageCount;
    if (after === before) await Bun.sleep(50);
  }
  expect(after).toBe(before + 1);
}, 60_000);
