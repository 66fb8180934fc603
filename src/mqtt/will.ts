/**
 * Presence events of MQTT connections. The `disconnected` event of a connection that dropped
 * without DISCONNECT carries the device's will as its `reason`: the will's payload verbatim
 * when it is JSON, else as a JSON string (the will is not published on its topic — a gateway
 * does not relay between devices).
 */
import type { UpMessage } from "../protocol/gateway-messages.ts";
import { presenceMessage, type Sender } from "../session/messages.ts";
import { isJsonPayload } from "./publish-in.ts";

/** A presence event; for `disconnected` with a `will`, the will's payload is the reason. */
export function willPresence(s: Sender, event: "connected" | "disconnected", reason: string | null, will: Uint8Array | null = null): UpMessage {
  const m = presenceMessage(s, event, reason);
  m.props.headers.protocol = "mqtt";
  if (will === null) return m;
  // The payload is kept as sent (never parsed and re-encoded: numbers and nesting survive).
  const text = Buffer.from(will).toString("utf8");
  const value = isJsonPayload(will) ? text.trim() : JSON.stringify(text);
  m.body = Buffer.from(`{"event":"disconnected","reason":${value},"at":${JSON.stringify(new Date().toISOString())}}`);
  return m;
}
