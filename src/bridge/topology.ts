/**
 * Exchange and queue names of the AMQP contract, and their idempotent declaration.
 *
 * The gateway queue and the dead-letter queue are quorum queues by default (replicated over the
 * nodes of a cluster, with a delivery limit so a poison command is dead-lettered instead of
 * looping). A queue that already exists with other arguments (a classic queue from an older
 * version, another delivery limit) is rebuilt with its messages: see `queue-rebuild.ts`.
 */
import type { AMQPChannel, AMQPClient } from "@cloudamqp/amqp-client";
import type { Logger } from "../log/logger.ts";
import { isPreconditionFailed, rebuildQueue, resumeRebuild, type QueueSpec } from "./queue-rebuild.ts";

/** Names used on the broker for one gateway. */
export interface Topology {
  /** Topic exchange for device -> back-end messages. */
  up: string;
  /** Direct exchange for back-end -> device commands. */
  down: string;
  /** Fanout exchange receiving rejected commands (unknown device, malformed). */
  dead: string;
  /** Queue where dead-lettered commands are kept for inspection. */
  deadQueue: string;
  /** This gateway's durable queue (also the `reply_to` of upstream messages). */
  queue: string;
  /** Routing key binding the queue to `down`. */
  gatewayKey: string;
}

/** Type and poison limit of the gateway's queues. */
export interface QueueOptions {
  /** `quorum` (replicated, default in the config) or `classic` (what versions before 0.2 declared). */
  type: "quorum" | "classic";
  /** Deliveries of one message before the broker dead-letters it (quorum queues only). */
  deliveryLimit: number;
}

/** What versions before quorum support declared (and what `classic` still declares). */
export const CLASSIC: QueueOptions = { type: "classic", deliveryLimit: 0 };

/** The names for gateway `gatewayId` with name `prefix`. */
export function topology(prefix: string, gatewayId: string): Topology {
  return {
    up: `${prefix}owsla.up`,
    down: `${prefix}owsla.down`,
    dead: `${prefix}owsla.dead`,
    deadQueue: `${prefix}owsla.dead`,
    queue: `${prefix}owsla.gw.${gatewayId}`,
    gatewayKey: gatewayId,
  };
}

/**
 * Arguments of the gateway queue. A classic queue is declared exactly as before (no
 * `x-queue-type`), so queues of older versions stay equivalent.
 */
export function gatewayQueueArgs(t: Topology, q: QueueOptions): Record<string, unknown> {
  const args: Record<string, unknown> = { "x-dead-letter-exchange": t.dead };
  if (q.type === "quorum") {
    args["x-queue-type"] = "quorum";
    args["x-delivery-limit"] = q.deliveryLimit;
  }
  return args;
}

/** Arguments of the site's shared dead-letter queue (no limit: nothing consumes it for us). */
export function deadQueueArgs(q: QueueOptions): Record<string, unknown> {
  return q.type === "quorum" ? { "x-queue-type": "quorum" } : {};
}

/**
 * Declares everything (idempotent, so many gateways can share a broker and every node of a
 * cluster answers the same). `ch` is a confirm-mode channel of `client`; queue declarations
 * are tried on channels of their own, since a refused one closes its channel.
 */
export async function declareTopology(client: AMQPClient, ch: AMQPChannel, t: Topology, q: QueueOptions = CLASSIC, log?: Logger): Promise<void> {
  await ch.exchangeDeclare(t.up, "topic", { durable: true });
  await ch.exchangeDeclare(t.down, "direct", { durable: true });
  await ch.exchangeDeclare(t.dead, "fanout", { durable: true });

  const dead: QueueSpec = { name: t.deadQueue, args: deadQueueArgs(q), bind: { exchange: t.dead, key: "" } };
  if (!(await tryDeclare(client, dead))) {
    // The dead-letter queue is shared by every gateway of the site: convert it only from classic
    // to quorum (the upgrade), never back, so gateways with different settings do not fight.
    if (q.type === "quorum" && (await isClassic(client, dead.name))) await rebuildQueue(client, dead, log);
    else log?.info("Keeping the existing dead-letter queue as it is (shared by the site's gateways)", { queue: dead.name });
  } else {
    await resumeRebuild(client, dead, log);
  }
  await ch.queueBind(t.deadQueue, t.dead, "");

  await declareQueue(client, { name: t.queue, args: gatewayQueueArgs(t, q), bind: { exchange: t.down, key: t.gatewayKey } }, log);
  await ch.queueBind(t.queue, t.down, t.gatewayKey);
}

/**
 * Declares a queue this gateway owns: when it exists with other arguments it is rebuilt with
 * its messages, and an interrupted rebuild is finished. The caller binds it.
 */
export async function declareQueue(client: AMQPClient, spec: QueueSpec, log?: Logger): Promise<void> {
  if (!(await tryDeclare(client, spec))) await rebuildQueue(client, spec, log);
  else await resumeRebuild(client, spec, log);
}

/** Declares `spec` on a channel of its own; false when the queue exists with other arguments. */
async function tryDeclare(client: AMQPClient, spec: QueueSpec): Promise<boolean> {
  const ch = await client.channel();
  try {
    await ch.queueDeclare(spec.name, { durable: true }, spec.args);
    return true;
  } catch (e) {
    if (isPreconditionFailed(e)) return false;
    throw e;
  } finally {
    if (!ch.closed) await ch.close().catch(() => {});
  }
}

/** Whether the existing queue `name` is a classic queue (a classic declaration is accepted). */
async function isClassic(client: AMQPClient, name: string): Promise<boolean> {
  return tryDeclare(client, { name, args: {}, bind: null });
}
