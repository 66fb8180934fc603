/**
 * Hand-built MQTT bytes for hostile input: what a codec refuses to generate (reserved flags,
 * QoS 3, packet id 0, ill-formed UTF-8, Remaining Length tricks). Valid packets come from
 * mqtt-packet through {@link mqttBytes} in mqtt-raw.ts.
 */

/** MQTT Variable Byte Integer (Remaining Length, property lengths): 1 to 4 bytes for 0..268435455. */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A two-byte length followed by `bytes` (an MQTT string or binary field). */
export function lstr(bytes: number[] | string): number[] {
  const b = typeof bytes === "string" ? [...new TextEncoder().encode(bytes)] : bytes;
  return [b.length >> 8, b.length & 0xff, ...b];
}

/** A packet: first byte (type << 4 | flags), Remaining Length, then `body`. */
export function packet(first: number, body: number[]): Uint8Array {
  return new Uint8Array([first, ...varint(body.length), ...body]);
}

/**
 * A PUBLISH with the raw topic bytes, QoS bits from `flags` (0x02 = QoS 1, 0x06 = QoS 3),
 * packet id (written whenever QoS bits are non-zero) and, for MQTT 5, `props` as the encoded
 * property bytes.
 */
export function rawPublish(o: { topic: number[] | string; flags: number; packetId?: number; payload?: string; version?: 4 | 5; props?: number[] }): Uint8Array {
  const id = o.packetId ?? 1;
  const body = [
    ...lstr(o.topic),
    ...((o.flags & 0x06) !== 0 ? [id >> 8, id & 0xff] : []),
    ...((o.version ?? 5) === 5 ? [...varint((o.props ?? []).length), ...(o.props ?? [])] : []),
    ...new TextEncoder().encode(o.payload ?? "{}"),
  ];
  return packet(0x30 | o.flags, body);
}

/** MQTT 5 User Property (0x26) entries totalling about `bytes`, each `size` bytes of value. */
export function userProperties(bytes: number, size = 100): number[] {
  const out: number[] = [];
  const value = "v".repeat(size);
  for (let i = 0; out.length < bytes; i++) out.push(0x26, ...lstr(`k${i}`), ...lstr(value));
  return out;
}

/** A CONNECT with hand-set connect flags and protocol level (username "device", password when given). */
export function rawConnect(o: { clientId: number[] | string; password?: string; flags?: number; level?: number; props?: number[]; first?: number }): Uint8Array {
  const level = o.level ?? 5;
  const flags = o.flags ?? (0x02 | 0x80 | (o.password !== undefined ? 0x40 : 0));
  const body = [
    ...lstr("MQTT"),
    level,
    flags,
    0,
    30,
    ...(level === 5 ? [...varint((o.props ?? []).length), ...(o.props ?? [])] : []),
    ...lstr(o.clientId),
    ...(flags & 0x80 ? lstr("device") : []),
    ...(flags & 0x40 ? lstr(o.password ?? "") : []),
  ];
  return packet(o.first ?? 0x10, body);
}
