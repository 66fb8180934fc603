/**
 * The back-end simulator on a plain MQTT broker (`owsla load --mqtt --mqtt-broker
 * --with-backend`): one MQTT client that subscribes to the devices' requests (`load`) and
 * answers each on its response topic with its correlation data, the way an MQTT 5 request /
 * response back-end does (or from the JSON payload with MQTT 3.1.1). It subscribes at QoS 0:
 * one subscriber carries every device's traffic, and a QoS 1 subscription would put it behind
 * the broker's per-subscriber inflight window (Mosquitto `max_inflight_messages` 20, RabbitMQ
 * `mqtt.prefetch` 10). Replies go out at QoS 1 like the devices' requests.
 */
import type { Socket } from "bun";
import type { Packet } from "mqtt-packet";
import { Histogram } from "./histogram.ts";
import { watchLoopLag } from "./loop-lag.ts";
import { connackCode, connectPacket, DISCONNECT, MQTT_PUB_TOPIC, packetParser, PINGREQ, publishPacket, replyAddress, subscribePacket } from "./mqtt-codec.ts";
import type { BackendOptions } from "./options.ts";
import { zeroBackendCounters, type BackendCounters, type BackendFinal } from "./stats.ts";

/** Time to wait for CONNACK and SUBACK, in ms. */
const READY_TIMEOUT_MS = 10_000;
/** PINGREQ interval, in ms (the CONNECT asks for a 60 s keepalive). */
const PING_MS = 30_000;
/** Body of every reply (3.1.1 adds the correlation as "c"). */
const REPLY_BODY = '{"ok":true}';

/** A running MQTT back-end simulator. */
export class MqttBackendSim {
  readonly counters: BackendCounters = zeroBackendCounters();
  private readonly lag = watchLoopLag();
  private socket: Socket<undefined> | null = null;
  private out: Buffer | null = null;
  private nextId = 1;
  private ping: ReturnType<typeof setInterval> | null = null;
  private readonly mq: NonNullable<BackendOptions["mqtt"]>;

  constructor(private readonly opts: BackendOptions) {
    if (!opts.mqtt) throw new Error("MqttBackendSim needs the MQTT broker address (--mqtt-broker)");
    this.mq = opts.mqtt;
  }

  /** Connects, subscribes to the devices' requests, and resolves once the broker granted it. */
  async start(): Promise<void> {
    const { host, port, version } = this.mq;
    let ready!: () => void;
    let fail!: (e: Error) => void;
    const started = new Promise<void>((res, rej) => ((ready = res), (fail = rej)));
    const parser = packetParser(version, (p) => this.onPacket(p, ready, fail), (e) => this.count(`bad_packet_${e.message.slice(0, 30)}`));
    this.socket = await Bun.connect<undefined>({
      hostname: host,
      port,
      socket: {
        open: (s) => {
          s.setNoDelay(true);
        },
        data: (_s, chunk) => parser.parse(chunk),
        drain: (s) => {
          if (!this.out) return;
          const n = s.write(this.out);
          this.out = n >= this.out.length ? null : Buffer.from(this.out.subarray(Math.max(0, n)));
        },
        close: () => {
          this.socket = null;
          this.count("broker_connection_closed");
          fail(new Error("the broker closed the connection"));
        },
        connectError: (_s, e) => fail(e),
      },
    }).catch((e: Error) => {
      throw new Error(`Cannot connect to the MQTT broker ${host}:${port} for the back-end simulator: ${e.message}; check --mqtt-port and that the broker runs`);
    });
    this.write(connectPacket({ version, clientId: `owsla-load-backend-${process.pid}`, password: null }));
    const timeout = setTimeout(() => fail(new Error(`no CONNACK/SUBACK from the MQTT broker ${host}:${port} within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    try {
      await started;
    } finally {
      clearTimeout(timeout);
    }
    this.ping = setInterval(() => this.write(PINGREQ), PING_MS);
  }

  /** Back-end-initiated commands are not simulated on a plain broker (options refuse --cmd-rate). */
  startCommands(): void {}

  snapshot(): BackendCounters {
    return this.counters;
  }

  final(): BackendFinal {
    return { counters: this.counters, doorUnlock: new Histogram().toData(), loopLag: this.lag.histogram.toData(), rssBytes: process.memoryUsage().rss };
  }

  async stop(): Promise<void> {
    this.lag.stop();
    if (this.ping) clearInterval(this.ping);
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.write(DISCONNECT);
      s.end();
    }
  }

  private count(kind: string): void {
    this.counters.errors[kind] = (this.counters.errors[kind] ?? 0) + 1;
  }

  private write(data: Buffer): void {
    const s = this.socket;
    if (!s) return;
    if (this.out) {
      this.out = Buffer.concat([this.out, data]);
      return;
    }
    const n = s.write(data);
    if (n < data.length) this.out = Buffer.from(data.subarray(Math.max(0, n)));
  }

  private onPacket(p: Packet, ready: () => void, fail: (e: Error) => void): void {
    switch (p.cmd) {
      case "connack": {
        const code = connackCode(p);
        if (code !== 0) return fail(new Error(`the MQTT broker refused the back-end simulator (CONNACK reason ${code})`));
        return this.write(subscribePacket(this.mq.version, 1, [MQTT_PUB_TOPIC], 0));
      }
      case "suback":
        return ready();
      case "publish": {
        this.counters.received++;
        if (!this.opts.reply) return;
        const to = replyAddress(p);
        if (!to) return this.count("no_reply_to");
        const body = this.mq.version === 5 ? REPLY_BODY : `{"ok":true,"c":${JSON.stringify(to.correlation.toString())}}`;
        this.write(publishPacket(this.mq.version, this.takeId(), to.topic, body, to.correlation));
        this.counters.replies++;
        return;
      }
      case "puback":
      case "pingresp":
        return;
      case "disconnect":
        return this.count(`broker_disconnect_0x${(p.reasonCode ?? 0).toString(16)}`);
      default:
        this.count(`unexpected_${p.cmd}`);
    }
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = id >= 0xffff ? 1 : id + 1;
    return id;
  }
}
