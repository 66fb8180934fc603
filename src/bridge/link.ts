/**
 * The broker link: two AMQP connections, one with a confirm-mode publish channel and one with
 * the consume channel, re-established together with capped, jittered backoff whenever either
 * drops. This is the only place that reconnects. Publishing and consuming use separate
 * connections because RabbitMQ stops reading a blocked publisher's socket (resource alarm):
 * command acks on that socket would stall and, past the prefetch, so would commands. Listeners learn about `up` (topology declared, channels ready) and
 * `down` (every in-flight publish has been rejected by the client by then).
 */
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import type { Logger } from "../log/logger.ts";
import { backoffDelay } from "./backoff.ts";
import { declareTopology, type Topology } from "./topology.ts";
import { redactUrl } from "../config/load.ts";

/** State of the link as reported to operators. */
export type LinkState = "connecting" | "up" | "down" | "closed";

/** Options for {@link BrokerLink}. */
export interface LinkOptions {
  /** amqp:// URL; `heartbeat` and `frameMax` query parameters are added when absent. */
  url: string;
  topology: Topology;
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

/** Frame size we ask for (the library default of 4096 splits every larger message). */
export const FRAME_MAX = 131072;

/** Adds heartbeat/frameMax/name parameters to `url` unless the user set them. */
export function linkUrl(url: string, heartbeatS: number, name: string): string {
  const u = new URL(url);
  if (!u.searchParams.has("heartbeat")) u.searchParams.set("heartbeat", String(heartbeatS));
  if (!u.searchParams.has("frameMax")) u.searchParams.set("frameMax", String(FRAME_MAX));
  if (!u.searchParams.has("name")) u.searchParams.set("name", name);
  return u.toString();
}

const corkedSockets = new WeakSet<object>();

/**
 * Corks an amqp-client connection's socket until the end of this turn of the event loop
 * (`setImmediate` runs after the pending I/O callbacks), so the publishes of every device
 * event handled in this turn leave in one write: during a stampede, many welcomes' presence
 * events share one syscall instead of one each (measured here: +20-40% publish throughput
 * with confirms already with per-tick corking).
 */
export function corkClientForTick(client: unknown): void {
  const sock = (client as { socket?: { cork(): void; uncork(): void } } | null)?.socket;
  if (!sock || typeof sock.cork !== "function" || corkedSockets.has(sock)) return;
  corkedSockets.add(sock);
  sock.cork();
  setImmediate(() => {
    corkedSockets.delete(sock);
    try {
      sock.uncork();
    } catch {
      // The socket died meanwhile; the disconnect handler takes over.
    }
  });
}

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
  /** Last connection error, for /readyz. */
  lastError: string | null = null;
  private connectedOnce = false;
  private client: AMQPClient | null = null;
  private subClient: AMQPClient | null = null;
  private closing = false;
  private wake: (() => void) | null = null;
  private upListeners: (() => void)[] = [];
  private downListeners: (() => void)[] = [];
  private unblockListeners: (() => void)[] = [];
  private loop: Promise<void> | null = null;

  constructor(private readonly opts: LinkOptions) {}

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
    await Promise.race([
      Promise.all(
        [this.client, this.subClient].map((c) => (c && !c.closed ? c.close("gateway shutting down").catch(() => {}) : undefined)),
      ),
      Bun.sleep(2000),
    ]);
    this.state = "closed";
    await this.loop;
  }

  /** Coalesces this event-loop turn's publishes into one socket write (see {@link corkClientForTick}). */
  corkTick(): void {
    corkClientForTick(this.client);
  }

  /** Drops the current connection (it is re-established); used when a channel breaks. */
  reset(why: string): void {
    if (this.state !== "up") return;
    this.opts.log.warn("Resetting broker connections", { why });
    for (const c of [this.client, this.subClient]) c?.close(why).catch(() => {});
    this.wake?.();
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

  private async run(): Promise<void> {
    const { log } = this.opts;
    const url = linkUrl(this.opts.url, this.opts.heartbeatS, this.opts.name);
    const safeUrl = redactUrl(this.opts.url);
    let attempt = 0;
    while (!this.closing) {
      this.state = "connecting";
      const down = new Promise<void>((resolve) => (this.wake = resolve));
      try {
        const onDisconnect = (err?: Error) => {
          this.lastError = err?.message ?? "connection closed";
          this.wake?.();
        };
        const client = new AMQPClient(url, undefined, null);
        this.client = client;
        client.ondisconnect = onDisconnect;
        client.onblocked = (reason) => {
          this.blocked = reason || "blocked";
          log.warn("Broker blocks publishers (resource alarm); messages go to the outbox until it unblocks", { reason });
        };
        client.onunblocked = () => {
          this.blocked = null;
          log.info("Broker unblocked publishers");
          this.emit(this.unblockListeners);
        };
        const subClient = new AMQPClient(linkUrl(this.opts.url, this.opts.heartbeatS, `${this.opts.name} (commands)`), undefined, null);
        this.subClient = subClient;
        subClient.ondisconnect = onDisconnect;
        await Promise.all([client.connect(), subClient.connect()]);
        const pub = await client.channel();
        await pub.confirmSelect();
        await declareTopology(pub, this.opts.topology);
        const sub = await subClient.channel();
        await sub.basicQos(this.opts.prefetch);
        const onChannelError = (reason: string) => {
          this.lastError = `channel closed: ${reason}`;
          if (!this.closing) this.reset(`channel closed by broker: ${reason}`);
        };
        pub.onerror = onChannelError;
        sub.onerror = onChannelError;
        this.pub = pub;
        this.sub = sub;
        this.state = "up";
        this.lastError = null;
        if (this.connectedOnce) this.reconnects++;
        this.connectedOnce = true;
        attempt = 0;
        log.info("Broker link up", { url: safeUrl, queue: this.opts.topology.queue });
        this.emit(this.upListeners);
        await down;
        if (this.closing) break;
        log.warn("Broker link down; reconnecting with backoff. Device messages are kept in the outbox meanwhile", {
          url: safeUrl,
          reason: this.lastError,
        });
      } catch (e) {
        this.lastError = (e as Error).message;
        if (this.closing) break;
        const level = attempt === 0 || attempt % 20 === 0 ? "warn" : "debug";
        log[level]("Cannot connect to broker; retrying with backoff. Check broker.url and that RabbitMQ is running", {
          url: safeUrl,
          err: this.lastError,
          attempt,
        });
      }
      const wasUp = this.state === "up";
      this.state = "down";
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
      if (this.closing) break;
      const delay = backoffDelay(attempt++, this.opts.reconnectMinMs, this.opts.reconnectMaxMs);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.state = "closed";
  }
}
