/**
 * Dead-lettering a command that carries an `x-death` header. RabbitMQ 3.10 crashes the queue
 * that dead-letters such a message when the header is not exactly what the broker itself
 * writes (seen with the back-end fuzzer: `x-death: [1, "a"]`; `rabbit_dead_letter`
 * function_clause; the gateway's quorum queue restarted, got the message again, crashed again,
 * and nacked every publish meanwhile, so no device of the gateway got commands). A refused
 * command with any `x-death` header is therefore not rejected to the broker's dead-lettering:
 * the gateway publishes a copy to the dead-letter exchange itself, without `x-death` and with
 * the reason in `x-owsla-rejected`, and acks the original once the copy is confirmed.
 */
import type { AMQPChannel, AMQPMessage, AMQPProperties } from "@cloudamqp/amqp-client";
import type { Command } from "../protocol/gateway-messages.ts";

/** Whether a delivery must be dead-lettered by copy instead of by the broker. */
export function needsDeadLetterCopy(headers: Record<string, unknown> | undefined): boolean {
  return headers !== undefined && headers !== null && Object.hasOwn(headers, "x-death");
}

/** The properties of the copy: `x-death` removed, the reason and original exchange added. */
export function deadLetterCopyProps(msg: Pick<AMQPMessage, "properties" | "exchange" | "routingKey">, reason: string): AMQPProperties {
  const { ["x-death"]: _dropped, ...headers } = (msg.properties.headers ?? {}) as Record<string, unknown>;
  // The copy must not expire before anyone looked at it, as the original might have.
  const { expiration: _expiration, ...rest } = msg.properties;
  return {
    ...rest,
    headers: { ...headers, "x-owsla-rejected": reason, "x-owsla-original-exchange": msg.exchange, "x-owsla-original-routing-key": msg.routingKey } as AMQPProperties["headers"],
  };
}

/**
 * Publishes the copy of `msg` to `exchange` on `ch` (a confirm-mode channel) and acks `msg`
 * once the broker confirmed it; when that fails, `msg` goes back to the queue after `retryMs`.
 */
export async function deadLetterByCopy(ch: AMQPChannel | null, exchange: string, msg: AMQPMessage, reason: string, retryMs: number): Promise<boolean> {
  try {
    if (!ch) throw new Error("broker link down");
    await ch.basicPublish(exchange, "", msg.body ?? new Uint8Array(0), deadLetterCopyProps(msg, reason));
    await msg.ack();
    return true;
  } catch {
    setTimeout(() => msg.nack(true).catch(() => {}), retryMs);
    return false;
  }
}

/**
 * The dead-letter copy of a command the gateway had stored and then had to drop (a store
 * limit): the stored body, `message_id` and `correlation_id` as stored, the device and topic in
 * the headers the back-end sent them in, and the reason in `x-owsla-rejected`.
 */
export function storedDeadLetter(c: Command, reason: string, storedAt: number): { body: Uint8Array; props: AMQPProperties } {
  return {
    body: Buffer.from(c.body),
    props: {
      messageId: c.id,
      ...(c.corr !== null ? { correlationId: c.corr } : {}),
      contentType: "application/json",
      deliveryMode: 2,
      headers: { device_id: c.deviceId, topic: c.topic, "x-owsla-rejected": reason, "x-owsla-stored-at": new Date(storedAt).toISOString() },
    },
  };
}

/** Publishes the dead-letter copy of stored command `c` to `exchange`; resolves once the broker confirmed it. */
export async function deadLetterStored(ch: AMQPChannel | null, exchange: string, c: Command & { storedAt: number }, reason: string): Promise<void> {
  if (!ch) throw new Error("broker link down");
  const { body, props } = storedDeadLetter(c, reason, c.storedAt);
  await ch.basicPublish(exchange, "", body, props);
}
