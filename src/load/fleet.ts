/**
 * The devices of one client process: connects them (paced by a rate and a window of
 * handshakes in flight), completes hello, keeps them alive with pings, publishes, answers
 * commands, and reconnects refused or dropped devices after `retry_after` and backoff.
 * Latencies go into {@link Histogram}s; everything else into cumulative counters.
 *
 * All devices of a process share one set of socket handlers; a small per-attempt object in
 * `socket.data` tells a live attempt from a stale one. The device record and its byte I/O are
 * in `fleet-device.ts`; the wire protocol (line protocol or MQTT, per the spec) is a
 * {@link DeviceProtocol} that reports back through the {@link FleetEvents} this class implements.
 */
import type { Socket, SocketHandler } from "bun";
import { Histogram } from "./histogram.ts";
import { watchLoopLag } from "./loop-lag.ts";
import type { ClientSpec } from "./ipc.ts";
import { RETRYABLE_CODES, retryDelay } from "./retry.ts";
import { zeroClientCounters, type ClientCounters, type ClientFinal } from "./stats.ts";
import { drainOut, dropSocket, newDev, writeOut, type Attempt, type Dev } from "./fleet-device.ts";
import type { DeviceCommand, DeviceProtocol, FleetEvents } from "./device-protocol.ts";
import { LineProtocol, NON_CLOSING_CODES } from "./line-protocol.ts";
import { MqttProtocol } from "./mqtt-protocol.ts";

/** How often pacing, pings and timeouts are looked at, in ms. */
const TICK_MS = 10;
/** Sweep for pings and stale pubs, in ms. */
const SWEEP_MS = 1000;
/** A handshake without welcome after this long is abandoned (`handshake_timeout`) and retried, in ms. */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** A pub without ack after this long counts as `no_ack`, in ms. */
const ACK_TIMEOUT_MS = 60_000;
/** A pub without RPC reply after this long is forgotten (counted as `no_reply` once replies were seen), in ms. */
const REPLY_TIMEOUT_MS = 30_000;
/** Most pubs sent in one tick when the process lags behind its rate (1 s of backlog). */
const MAX_CATCH_UP_S = 1;

const now = () => performance.now();
const wall = () => performance.timeOrigin + performance.now();

/** The simulated devices of one client process. */
export class Fleet implements FleetEvents {
  readonly counters: ClientCounters = zeroClientCounters();
  readonly handshake = new Histogram();
  readonly timeToWelcome = new Histogram();
  readonly pubAck = new Histogram();
  readonly roundTrip = new Histogram();
  readonly cmdDelivery = new Histogram();
  private readonly lag = watchLoopLag();
  /** Wall-clock ms when every device of this process had been welcomed once (0 until then). */
  allWelcomedAt = 0;
  private readonly devs: Dev[];
  private queue: Dev[] = [];
  private queueHead = 0;
  private goAt = 0;
  private connectsStarted = 0;
  private msgsOn = false;
  private msgStartAt = 0;
  private msgsSent = 0;
  private rr = 0;
  private seq = 0;
  private repliesSeen = false;
  private readonly ackPending = new Map<string, number>();
  private readonly replyPending = new Map<string, number>();
  private readonly proto: DeviceProtocol;
  private readonly handlers: SocketHandler<Attempt>;
  private tick: ReturnType<typeof setInterval> | null = null;
  private sweep: ReturnType<typeof setInterval> | null = null;
  private stopped = false;

  constructor(private readonly spec: ClientSpec) {
    const secret = spec.secretHex === null ? null : Buffer.from(spec.secretHex, "hex");
    const write = (d: Dev, data: string | Buffer) => this.write(d, data);
    this.proto = spec.mqtt ? new MqttProtocol(this, write, secret, spec.payload, spec.mqtt) : new LineProtocol(this, write, secret, spec.payload);
    this.devs = Array.from({ length: spec.count }, (_, i) => newDev(spec.firstDevice + i, `${spec.idPrefix}${spec.firstDevice + i}`));
    this.handlers = {
      open: (s) => this.onOpen(s),
      data: (s, chunk) => this.onData(s, chunk),
      drain: (s) => this.onDrain(s),
      close: (s) => this.onSocketGone(s.data, "dropped"),
      error: (s) => {
        this.countError(s.data, "socket_error");
        s.data.explained = true;
      },
      connectError: (s, err) => this.onSocketGone(s.data, `connect_${(err as { code?: string }).code ?? "failed"}`),
    };
  }

  /** Starts connecting every device (paced by the spec's rate and window). */
  go(): void {
    this.goAt = now();
    for (const d of this.devs) this.enqueue(d);
    this.tick = setInterval(() => this.onTick(), TICK_MS);
    this.sweep = setInterval(() => this.onSweep(), SWEEP_MS);
    this.pump();
  }

  /** Starts publishing (open loop at the spec's rate, or closed loop with `inflight`). */
  startMessages(): void {
    if (this.msgsOn || (this.spec.msgRate <= 0 && this.spec.inflight <= 0)) return;
    this.msgsOn = true;
    this.msgStartAt = now();
    if (this.spec.inflight > 0) for (const d of this.devs) if (d.state === "open") this.fill(d);
  }

  /** Counters with the gauges brought up to date. */
  snapshot(): ClientCounters {
    this.counters.outstanding = this.ackPending.size;
    return this.counters;
  }

  /** Everything this process measured. */
  final(): ClientFinal {
    return {
      counters: this.snapshot(),
      histograms: {
        handshake: this.handshake.toData(),
        timeToWelcome: this.timeToWelcome.toData(),
        pubAck: this.pubAck.toData(),
        roundTrip: this.roundTrip.toData(),
        cmdDelivery: this.cmdDelivery.toData(),
        loopLag: this.lag.histogram.toData(),
      },
      allWelcomedAt: this.allWelcomedAt,
      rssBytes: process.memoryUsage().rss,
    };
  }

  /** Stops everything and closes every connection. */
  stop(): void {
    this.stopped = true;
    this.lag.stop();
    if (this.tick) clearInterval(this.tick);
    if (this.sweep) clearInterval(this.sweep);
    for (const d of this.devs) {
      if (d.state === "open") this.proto.bye(d);
      d.state = "stopped";
      d.attempt = null;
      dropSocket(d);
    }
  }

  // ---- connecting ----

  private enqueue(d: Dev): void {
    d.state = "queued";
    this.queue.push(d);
  }

  /** Starts queued devices while the window and the connect rate allow. */
  private pump(): void {
    const { window, connectRate } = this.spec;
    const allowed = connectRate > 0 ? Math.floor(((now() - this.goAt) / 1000) * connectRate) + 1 - this.connectsStarted : Number.POSITIVE_INFINITY;
    let budget = allowed;
    while (budget > 0 && this.counters.handshaking < window && this.queueHead < this.queue.length) {
      const d = this.queue[this.queueHead++]!;
      if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      if (d.state !== "queued") continue;
      this.connect(d);
      budget--;
    }
  }

  private connect(d: Dev): void {
    const a: Attempt = { d, explained: false, retryAfter: undefined, codec: null };
    d.attempt = a;
    d.state = "connecting";
    d.rest = null;
    d.out = null;
    d.attemptStartedAt = now();
    if (d.firstStartedAt === 0) d.firstStartedAt = d.attemptStartedAt;
    this.counters.attempts++;
    this.counters.handshaking++;
    this.connectsStarted++;
    const hosts = this.spec.hosts;
    Bun.connect<Attempt>({ hostname: hosts[d.n % hosts.length]!, port: this.spec.port, data: a, socket: this.handlers }).catch(() => {
      // connectError has handled it.
    });
  }

  private onOpen(s: Socket<Attempt>): void {
    const a = s.data;
    if (this.stopped || a.d.attempt !== a) return void s.end();
    a.d.socket = s;
    s.setNoDelay(true);
    this.proto.open(a.d, a);
  }

  /** The attempt ended before or after welcome: count it, forget the socket, and retry later. */
  private onSocketGone(a: Attempt, kind: string): void {
    const d = a.d;
    if (d.attempt !== a || this.stopped) return;
    if (!a.explained) this.countError(a, kind === "dropped" && d.state === "connecting" ? "closed_before_welcome" : kind);
    this.endAttempt(d, a.retryAfter);
  }

  private endAttempt(d: Dev, retryAfter: number | undefined): void {
    if (d.state === "connecting") this.counters.handshaking--;
    if (d.state === "open") this.counters.connected--;
    d.attempt = null;
    d.inflight = 0;
    dropSocket(d);
    d.failures++;
    d.state = "waiting";
    this.counters.retries++;
    setTimeout(() => {
      if (d.state !== "waiting" || this.stopped) return;
      this.enqueue(d);
      this.pump();
    }, retryDelay(d.failures, retryAfter));
    this.pump();
  }

  /** An unexpected frame or packet from the gateway. */
  bad(a: Attempt, kind: string): void {
    this.countError(a, kind);
  }

  private countError(a: Attempt | undefined, kind: string): void {
    if (a && a.d.attempt !== a) return;
    this.counters.errors[kind] = (this.counters.errors[kind] ?? 0) + 1;
  }

  // ---- I/O ----

  private write(d: Dev, data: string | Buffer): void {
    if (!d.socket) return;
    d.lastSentAt = now();
    writeOut(d, data);
  }

  private onDrain(s: Socket<Attempt>): void {
    if (s.data.d.attempt === s.data) drainOut(s.data.d, s);
  }

  private onData(s: Socket<Attempt>, chunk: Buffer): void {
    const a = s.data;
    if (a.d.attempt === a) this.proto.data(a.d, a, chunk);
  }

  welcome(d: Dev, keepaliveS: number | undefined): void {
    if (d.state !== "connecting") return;
    const t = now();
    this.counters.handshaking--;
    this.counters.connected++;
    this.counters.welcomes++;
    d.state = "open";
    d.failures = 0;
    if (keepaliveS !== undefined) d.keepaliveMs = keepaliveS * 1000;
    this.handshake.recordMs(t - d.attemptStartedAt);
    if (!d.everWelcomed) {
      d.everWelcomed = true;
      this.timeToWelcome.recordMs(t - d.firstStartedAt);
      if (++this.counters.everWelcomed === this.devs.length) this.allWelcomedAt = wall();
    }
    if (this.msgsOn && this.spec.inflight > 0) this.fill(d);
    this.pump();
  }

  ack(d: Dev, ref: string): void {
    const t0 = this.ackPending.get(ref);
    if (t0 === undefined) return;
    this.ackPending.delete(ref);
    if (ref.charCodeAt(0) !== 114 /* "r": one of our pubs, not a door.ack */) return;
    this.pubAck.recordMs(now() - t0);
    this.counters.acks++;
    if (this.spec.inflight > 0 && d.inflight > 0) {
      d.inflight--;
      if (this.msgsOn) this.fill(d);
    }
  }

  cmd(d: Dev, c: DeviceCommand): void {
    const { id, corr } = c;
    this.counters.cmds++;
    this.proto.ackCmd(d, id);
    if (corr !== null) {
      const t0 = this.replyPending.get(corr);
      if (t0 !== undefined) {
        this.replyPending.delete(corr);
        this.roundTrip.recordMs(now() - t0);
        this.counters.replies++;
        this.repliesSeen = true;
      }
      return;
    }
    // A back-end-initiated command (door unlock): confirm it upstream so the back-end can time it.
    const body = c.body as { t?: unknown } | null;
    if (body && typeof body.t === "number") this.cmdDelivery.recordMs(wall() - body.t);
    this.ackPending.set(id, now());
    this.counters.doorAcks++;
    this.proto.doorAck(d, id);
  }

  refused(d: Dev, a: Attempt, code: string, retryAfter?: number, ref?: string): void {
    this.countError(a, code);
    if (ref !== undefined && this.ackPending.delete(ref)) {
      // A pub the gateway did not take (rate_limited, a negative PUBACK): the connection stays.
      this.replyPending.delete(ref);
      if (d.inflight > 0) d.inflight--;
      return;
    }
    if (d.state === "open" && NON_CLOSING_CODES.has(code)) return;
    a.explained = true;
    a.retryAfter = retryAfter;
    // A refusal before welcome: leave now and come back later. Otherwise the gateway closes.
    if (d.state === "connecting" || RETRYABLE_CODES.has(code)) this.endAttempt(d, retryAfter);
  }

  // ---- messages, pings, timeouts ----

  private sendPub(d: Dev): void {
    const ref = `r${(this.seq++).toString(36)}`;
    const t = now();
    this.ackPending.set(ref, t);
    this.replyPending.set(ref, t);
    this.counters.pubs++;
    this.proto.pub(d, ref);
  }

  /** Closed loop: tops the device's unacked pubs up to `inflight`. */
  private fill(d: Dev): void {
    while (d.state === "open" && d.inflight < this.spec.inflight) {
      d.inflight++;
      this.sendPub(d);
    }
  }

  private onTick(): void {
    this.pump();
    if (!this.msgsOn || this.spec.inflight > 0 || this.spec.msgRate <= 0) return;
    const rate = this.spec.msgRate;
    let due = Math.floor(((now() - this.msgStartAt) / 1000) * rate) - this.msgsSent;
    const cap = Math.max(1, Math.ceil(rate * MAX_CATCH_UP_S));
    if (due > cap) {
      this.msgsSent += due - cap; // too far behind: skip rather than burst
      due = cap;
    }
    const n = this.devs.length;
    for (let scanned = 0; due > 0 && scanned < n; scanned++) {
      const d = this.devs[this.rr]!;
      this.rr = (this.rr + 1) % n;
      if (d.state !== "open") continue;
      this.sendPub(d);
      this.msgsSent++;
      due--;
    }
  }

  private onSweep(): void {
    const t = now();
    for (const d of this.devs) {
      if (d.state === "connecting" && t - d.attemptStartedAt > HANDSHAKE_TIMEOUT_MS && d.attempt) {
        // Accepted by the kernel but never answered (a stuck or overloaded gateway): try again later.
        this.countError(d.attempt, "handshake_timeout");
        this.endAttempt(d, undefined);
        continue;
      }
      if (d.state !== "open") continue;
      const every = this.spec.pingEveryS > 0 ? this.spec.pingEveryS * 1000 : d.keepaliveMs;
      if (t - d.lastSentAt >= every) {
        this.counters.pings++;
        this.proto.ping(d);
      }
      if (this.msgsOn && this.spec.inflight > 0 && d.inflight < this.spec.inflight) this.fill(d);
    }
    for (const [ref, t0] of this.ackPending) {
      if (t - t0 < ACK_TIMEOUT_MS) break;
      this.ackPending.delete(ref);
      this.countError(undefined, "no_ack");
    }
    for (const [ref, t0] of this.replyPending) {
      if (t - t0 < REPLY_TIMEOUT_MS) break;
      this.replyPending.delete(ref);
      if (this.repliesSeen) this.countError(undefined, "no_reply");
    }
  }
}
