/**
 * Rebuilding a queue that exists with other arguments (a classic queue becoming a quorum queue,
 * a new delivery limit), keeping its messages. RabbitMQ cannot change a queue's type or
 * arguments in place, so the messages move through a holding queue `<name>.rebuild`:
 *
 *  1. declare the holding queue (with the new arguments) and move every message into it;
 *  2. bind the holding queue like the old one, unbind the old one, move what arrived meanwhile;
 *  3. delete the old queue (only when empty) and declare it again with the new arguments;
 *  4. move everything from the holding queue back; bind the new queue, unbind the holding queue,
 *     move what arrived meanwhile; delete the holding queue.
 *
 * Each move publishes with confirms and acknowledges the originals only once confirmed, so a
 * crash at any point leaves every message in the old, the holding or the new queue (never
 * nowhere); a later start finds the holding queue and finishes the job ({@link resumeRebuild}).
 * Commands keep their order, except that ones published during the two re-binding steps (one
 * broker round trip each) can come in out of order or twice; the gateway drops duplicates by
 * message_id. One connection at a time rebuilds: an exclusive lock queue keeps other workers
 * (and gateways) out, they retry with the link's backoff.
 */
import type { AMQPChannel, AMQPClient } from "@cloudamqp/amqp-client";
import type { Logger } from "../log/logger.ts";

/** A queue to (re)declare: its name, arguments and binding. */
export interface QueueSpec {
  name: string;
  args: Record<string, unknown>;
  bind: { exchange: string; key: string } | null;
}

/** Messages moved per confirm round. */
const MOVE_BATCH = 500;

/** Whether `e` is the broker refusing a declaration whose arguments differ (406). */
export function isPreconditionFailed(e: unknown): boolean {
  return /PRECONDITION_FAILED|\(406\)/.test(e instanceof Error ? e.message : String(e));
}

function isNotFound(e: unknown): boolean {
  return /NOT_FOUND|\(404\)/.test(e instanceof Error ? e.message : String(e));
}

/** Name of the holding queue used while `name` is rebuilt. */
export function holdingQueue(name: string): string {
  return `${name}.rebuild`;
}

/** Rebuilds `spec.name` with `spec.args`, keeping its messages (see the module comment). */
export async function rebuildQueue(client: AMQPClient, spec: QueueSpec, log?: Logger): Promise<void> {
  const ch = await lock(client, spec.name);
  let fresh: AMQPChannel | null = null;
  try {
    const hold: QueueSpec = { name: holdingQueue(spec.name), args: spec.args, bind: spec.bind };
    const started = Date.now();
    log?.warn("Queue exists with other settings (type or delivery limit); rebuilding it with its messages", { queue: spec.name, args: spec.args });
    await ch.queueDeclare(hold.name, { durable: true }, hold.args);
    let moved = await move(ch, spec.name, hold.name);
    await rebind(ch, spec.bind, hold.name, spec.name);
    moved += await move(ch, spec.name, hold.name);
    await deleteEmpty(ch, spec.name, hold.name);
    // A channel remembers the type of a queue it published to: on RabbitMQ 3.10 publishing to
    // the new quorum queue through the channel that knew the classic one crashes the channel
    // (function_clause in rabbit_classic_queue:update). The lock stays: it belongs to the connection.
    fresh = await client.channel();
    await fresh.confirmSelect();
    await fresh.queueDeclare(spec.name, { durable: true }, spec.args);
    await drainBack(fresh, spec, hold.name);
    log?.warn("Queue rebuilt; its messages were kept", { queue: spec.name, messages: moved, ms: Date.now() - started });
  } finally {
    await fresh?.close().catch(() => {});
    await ch.close().catch(() => {});
  }
}

/**
 * Finishes a rebuild interrupted by a crash: when the holding queue of `spec.name` still exists
 * (the queue itself was just declared with the right arguments), its messages move back.
 */
export async function resumeRebuild(client: AMQPClient, spec: QueueSpec, log?: Logger): Promise<void> {
  const probe = await client.channel();
  try {
    await probe.queueDeclare(holdingQueue(spec.name), { passive: true });
  } catch (e) {
    if (isNotFound(e)) return;
    throw e;
  } finally {
    if (!probe.closed) await probe.close().catch(() => {});
  }
  const ch = await lock(client, spec.name);
  try {
    log?.warn("Finishing an interrupted queue rebuild", { queue: spec.name });
    await drainBack(ch, spec, holdingQueue(spec.name));
  } finally {
    await ch.close().catch(() => {});
  }
}

/** Step 4: holding queue -> `spec.name`, re-bind, the rest, delete the holding queue. */
async function drainBack(ch: AMQPChannel, spec: QueueSpec, hold: string): Promise<void> {
  await move(ch, hold, spec.name);
  await rebind(ch, spec.bind, spec.name, hold);
  await move(ch, hold, spec.name);
  await deleteEmpty(ch, hold, spec.name);
}

/** A confirm-mode channel holding the rebuild lock of `name`; throws when another connection holds it. */
async function lock(client: AMQPClient, name: string): Promise<AMQPChannel> {
  const ch = await client.channel();
  try {
    await ch.queueDeclare(`${name}.rebuild-lock`, { durable: false, exclusive: true, autoDelete: true });
  } catch (e) {
    throw new Error(`Queue ${name} is being rebuilt by another worker or gateway (RESOURCE_LOCKED); retrying: ${(e as Error).message}`);
  }
  await ch.confirmSelect();
  return ch;
}

/** Binds `to` like the queue, then unbinds `from` (in that order: nothing becomes unroutable). */
async function rebind(ch: AMQPChannel, bind: QueueSpec["bind"], to: string, from: string): Promise<void> {
  if (!bind) return;
  await ch.queueBind(to, bind.exchange, bind.key);
  await ch.queueUnbind(from, bind.exchange, bind.key);
}

/** Deletes `name` if it is empty; otherwise moves the stragglers to `into` first. */
async function deleteEmpty(ch: AMQPChannel, name: string, into: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await move(ch, name, into);
    const left = (await ch.queueDeclare(name, { passive: true })).messageCount;
    if (left === 0) {
      await ch.queueDelete(name);
      return;
    }
  }
  throw new Error(`Queue ${name} keeps receiving messages while being rebuilt; retrying`);
}

/** Moves every message of `from` to `into` (confirmed publish, then ack), in order; returns the count. */
async function move(ch: AMQPChannel, from: string, into: string): Promise<number> {
  let total = 0;
  for (;;) {
    const batch = [];
    while (batch.length < MOVE_BATCH) {
      const msg = await ch.basicGet(from, { noAck: false });
      if (!msg) break;
      batch.push(msg);
    }
    if (batch.length === 0) return total;
    await Promise.all(batch.map((m) => ch.basicPublish("", into, m.body, { ...m.properties, deliveryMode: 2 })));
    await ch.basicAck(batch[batch.length - 1]!.deliveryTag, true);
    total += batch.length;
  }
}
