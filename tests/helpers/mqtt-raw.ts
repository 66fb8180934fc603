/**
 * A bare MQTT client over a Bun socket (mqtt-packet codec): sends exactly the packets a test
 * writes and acks nothing by itself, for what mqtt.js would hide (a device that never PUBACKs,
 * stays silent past its keepalive, or drops without DISCONNECT).
 */
import mqtt, { type Packet } from "mqtt-packet";
import type { Socket } from "bun";

/** A raw MQTT connection. */
export class RawMqtt {
  readonly got: Packet[] = [];
  closed = false;
  private waiters: { pred: (p: Packet) => boolean; resolve: (p: Packet) => void }[] = [];
  private readonly parser: ReturnType<typeof mqtt.parser>;
  private sock!: Socket<undefined>;
  private onClose: (() => void)[] = [];

  private constructor(readonly version: 4 | 5) {
    this.parser = mqtt.parser({ protocolVersion: version });
    this.parser.on("packet", (p: Packet) => {
      this.got.push(p);
      const i = this.waiters.findIndex((w) => w.pred(p));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(p);
    });
  }

  /** Opens a TCP connection to `port` (nothing sent yet). */
  static async open(port: number, version: 4 | 5 = 5): Promise<RawMqtt> {
    const c = new RawMqtt(version);
    c.sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, d) => {
          c.parser.parse(Buffer.from(d));
        },
        close: () => {
          c.closed = true;
          for (const f of c.onClose) f();
        },
      },
    });
    return c;
  }

  /** Writes a packet. */
  send(p: Packet): void {
    this.sock.write(mqtt.generate(p, { protocolVersion: this.version }));
  }

  /** Sends CONNECT (clean start, keepalive 60 unless given) and resolves with the CONNACK. */
  async connect(clientId: string, password: string, extra: Partial<mqtt.IConnectPacket> = {}): Promise<mqtt.IConnackPacket> {
    this.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: this.version, clientId, username: "dev", password: Buffer.from(password), clean: true, keepalive: 60, ...extra } as mqtt.IConnectPacket);
    return (await this.next((p) => p.cmd === "connack")) as mqtt.IConnackPacket;
  }

  /** The first packet (already received or future) matching `pred`. */
  next(pred: (p: Packet) => boolean, timeoutMs = 5000): Promise<Packet> {
    const found = this.got.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (p: Packet) => (clearTimeout(t), resolve(p)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`No matching MQTT packet within ${timeoutMs} ms; got ${this.got.map((p) => p.cmd).join(", ")}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Resolves when the gateway closes the connection (rejects after `timeoutMs`). */
  whenClosed(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`Connection still open after ${timeoutMs} ms`)), timeoutMs);
      this.onClose.push(() => (clearTimeout(t), resolve()));
    });
  }

  /** Drops the TCP connection without DISCONNECT. */
  drop(): void {
    this.sock.terminate();
  }
}
