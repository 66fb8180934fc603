/** Builds the AMQP messages a device session sends upstream (per the AMQP contract). */
import { messageId } from "../identity/identity.ts";
import type { UpMessage } from "../protocol/gateway-messages.ts";
import { rawJsonField } from "../protocol/raw-field.ts";

/** Who sends an upstream message. */
export interface Sender {
  gatewayId: string;
  deviceId: string;
  connId: string;
  hardwareId: string | null;
  replyTo: string;
}

/**
 * An upstream message for `topic` with JSON `body`; `ref` feeds the correlation id. With
 * `frameText` (the device's `pub` line), the body goes to the broker exactly as the device
 * wrote it.
 */
export function upMessage(s: Sender, topic: string, body: unknown, ref?: string, frameText?: string): UpMessage {
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
    body: Buffer.from((frameText !== undefined ? rawJsonField(frameText, "body") : undefined) ?? JSON.stringify(body ?? null)),
  };
}

/** A presence event (`$presence` topic). */
export function presenceMessage(s: Sender, event: "connected" | "disconnected", reason: string | null): UpMessage {
  return upMessage(s, "$presence", { event, reason, at: new Date().toISOString() });
}
