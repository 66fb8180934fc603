/**
 * A raw MQTT connection for hostile scenarios: writes arbitrary bytes (with backpressure, see
 * raw-socket.ts), parses what the gateway sends with mqtt-packet (MQTT 5, or 3.1.1 for 3.1.1 sessions), keeps
 * the packets, and records output that is not a valid server packet and how the connection
 * ended. Valid packets to send are built with {@link mqttBytes}.
 */
import mqttPacket, { type Packet } from "mqtt-packet";
import { RawSocket, type RawSocketOptions } from "./raw-socket.ts";

/** Packet types a server may send. */
export const SERVER_PACKETS: ReadonlySet<string> = new Set(["connack", "publish", "puback", "pubrec", "pubrel", "pubcomp", "suback", "unsuback", "pingresp", "disconnect", "auth"]);

/** The wire bytes of `packet` for protocol level `version` (4 = 3.1.1, 5 = 5.0). */
export function mqttBytes(packet: Record<string, unknown>, version: 4 | 5 = 5): Uint8Array {
  return new Uint8Array(mqttPacket.generate(packet as unknown as Packet, { protocolVersion: version }));
}

/** A CONNECT for `clientId` with `password` (username "device"). */
export function connectBytes(clientId: string, password: string, version: 4 | 5 = 5, extra: Record<string, unknown> = {}): Uint8Array {
  return mqttBytes({ cmd: "connect", protocolId: "MQTT", protocolVersion: version, clean: true, keepalive: 30, clientId, username: "device", password: Buffer.from(password), ...extra }, version);
}

/**
 * Why `bytes` is not a sequence of server packets in MQTT `version`, or null when it is (a
 * packet cut off at the end counts as valid: the connection may close mid-write).
 */
export function invalidServerOutput(bytes: Uint8Array, version: 4 | 5): string | null {
  const p = mqttPacket.parser({ protocolVersion: version });
  let why: string | null = null;
  p.on("packet", (x: Record<string, any>) => (why ??= SERVER_PACKETS.has(x.cmd) ? null : `a server never sends ${x.cmd}`));
  p.on("error", (e: Error) => (why ??= `unparsable: ${e.message}`));
  p.parse(Buffer.from(bytes));
  return why;
}

/** Options for {@link MqttRawConn.connect}. */
export interface MqttRawOptions extends RawSocketOptions {
  /** Protocol level used to parse what the gateway sends (default 5). */
  version?: 4 | 5;
}

/** One raw MQTT connection. */
export class MqttRawConn extends RawSocket {
  /** Packets the gateway sent (at most 1000 kept). */
  readonly packets: Record<string, any>[] = [];
  /** Output that did not parse as MQTT, or a packet type a server never sends. */
  readonly badOutput: string[] = [];
  /** The first 64 KiB the gateway sent, as received. */
  readonly rawIn: Uint8Array[] = [];
  private parser: ReturnType<typeof mqttPacket.parser>;
  private packetWaiters: { pred: (p: Record<string, any>) => boolean; resolve: (p: Record<string, any> | null) => void }[] = [];

  private constructor(readonly opts: MqttRawOptions) {
    super();
    this.parser = mqttPacket.parser({ protocolVersion: opts.version ?? 5 });
    this.parser.on("packet", (p: Record<string, any>) => this.onPacket(p));
    this.parser.on("error", (e: Error) => this.badOutput.push(`unparsable: ${e.message}`));
  }

  /** Opens a connection; rejects when the connect fails. */
  static connect(opts: MqttRawOptions): Promise<MqttRawConn> {
    return RawSocket.open(new MqttRawConn(opts), opts);
  }

  protected onBytes(d: Uint8Array): void {
    if (this.received < 65536) this.rawIn.push(new Uint8Array(d));
    if (this.badOutput.length > 0) return; // the parser's state is unknown after an error
    this.parser.parse(Buffer.from(d));
  }

  private onPacket(p: Record<string, any>): void {
    if (!SERVER_PACKETS.has(p.cmd)) this.badOutput.push(`a server never sends ${p.cmd}`);
    if (this.packets.length < 1000) this.packets.push(p);
    const i = this.packetWaiters.findIndex((w) => w.pred(p));
    if (i >= 0) this.packetWaiters.splice(i, 1)[0]!.resolve(p);
  }

  protected onClosed(): void {
    for (const w of this.packetWaiters.splice(0)) w.resolve(null);
  }

  /** The first packet (already received or future) matching `pred`; null on timeout or close. */
  waitPacket(pred: (p: Record<string, any>) => boolean, timeoutMs: number): Promise<Record<string, any> | null> {
    const found = this.packets.find(pred);
    if (found) return Promise.resolve(found);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const w = {
        pred,
        resolve: (p: Record<string, any> | null) => {
          clearTimeout(t);
          resolve(p);
        },
      };
      const t = setTimeout(() => {
        const i = this.packetWaiters.indexOf(w);
        if (i >= 0) this.packetWaiters.splice(i, 1);
        resolve(null);
      }, timeoutMs);
      this.packetWaiters.push(w);
    });
  }

  /** The CONNACK code (`reasonCode` in 5, `returnCode` in 3.1.1); null when none came within `timeoutMs`. */
  async connack(timeoutMs = 5000): Promise<number | null> {
    const p = await this.waitPacket((p) => p.cmd === "connack", timeoutMs);
    return p ? (p.reasonCode ?? p.returnCode ?? 0) : null;
  }

  /** The reason code of the DISCONNECT the gateway sent, if any. */
  disconnectReason(): number | null {
    const d = this.packets.find((p) => p.cmd === "disconnect");
    return d ? (d.reasonCode ?? 0) : null;
  }
}
