/**
 * Command routing for one worker, in three roles:
 *
 * - **origin**: the worker that took a command from the broker (or the API). It keeps the
 *   broker delivery unacknowledged, sends the command to the device's home, and acks the
 *   delivery when the device acks. When the device is offline, or does not ack within
 *   `ackTimeoutMs`, or its connection closes first, the origin writes the command to its own
 *   store and then acks the delivery. Stored commands are sent again when the device is
 *   welcomed anywhere (the home tells the origin where), and their row is deleted on ack.
 * - **home** ({@link HomeShard}): knows where each of its devices is held.
 * - **holder**: the worker whose connection holds the device writes the `cmd` frame.
 *
 * No disk write happens on the way to a connected device or on its ack: the broker's unacked
 * delivery is the durable copy. A SIGKILL anywhere leaves either that delivery (the broker
 * redelivers it) or a stored row.
 */
import { ackRoute, routeKey, routeOrigin, type AckRoute, type Command } from "../protocol/gateway-messages.ts";
import { HomeShard, homeOf } from "./home.ts";
import { limitMessage, STORE_LIMIT_REFUSAL } from "./inbox-limit.ts";
import type { LimitReason } from "../store/disk-limits.ts";

export type { Delivery, HolderConn, RouterOptions } from "./router-types.ts";
import type { Delivery, HolderConn, RouterOptions } from "./router-types.ts";

/** Delays before looking up an unknown device again, before its command is refused, in ms. */
export const UNKNOWN_RECHECK_MS = [300, 1200];
/**
 * The same for a redelivered command: the worker that took it first may have been killed
 * within the ~100 ms a first sighting waits for its batch, so the site database learns of the
 * device only when it reconnects; the command waits for that instead of being refused.
 */
export const UNKNOWN_RECHECK_REDELIVERED_MS = [300, 1200, 3000, 6000];
/** How often expired delivery deadlines are looked for, in ms. */
export const DEADLINE_SWEEP_MS = 100;

interface Inflight {
  cmd: Command;
  delivery: Delivery;
  receivedAt: number;
  deadline: number;
}

/** One worker's command routing (origin, home and holder roles). */
export class CommandRouter {
  readonly home = new HomeShard();
  private readonly inflight = new Map<number, Inflight>();
  private nextKey = 1;
  private readonly watched = new Map<string, number>();
  private readonly sweep: ReturnType<typeof setInterval>;

  constructor(private readonly o: RouterOptions) {
    this.sweep = setInterval(() => this.expireDeadlines(), DEADLINE_SWEEP_MS);
  }

  /** Deliveries awaiting a device ack. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  stop(): void {
    clearInterval(this.sweep);
  }

  // ---- origin ------------------------------------------------------------------------------

  /** A command from the broker: route it to its device; `delivery` is acked once it is safe. */
  accept(cmd: Command, delivery: Delivery, receivedAt: number): void {
    const k = this.nextKey++;
    this.inflight.set(k, { cmd, delivery, receivedAt, deadline: Date.now() + this.o.ackTimeoutMs });
    this.o.metrics.inc("owsla_commands_received_total");
    // Held right here: no need to ask the home.
    if (this.o.registry.get(cmd.deviceId)?.state === "open") return this.holderDeliver(cmd, this.o.self, k, receivedAt);
    this.toHome(cmd.deviceId, { t: "route", c: cmd, o: this.o.self, k, rt: receivedAt }, () => this.homeRoute(cmd, this.o.self, k, receivedAt), () => this.offline(k));
  }

  /**
   * A command from the API: stored by this worker (its origin) and sent to the device if it
   * is connected. Resolves once stored; `watch` reports the device's ack via `onWatchedAck`.
   */
  async acceptStored(cmd: Command, watchMs: number | null): Promise<void> {
    const limit = await this.storeCommand(cmd);
    if (limit) throw new Error(`${STORE_LIMIT_REFUSAL} (${limit}): ${limitMessage(limit)}; retry later`);
    if (watchMs !== null) this.watched.set(`${cmd.deviceId}/${cmd.id}`, Date.now() + watchMs);
    this.announceStored(cmd.deviceId);
  }

  /** The broker link went down: its unacked deliveries go back to the queue by themselves. */
  forgetDeliveries(): void {
    this.inflight.clear();
  }

  /** The device is not held anywhere (or its connection went away): store the command. */
  private offline(k: number): void {
    const f = this.inflight.get(k);
    if (!f) return;
    this.inflight.delete(k);
    this.storeDelivery(f, 0);
  }

  private storeDelivery(f: Inflight, attempt: number): void {
    const { cmd } = f;
    if (!this.o.known(cmd.deviceId)) {
      // A device welcomed for the first time a moment ago is recorded in a batch: look again.
      const wait = (f.delivery.redelivered ? UNKNOWN_RECHECK_REDELIVERED_MS : UNKNOWN_RECHECK_MS)[attempt];
      if (wait !== undefined) setTimeout(() => this.storeDelivery(f, attempt + 1), wait);
      else f.delivery.reject("unknown_device", `Command ${cmd.id} is for device ${cmd.deviceId}, which this gateway has never seen`);
      return;
    }
    this.storeCommand(cmd).then(
      (limit) => {
        if (limit) return f.delivery.reject(limit, `Command ${cmd.id} for offline device ${cmd.deviceId} was not stored: ${limitMessage(limit)}`);
        f.delivery.ack();
        this.o.metrics.inc("owsla_commands_stored_total");
        this.announceStored(cmd.deviceId);
      },
      (err: Error) => {
        this.o.metrics.inc("owsla_command_store_failures_total");
        this.o.log.error("Cannot store a command for an offline device; the broker redelivers it in 1 s", { id: cmd.id, err });
        f.delivery.retry();
      },
    );
  }

  /** Stores `cmd` within the store limits; resolves with the limit that kept it out, or null once stored. */
  private storeCommand(cmd: Command): Promise<LimitReason | null> {
    return this.o.limiter ? this.o.limiter.store(cmd) : this.o.store.add(cmd).then(() => null);
  }

  private announceStored(deviceId: string): void {
    const { self } = this.o;
    this.toHome(deviceId, { t: "pending", d: deviceId }, () => this.homeAddStored(deviceId, self), () => {});
  }

  /** The device acked command `id` sent under key `k` (0: a stored command). */
  private acked(k: number, deviceId: string, id: string): void {
    const f = k ? this.inflight.get(k) : undefined;
    if (f) {
      this.inflight.delete(k);
      f.delivery.ack();
      this.o.metrics.observe("owsla_command_ack_ms", Math.max(0, Date.now() - f.receivedAt));
      this.watchedAck(deviceId, id);
      return;
    }
    this.o.store.remove(deviceId, id).then(
      (removed) => {
        if (!removed) return;
        this.watchedAck(deviceId, id);
        if (this.o.store.count(deviceId) === 0) {
          const { self } = this.o;
          this.toHome(deviceId, { t: "cleared", d: deviceId }, () => this.home.clearStored(deviceId, self), () => {});
        }
      },
      (err: Error) => this.o.log.warn("Cannot delete an acked command; it may be sent again", { device: deviceId, id, err }),
    );
  }

  private watchedAck(deviceId: string, id: string): void {
    const key = `${deviceId}/${id}`;
    if (this.watched.delete(key)) this.o.onWatchedAck(deviceId, id);
  }

  /** Sends this worker's stored commands for `deviceId` to the worker `to` that holds it. */
  private flush(deviceId: string, to: number): void {
    let rows: Command[];
    try {
      rows = this.o.store.pendingFor([deviceId]);
    } catch (err) {
      this.o.log.warn("Cannot read stored commands; they are sent at the device's next welcome", { device: deviceId, err: err as Error });
      return;
    }
    const now = Date.now();
    for (const c of rows) {
      try {
        if (to === this.o.self) this.holderDeliver(c, this.o.self, 0, now);
        else this.o.send(to, { t: "deliver", c, o: this.o.self, k: 0, rt: now });
      } catch (err) {
        this.quarantineStored(deviceId, c.id, err as Error, c);
      }
    }
  }

  /**
   * A stored command made a worker throw: it would do it again at every welcome (and after
   * every restart), so it is set aside instead.
   */
  private quarantineStored(deviceId: string, id: string, err: Error, known?: Command): void {
    const c = known ?? this.o.store.pendingFor([deviceId]).find((r) => r.id === id);
    if (!c) return;
    this.o.metrics.inc("owsla_quarantined_total", { kind: "command" });
    this.o.log.error("A stored command made a worker throw; it is quarantined (never sent again; kept in the worker's database, table quarantine)", { device: deviceId, id, err });
    this.o.store.quarantine(c, String(err?.stack ?? err)).catch((e: Error) => this.o.log.error("Cannot quarantine the command", { id, err: e }));
  }

  private expireDeadlines(): void {
    const now = Date.now();
    for (const [k, f] of this.inflight) {
      if (f.deadline > now) break; // insertion order = deadline order
      this.inflight.delete(k);
      this.o.metrics.inc("owsla_commands_ack_timeouts_total");
      this.storeDelivery(f, 0);
    }
    for (const [key, until] of this.watched) if (until < now) this.watched.delete(key);
  }

  // ---- home --------------------------------------------------------------------------------

  private homeRoute(c: Command, origin: number, k: number, rt: number): void {
    const loc = this.home.locate(c.deviceId);
    if (!loc) return this.replyOffline(origin, k);
    if (loc.worker === this.o.self) return this.holderDeliver(c, origin, k, rt);
    if (!this.o.send(loc.worker, { t: "deliver", c, o: origin, k, rt })) this.replyOffline(origin, k);
  }

  private homeClaim(deviceId: string, worker: number, at: number): void {
    const out = this.home.claim(deviceId, worker, at);
    if (out.takeover) {
      const t = out.takeover;
      if (t.worker === this.o.self) this.holderTakeover(deviceId, t.at);
      else this.o.send(t.worker, { t: "takeover", d: deviceId, at: t.at });
    }
    for (const o of out.flushFrom) this.askFlush(o, deviceId, worker);
  }

  private homeAddStored(deviceId: string, origin: number): void {
    const loc = this.home.addStored(deviceId, origin);
    if (loc) this.askFlush(origin, deviceId, loc.worker);
  }

  private askFlush(origin: number, deviceId: string, to: number): void {
    if (origin === this.o.self) this.flush(deviceId, to);
    else this.o.send(origin, { t: "flush", d: deviceId, to });
  }

  private replyOffline(origin: number, k: number): void {
    if (k === 0) return; // a stored command stays stored
    if (origin === this.o.self) this.offline(k);
    else this.o.send(origin, { t: "offline", k });
  }

  // ---- holder ------------------------------------------------------------------------------

  private holderDeliver(c: Command, origin: number, k: number, rt: number): void {
    const conn = this.o.registry.get(c.deviceId);
    if (!conn || conn.state !== "open") return this.replyOffline(origin, k);
    let written: boolean;
    try {
      written = conn.deliver(c, ackRoute(origin, k));
    } catch (err) {
      if (k === 0) throw err; // a stored command: its origin quarantines it
      // A live command: its origin stores it, and the stored copy is quarantined if it throws again.
      this.o.log.error("Writing a command to its device threw; its origin stores it instead", { device: c.deviceId, id: c.id, err: err as Error });
      written = false;
    }
    if (!written) return this.replyOffline(origin, k);
    this.o.metrics.inc("owsla_commands_delivered_live_total");
    this.o.metrics.observe("owsla_command_delivery_ms", Math.max(0, Date.now() - rt));
  }

  private holderTakeover(deviceId: string, at: number): void {
    const conn = this.o.registry.get(deviceId);
    if (conn && conn.welcomedAt <= at) conn.takeOver();
  }

  /** A local connection was welcomed as `deviceId`: it holds the device now. */
  welcomed(deviceId: string, conn: HolderConn): void {
    const old = this.o.registry.claim(deviceId, conn);
    if (old) old.takeOver();
    const at = conn.welcomedAt;
    const { self } = this.o;
    this.toHome(deviceId, { t: "claim", d: deviceId, at }, () => this.homeClaim(deviceId, self, at), () => {});
  }

  /**
   * A local connection of `deviceId` closed; `unacked` are the routes of commands written on
   * it and not acked: their origins store them now instead of waiting for the deadline.
   */
  released(deviceId: string, conn: HolderConn, unacked: Iterable<AckRoute>): void {
    if (this.o.registry.release(deviceId, conn)) {
      const at = conn.welcomedAt;
      const { self } = this.o;
      this.toHome(deviceId, { t: "release", d: deviceId, at }, () => this.home.release(deviceId, self, at), () => {});
    }
    for (const r of unacked) this.replyOffline(routeOrigin(r), routeKey(r));
  }

  /** The device acked command `id`, written on its connection with `route`. */
  deviceAck(deviceId: string, id: string, route: AckRoute): void {
    const origin = routeOrigin(route);
    const k = routeKey(route);
    if (origin === this.o.self) this.acked(k, deviceId, id);
    else this.o.send(origin, { t: "acked", k, d: deviceId, id });
  }

  // ---- links -------------------------------------------------------------------------------

  /** Runs `local` when this worker is the device's home, else sends `msg` there (`down` when the link is down). */
  private toHome(deviceId: string, msg: object, local: () => void, down: () => void): void {
    const h = homeOf(deviceId, this.o.count);
    if (h === this.o.self) local();
    else if (!this.o.send(h, msg)) down();
  }

  /** A message from worker `from` (see docs/architecture.md, "Worker links"). */
  onMessage(from: number, m: Record<string, unknown>): void {
    const d = m.d as string;
    switch (m.t) {
      case "route":
        return this.homeRoute(m.c as Command, m.o as number, m.k as number, m.rt as number);
      case "deliver":
        try {
          return this.holderDeliver(m.c as Command, m.o as number, m.k as number, m.rt as number);
        } catch (err) {
          // Only stored commands rethrow: their origin sets them aside.
          this.o.send(m.o as number, { t: "poison", d: (m.c as Command).deviceId, id: (m.c as Command).id, why: String((err as Error)?.message ?? err) });
          return;
        }
      case "poison":
        return this.quarantineStored(d, m.id as string, new Error(String(m.why)));
      case "offline":
        return this.offline(m.k as number);
      case "acked":
        return this.acked(m.k as number, d, m.id as string);
      case "claim":
        return this.homeClaim(d, from, m.at as number);
      case "release":
        return this.home.release(d, from, m.at as number);
      case "takeover":
        return this.holderTakeover(d, m.at as number);
      case "pending":
        return this.homeAddStored(d, from);
      case "cleared":
        return this.home.clearStored(d, from);
      case "flush":
        return this.flush(d, m.to as number);
    }
  }

  /** The link to `peer` is (back) up: tell it what it must know as a home. */
  peerUp(peer: number): void {
    const { count, self } = this.o;
    for (const [d, conn] of this.o.registry.entries()) {
      if (homeOf(d, count) === peer && conn.state === "open") this.o.send(peer, { t: "claim", d, at: conn.welcomedAt });
    }
    let stored: string[] = [];
    try {
      stored = this.o.store.devices();
    } catch (err) {
      this.o.log.warn("Cannot list stored commands for a restarted worker; they are sent at the device's next welcome", { err: err as Error });
    }
    for (const d of stored) if (homeOf(d, count) === peer && peer !== self) this.o.send(peer, { t: "pending", d });
  }

  /** The link to `peer` is down (its process is gone): forget where its devices were. */
  peerDown(peer: number): void {
    this.home.dropWorker(peer);
  }

  /** At start: announce to this worker's own home shard the devices stored here. */
  resyncSelf(): void {
    for (const d of this.o.store.devices()) if (homeOf(d, this.o.count) === this.o.self) this.home.addStored(d, this.o.self);
  }
}
