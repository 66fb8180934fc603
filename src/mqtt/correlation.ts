/**
 * MQTT 5 request/response over the AMQP contract, without any state in the gateway: a
 * request's Response Topic and Correlation Data are packed into the `ref` part of the AMQP
 * `correlation_id` (`<device-uuid>:<ref>`). The back-end replies with that correlation id as
 * for any RPC; the reply reaches the device (on any worker, after a reconnect, takeover or
 * restart) as a command whose `corr` unpacks back into the topic and data.
 *
 * Format: `m5~<base64url(response topic)>~<base64url(correlation data)>` (data part empty when
 * there is none). A line-protocol device may send a ref of this shape too; the reply then goes
 * to its own connection as any reply does (only MQTT connections read the topic out of it).
 */

/** Marks a packed ref. */
const PREFIX = "m5~";

/** Longest packed ref: the AMQP correlation id is a short string (255 bytes) with the 36-byte UUID and ":" in front. */
export const MAX_PACKED_REF = 255 - 37;

/** An MQTT response address. */
export interface ResponseAddress {
  topic: string;
  /** Correlation Data, when the request had it. */
  data: Uint8Array | null;
}

/** Packs a response address into a `ref`, or null when it would not fit in a correlation id. */
export function packRef(a: ResponseAddress): string | null {
  const ref = `${PREFIX}${Buffer.from(a.topic, "utf8").toString("base64url")}~${a.data ? Buffer.from(a.data).toString("base64url") : ""}`;
  return ref.length <= MAX_PACKED_REF ? ref : null;
}

const PACKED = /^m5~([A-Za-z0-9_-]+)~([A-Za-z0-9_-]*)$/;

/** Unpacks a command's `corr`; null when it is not a packed response address. */
export function unpackRef(corr: string | null): ResponseAddress | null {
  if (!corr || !corr.startsWith(PREFIX)) return null;
  const m = PACKED.exec(corr);
  if (!m) return null;
  const topic = Buffer.from(m[1]!, "base64url").toString("utf8");
  if (topic === "") return null;
  return { topic, data: m[2] ? new Uint8Array(Buffer.from(m[2], "base64url")) : null };
}
