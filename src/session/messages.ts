/** Builds the AMQP messages a device session sends upstream (per the AMQP contract). */
import { messageId } from "../identity/identity.ts";
import type { UpMessage } from "../store/outbox.ts";

/** Who sends an upstream message. */
export interface Sender {
  gatewayId: string;
  deviceId: string;
  connId: string;
  hardwareId: string | null;
  replyTo: string;
}

/** An upstream message for `topic` with JSON `body`; `ref` feeds the correlation id. */
export function upMessage(s: Sender, topic: string, body: unknown, ref?: string): UpMessage {
  const id = messageId();
  const headers: Record<string, string> = {
    device_id: s.deviceId,
    connection_id: s.connId,
    gateway_id: s.gatewayId,
    topic,
  };
  if (s.hardwareId !== null) headers.hardware_id = s.hardwareId;
  return {
    deviceId: s.deviceId,
    messageId: id,
    routingKey: `${s.gatewayId}.${s.deviceId}.${topic}`,
    props: {
      timestamp: Date.now(),
      replyTo: s.replyTo,
      correlationId: `${s.deviceId}:${ref ?? id}`,
      headers,
    },
    body: Buffer.from(JSON.stringify(body ?? null)),
  };
}

/** A presence event (`$presence` topic). */
export function presenceMessage(s: Sender, event: "connected" | "disconnected", reason: string | null): UpMessage {
  return upMessage(s, "$presence", { event, reason, at: new Date().toISOString() });
}
