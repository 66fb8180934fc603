/** Exchange and queue names of the AMQP contract, and their idempotent declaration. */
import type { AMQPChannel } from "@cloudamqp/amqp-client";

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

/** Declares everything (idempotent, so many gateways can share a broker). */
export async function declareTopology(ch: AMQPChannel, t: Topology): Promise<void> {
  await ch.exchangeDeclare(t.up, "topic", { durable: true });
  await ch.exchangeDeclare(t.down, "direct", { durable: true });
  await ch.exchangeDeclare(t.dead, "fanout", { durable: true });
  await ch.queueDeclare(t.deadQueue, { durable: true });
  await ch.queueBind(t.deadQueue, t.dead, "");
  await ch.queueDeclare(t.queue, { durable: true }, { "x-dead-letter-exchange": t.dead });
  await ch.queueBind(t.queue, t.down, t.gatewayKey);
}
