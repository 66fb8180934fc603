/**
 * The broker link: two AMQP connections to one broker node, one with a confirm-mode publish
 * channel and one with the consume channel, re-established together with capped, jittered
 * backoff whenever either drops or cannot be opened (whatever the cause: refused login, missing
 * vhost, unreachable node, closed by the broker). With several URLs (nodes of one cluster) each
 * new attempt goes to the next node in turn. This is the only place that reconnects.
 *
 * Publishing and consuming use separate connections because RabbitMQ stops reading a blocked
 * publisher's socket (resource alarm): command acks on that socket would stall and, past the
 * prefetch, so would commands. Listeners learn about `up` (topology declared, channels ready)
 * and `down` (every in-flight publish has been rejected by the client by then).
 */
import { AMQPClient, type AMQPChannel, type AMQPTlsOptions } from "@cloudamqp/amqp-client";
import type { Logger } from "../log/logger.ts";
import { ReconnectBackoff } from "./backoff.ts";
import { declareTopology, type Topology, type QueueOptions } from "./topology.ts";
import { redactUrl } from "../config/load.ts";
import { nodeLabel, scrubSecrets, splitUrlList, startNode } from "../config/url-list.ts";
import { FAILURE_HINTS, classifyFailure, type LinkFailure } from "./link-errors.ts";
import { useExternalLogin } from "./external-login.ts";

/** State of the link as reported to operators. */
export type LinkState = "connecting" | "up" | "down" | "closed";

/** Options for {@link BrokerLink}. */
export interface LinkOptions {
  /**
   * amqp:// URL, or several joined by "," (nodes of one cluster, tried in turn); `heartbeat`
   * and `frameMax` query parameters are added when absent.
   */
  url: string;
  /** The gateway's names; the link declares them on every connection. */
  topology: Topology;
  /** Queue type and delivery limit of the gateway and dead-letter queues (default: classic, no limit). */
  queues?: QueueOptions;
  /**
   * Declares something else instead of the gateway topology (e.g. the site events' exchange
   * and queue), on the confirm-mode publish channel `ch` of `client`.
   */
  declare?: (client: AMQPClient, ch: AMQPChannel, log: Logger) => Promise<void>;
  /** TLS material (PEM contents) for amqps:// URLs. */
  tls?: AMQPTlsOptions;
  /** `external`: log in with the client certificate (SASL EXTERNAL) instead of the URL's password. */
  login?: "plain" | "external";
  /** AMQP heartbeat in seconds (dead-link detection). */
  heartbeatS: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Unacked deliveries the broker may push to this gateway. */
  prefetch: number;
  /** Client-provided connection name shown in the RabbitMQ management UI. */
  name: string;
  log: Logger;
}

/**
 * Frame size we ask for (the library's smallest, 8 KiB, splits larger messages). 8 KiB frames
 * were tried to save memory (amqp-client keeps a frame-size buffer per publish until its
 * confirm) and measured worse: 20k devices, 5,000 msg/s, back to back on one machine, round
 * trip p99 1,479 ms with 8 KiB against 115 ms with 128 KiB, same upstream throughput. The
 * buffers a stampede leaves are trimmed instead (see trimFramePool).
 */
export const FRAME_MAX = 131072;

/** Adds heartbeat/frameMax/name parameters to `url` unless the user set them. */
export function linkUrl(url: string, heartbeatS: number, name: string): string {
  const u = new URL(url);
  if (!u.searchParams.has("heartbeat")) u.searchParams.set("heartbeat", String(heartbeatS));
  if (!u.searchParams.has("frameMax")) u.searchParams.set("frameMax", String(FRAME_MAX));
  if (!u.searchParams.has("name")) u.searchParams.set("name", name);
  return u.toString();
}

export { FRAME_POOL_IDLE, FRAME_POOL_MAX, corkClientForTick, trimFramePool } from "./amqp-tuning.ts";
import { corkClientForTick } from "./amqp-tuning.ts";

/**
 * Longest a connection attempt (both connections, channels, topology, a queue rebuild) may take,
 * ms. A rebuild moves ~1,000 messages a second here, so tens of thousands fit.
 */
const CONNECT_TIMEOUT_MS = 60_000;

/** How often the same kind of connection failure is logged at warn level, ms. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

/** A self-healing AMQP connection. */
export class BrokerLink {
  state: LinkState = "down";
  /** Confirm-mode channel for publishing (null while down). */
  pub: AMQPChannel | null = null;
  /** Channel for consuming commands (null while down). */
  sub: AMQPChannel | null = null;
  /** Set while the broker blocks publishers (resource alarm); holds its reason. */
  blocked: string | null = null;
  /** Successful connections after the first one. */
  reconnects = 0;
  /** Connection attempts so far (successful or not). */
  attempts = 0;
  /** Last connection error (passwords removed), for /readyz. */
  lastError: string | null = null;
  /** Kind of the last failure. */
  lastFailure: LinkFailure | null = null;
  /** `host:port` of the node the link uses (or tries) now; never credentials. */
  node: string;
  /** Every node of `url`, as `host:port`, in order. */
  readonly nodes: string[];
  private readonly urls: string[];
  private connectedOnce = false;
  private client: AMQPClient | null = null;
  private subClient: AMQPClient | null = null;
  private closing = false;
  /** Ends the wait while the link is up (current connection lost, reset, close). */
  private wake: (() => void) | null = null;
  /** Ends the backoff sleep (only close() may). */
  private wakeSleep: (() => void) | null = null;
  /** Bumped per connection attempt: events of older clients are ignored. */
  private generation = 0;
  private upListeners: (() => void)[] = [];
  private downListeners: (() => void)[] = [];
  private unblockListeners: (() => void)[] = [];
  private loop: Promise<void> | null = null;
  private lastWarn: { kind: LinkFailure | null; at: number; suppressed: number } = { kind: null, at: 0, suppressed: 0 };

  constructor(private readonly opts: LinkOptions) {
    this.urls = splitUrlList(opts.url);
    if (this.urls.length === 0) throw new Error("broker.url names no broker: give one or more amqp:// URLs");
    this.nodes = this.urls.map(nodeLabel);
    this.node = this.nodes[startNode(opts.name, this.urls.length)]!;
  }

  /** Whether publishing is possible now. */
  get up(): boolean {
    return this.state === "up";
  }

  /** Calls `fn` every time the link comes up. */
  onUp(fn: () => void): void {
    this.upListeners.push(fn);
  }

  /** Calls `fn` every time the link goes down. */
  onDown(fn: () => void): void {
    this.downListeners.push(fn);
  }

  /** Calls `fn` when the broker stops blocking publishers. */
  onUnblocked(fn: () => void): void {
    this.unblockListeners.push(fn);
  }

  /** Starts connecting (in the background; never throws). */
  start(): void {
    this.loop ??= this.run();
  }

  /** Closes the connection cleanly and stops reconnecting. */
  async close(): Promise<void> {
    this.closing = true;
    this.wake?.();
    this.wakeSleep?.();
    await Promise.race([
      Promise.all(
        [this.client, this.subClient].map((c) => (c && !c.closed ? c.close("gateway shutting down").catch(() => {}) : undefined)),
      ),
      Bun.sleep(2000),
    ]);
    this.state = "closed";
    // The loop may be inside a broker RPC that never answers: shutdown must not wait for it.
    await Promise.race([this.loop, Bun.sleep(3000)]);
  }

  /** Coalesces this event-loop turn's publishes into one socket write (see {@link corkClientForTick}). */
  corkTick(): void {
    corkClientForTick(this.client);
  }

  /** The same for the command connection: this turn's delivery acks leave in one write. */
  corkSubTick(): void {
    corkClientForTick(this.subClient);
  }

  /**
   * Drops the current connections (they are re-established, on the next node when there are
   * several); used when a channel breaks, and when the broker nacks publishes: a quorum queue
   * electing a leader nacks a channel for many seconds while a fresh connection works at once.
   */
  reset(why: string): void {
    if (this.state !== "up") return;
    this.opts.log.warn("Resetting broker connections", { why, node: this.node });
    this.lastError = why;
    for (const c of [this.client, this.subClient]) c?.close(why).catch(() => {});
    this.wake?.();
  }

  /**
   * A publish was rejected. A broker nack means "re-send on a fresh connection" (a quorum
   * queue electing a leader keeps nacking the same channel for many seconds while a new
   * connection works at once), so the link resets; other rejections (channel or link closed)
   * are already handled by the link going down.
   */
  publishFailed(err: unknown): void {
    if (this.state === "up" && classifyFailure(err) === "nacked") this.reset("broker nacked a publish (quorum queue leader election?)");
  }

  private emit(list: (() => void)[]): void {
    for (const fn of list) {
      try {
        fn();
      } catch (e) {
        this.opts.log.error("Broker link listener failed", { err: e as Error });
      }
    }
  }

  /** A new client for `url`, with TLS material and login mechanism applied. */
  private newClient(url: string, name: string): AMQPClient {
    const client = new AMQPClient(linkUrl(url, this.opts.heartbeatS, name), this.opts.tls, null);
    if (this.opts.login === "external") useExternalLogin(client);
    return client;
  }

  /** Text safe to log: every password of every configured URL removed. */
  private safe(text: string): string {
    return scrubSecrets(text, [this.opts.url, ...this.urls]);
  }

  /** Opens both connections to `url`, declares the topology and makes the link `up`. */
  private async connect(url: string, gen: number): Promise<void> {
    const { log } = this.opts;
    const onDisconnect = (err?: Error) => {
      if (gen !== this.generation) return;
      this.lastError = this.safe(err?.message ?? "connection closed");
      this.wake?.();
    };
    const client = this.newClient(url, this.opts.name);
    this.client = client;
    client.ondisconnect = onDisconnect;
    client.onblocked = (reason) => {
      this.blocked = reason || "blocked";
      log.warn("Broker blocks publishers (resource alarm); messages go to the outbox until it unblocks", { reason, node: this.node });
    };
    client.onunblocked = () => {
      this.blocked = null;
      log.info("Broker unblocked publishers", { node: this.node });
      this.emit(this.unblockListeners);
    };
    const subClient = this.newClient(url, `${this.opts.name} (commands)`);
    this.subClient = subClient;
    subClient.ondisconnect = onDisconnect;
    // Both attempts settle before we go on, so a late failure of one cannot cut the backoff short.
    const opened = await Promise.allSettled([client.connect(), subClient.connect()]);
    for (const r of opened) if (r.status === "rejected") throw r.reason;
    const pub = await client.channel();
    await pub.confirmSelect();
    if (this.opts.declare) await this.opts.declare(client, pub, log);
    else await declareTopology(client, pub, this.opts.topology, this.opts.queues, log);
    const sub = await subClient.channel();
    await sub.basicQos(this.opts.prefetch);
    const onChannelError = (reason: string) => {
      if (gen !== this.generation) return;
      this.lastError = this.safe(`channel closed: ${reason}`);
      if (!this.closing) this.reset(`channel closed by broker: ${this.safe(reason)}`);
    };
    pub.onerror = onChannelError;
    sub.onerror = onChannelError;
    this.pub = pub;
    this.sub = sub;
  }

  /**
   * {@link connect} with a deadline: a node that accepts the TCP connection but never finishes
   * the handshake or a declaration (a node still joining its cluster) must not hold the link;
   * the attempt fails and the next one goes to the next node.
   */
  private async connectWithin(url: string, gen: number, ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout: the broker did not finish connecting and declaring within ${ms / 1000} s`)), ms);
    });
    const attempt = this.connect(url, gen);
    try {
      await Promise.race([attempt, deadline]);
    } catch (e) {
      attempt.catch(() => {}); // settles later (its clients are closed by the teardown)
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private logFailure(err: unknown, url: string, backoff: ReconnectBackoff): void {
    const kind = classifyFailure(err);
    this.lastFailure = kind;
    this.lastError = this.safe(err instanceof Error ? err.message : String(err));
    const now = Date.now();
    const w = this.lastWarn;
    const fields = { node: nodeLabel(url), cause: kind, err: this.lastError, failures: backoff.failures + 1, hint: FAILURE_HINTS[kind] };
    if (kind !== w.kind || now - w.at >= FAILURE_LOG_INTERVAL_MS) {
      this.opts.log.warn(`Cannot connect to broker (${kind.replaceAll("_", " ")}); retrying with backoff`, {
        ...fields,
        url: redactUrl(url),
        ...(w.suppressed > 0 ? { similar_since_last_line: w.suppressed } : {}),
      });
      this.lastWarn = { kind, at: now, suppressed: 0 };
    } else {
      w.suppressed++;
      this.opts.log.debug("Cannot connect to broker; retrying with backoff", fields);
    }
  }

  private async run(): Promise<void> {
    const { log } = this.opts;
    const backoff = new ReconnectBackoff(this.opts.reconnectMinMs, this.opts.reconnectMaxMs);
    let index = startNode(this.opts.name, this.urls.length);
    while (!this.closing) {
      const url = this.urls[index]!;
      this.node = this.nodes[index]!;
      this.state = "connecting";
      const gen = ++this.generation;
      this.attempts++;
      const down = new Promise<void>((resolve) => (this.wake = resolve));
      try {
        await this.connectWithin(url, gen, CONNECT_TIMEOUT_MS);
        this.state = "up";
        this.lastError = null;
        this.lastFailure = null;
        this.lastWarn = { kind: null, at: 0, suppressed: 0 };
        if (this.connectedOnce) this.reconnects++;
        this.connectedOnce = true;
        backoff.up();
        log.info("Broker link up", { node: this.node, url: redactUrl(url), queue: this.opts.topology.queue, nodes: this.nodes.length });
        this.emit(this.upListeners);
        await down;
        if (this.closing) break;
        log.warn("Broker link down; reconnecting with backoff. Device messages are kept in the outbox meanwhile", {
          node: this.node,
          reason: this.lastError,
          cause: classifyFailure(this.lastError ?? ""),
          ...(this.urls.length > 1 ? { next_node: this.nodes[(index + 1) % this.urls.length] } : {}),
        });
      } catch (e) {
        if (this.closing) break;
        this.logFailure(e, url, backoff);
      }
      this.teardown();
      if (this.closing) break;
      index = (index + 1) % this.urls.length;
      const delay = backoff.next();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wakeSleep = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wakeSleep = null;
    }
    this.state = "closed";
  }

  /** After a failure or a loss: rejects unconfirmed publishes, closes both clients, tells listeners. */
  private teardown(): void {
    const wasUp = this.state === "up";
    this.state = "down";
    this.generation++;
    // Reject every unconfirmed publish now, in order, so the publisher moves them to the
    // outbox ahead of newer messages. (amqp-client only does this when the channel's own
    // socket closes; on a silent drop the publish socket may never notice, and waiting for
    // confirm timeouts would reorder a device's messages.)
    for (const ch of [this.pub, this.sub]) {
      try {
        if (ch && !ch.closed) ch.setClosed(new Error(`broker link down: ${this.lastError ?? "closing"}`));
      } catch {
        // Already closed.
      }
    }
    this.pub = null;
    this.sub = null;
    this.blocked = null;
    for (const c of [this.client, this.subClient]) if (c && !c.closed) c.close().catch(() => {});
    this.client = null;
    this.subClient = null;
    if (wasUp) this.emit(this.downListeners);
  }
}
