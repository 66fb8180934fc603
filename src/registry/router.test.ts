import { afterEach, describe, expect, test } from "bun:test";
import { CommandRouter, type Delivery, type HolderConn } from "./router.ts";
import { Registry } from "./registry.ts";
import { homeOf } from "./home.ts";
import { MemoryCommandStore } from "../store/memory.ts";
import { Metrics } from "../metrics/metrics.ts";
import { createLogger } from "../log/logger.ts";
import type { AckRoute, Command } from "../protocol/gateway-messages.ts";

/** A connection that records what it was sent. */
class FakeConn implements HolderConn {
  readonly connId = crypto.randomUUID();
  state = "open";
  readonly got: { cmd: Command; route: AckRoute }[] = [];
  takenOver = false;
  constructor(readonly welcomedAt: number) {}
  deliver(cmd: Command, route: AckRoute): boolean {
    this.got.push({ cmd, route });
    return true;
  }
  takeOver(): void {
    this.takenOver = true;
    this.state = "closing";
  }
}

/** A delivery that records its fate. */
function delivery() {
  const d = { acked: 0, rejected: null as string | null, retried: 0 };
  const h: Delivery = { ack: () => d.acked++, reject: (r) => (d.rejected = r), retry: () => d.retried++ };
  return { d, h };
}

const routers: CommandRouter[] = [];
afterEach(() => routers.splice(0).forEach((r) => r.stop()));

/** `count` routers wired to each other through an in-process message queue (like the mesh). */
function cluster(count: number, opts: { ackTimeoutMs?: number; known?: (id: string) => boolean } = {}) {
  const stores = Array.from({ length: count }, () => new MemoryCommandStore());
  const registries = Array.from({ length: count }, () => new Registry<HolderConn>());
  const down = new Set<number>();
  const workers: CommandRouter[] = [];
  for (let self = 0; self < count; self++) {
    workers.push(
      new CommandRouter({
        self,
        count,
        send: (peer, msg) => {
          if (down.has(peer)) return false;
          const copy = JSON.parse(JSON.stringify(msg)) as Record<string, unknown>;
          queueMicrotask(() => workers[peer]!.onMessage(self, copy));
          return true;
        },
        registry: registries[self]!,
        store: stores[self]!,
        known: opts.known ?? (() => true),
        ackTimeoutMs: opts.ackTimeoutMs ?? 60_000,
        metrics: new Metrics(),
        log: createLogger({ level: "error" }),
        onWatchedAck: () => {},
      }),
    );
  }
  routers.push(...workers);
  return { workers, stores, registries, down };
}

const settle = () => Bun.sleep(5);
/** A device id whose home is `home` among `count` workers. */
function deviceWithHome(home: number, count: number): string {
  for (;;) {
    const id = crypto.randomUUID();
    if (homeOf(id, count) === home) return id;
  }
}
const command = (deviceId: string, id: string = crypto.randomUUID()): Command => ({ id, deviceId, topic: "cmd", body: "{}", corr: null, expiresAt: Date.now() + 60_000 });

describe("command router", () => {
  test("a command taken by one worker reaches the device on another through its home, and the device's ack acks the delivery; nothing is stored", async () => {
    const { workers, stores } = cluster(3);
    const dev = deviceWithHome(1, 3);
    const conn = new FakeConn(Date.now());
    workers[2]!.welcomed(dev, conn);
    await settle();
    const { d, h } = delivery();
    workers[0]!.accept(command(dev, "c1"), h, Date.now());
    await settle();
    expect(conn.got.map((g) => g.cmd.id)).toEqual(["c1"]);
    expect(d.acked).toBe(0);
    workers[2]!.deviceAck(dev, "c1", conn.got[0]!.route);
    await settle();
    expect(d.acked).toBe(1);
    expect(stores.every((s) => s.count() === 0)).toBe(true);
  });

  test("a command for an offline device is stored by its origin, acked, and sent when the device is welcomed elsewhere; its ack deletes the row", async () => {
    const { workers, stores } = cluster(3);
    const dev = deviceWithHome(2, 3);
    const { d, h } = delivery();
    workers[0]!.accept(command(dev, "c1"), h, Date.now());
    await settle();
    expect(d.acked).toBe(1);
    expect(stores[0]!.count(dev)).toBe(1);
    const conn = new FakeConn(Date.now());
    workers[1]!.welcomed(dev, conn);
    await settle();
    expect(conn.got.map((g) => g.cmd.id)).toEqual(["c1"]);
    workers[1]!.deviceAck(dev, "c1", conn.got[0]!.route);
    await settle();
    expect(stores[0]!.count()).toBe(0);
  });

  test("a command the device does not ack within the deadline is stored and the delivery acked", async () => {
    const { workers, stores } = cluster(2, { ackTimeoutMs: 50 });
    const dev = deviceWithHome(0, 2);
    const conn = new FakeConn(Date.now());
    workers[1]!.welcomed(dev, conn);
    await settle();
    const { d, h } = delivery();
    workers[1]!.accept(command(dev, "c1"), h, Date.now());
    await settle();
    expect(conn.got.length).toBe(1);
    expect(d.acked).toBe(0);
    await Bun.sleep(250);
    expect(d.acked).toBe(1);
    expect(stores[1]!.count(dev)).toBe(1);
    // A late ack still deletes the stored row.
    workers[1]!.deviceAck(dev, "c1", conn.got[0]!.route);
    await settle();
    expect(stores[1]!.count()).toBe(0);
  });

  test("a connection that closes with unacked commands makes their origins store them at once", async () => {
    const { workers, stores, registries } = cluster(2);
    const dev = deviceWithHome(1, 2);
    const conn = new FakeConn(Date.now());
    workers[0]!.welcomed(dev, conn);
    await settle();
    const { d, h } = delivery();
    workers[1]!.accept(command(dev, "c1"), h, Date.now());
    await settle();
    expect(conn.got.length).toBe(1);
    conn.state = "closed";
    workers[0]!.released(dev, conn, conn.got.map((g) => g.route));
    await settle();
    expect(registries[0]!.get(dev)).toBeUndefined();
    expect(d.acked).toBe(1);
    expect(stores[1]!.count(dev)).toBe(1);
  });

  test("the newest welcome wins across workers: the older connection is taken over", async () => {
    const { workers } = cluster(3);
    const dev = deviceWithHome(0, 3);
    const old = new FakeConn(Date.now() - 10);
    workers[1]!.welcomed(dev, old);
    await settle();
    const newer = new FakeConn(Date.now());
    workers[2]!.welcomed(dev, newer);
    await settle();
    expect(old.takenOver).toBe(true);
    expect(newer.takenOver).toBe(false);
    // Commands now go to the newer connection.
    const { h } = delivery();
    workers[1]!.accept(command(dev, "c2"), h, Date.now());
    await settle();
    expect(newer.got.map((g) => g.cmd.id)).toEqual(["c2"]);
    expect(old.got).toEqual([]);
  });

  test("a command for a device the gateway never saw is rejected after the re-checks", async () => {
    const { workers, stores } = cluster(2, { known: () => false });
    const { d, h } = delivery();
    workers[0]!.accept(command(deviceWithHome(1, 2)), h, Date.now());
    await Bun.sleep(1700);
    expect(d.rejected).toBe("unknown_device");
    expect(d.acked).toBe(0);
    expect(stores[0]!.count()).toBe(0);
  });

  test("a redelivered command for a device not yet known waits longer, and is stored once the device is known", async () => {
    // A worker was killed before the device's first sighting reached the site database; the
    // device becomes known when it reconnects (here: after 2 s).
    const knownFrom = Date.now() + 2000;
    const { workers, stores } = cluster(2, { known: () => Date.now() >= knownFrom });
    const { d, h } = delivery();
    workers[0]!.accept(command(deviceWithHome(1, 2), "again-1"), { ...h, redelivered: true }, Date.now());
    await Bun.sleep(1700);
    expect(d.rejected).toBeNull();
    await Bun.sleep(3300);
    expect(d.rejected).toBeNull();
    expect(d.acked).toBe(1);
    expect(stores[0]!.count()).toBe(1);
  }, 15_000);

  test("when the home is unreachable the origin stores the command instead of losing it", async () => {
    const { workers, stores, down } = cluster(2);
    const dev = deviceWithHome(1, 2);
    down.add(1);
    const { d, h } = delivery();
    workers[0]!.accept(command(dev, "c1"), h, Date.now());
    await settle();
    expect(d.acked).toBe(1);
    expect(stores[0]!.count(dev)).toBe(1);
  });

  test("a restarted home learns again where devices are and who stores commands for them", async () => {
    const { workers } = cluster(2);
    const dev = deviceWithHome(1, 2);
    const conn = new FakeConn(Date.now());
    workers[0]!.welcomed(dev, conn);
    await settle();
    workers[1]!.peerDown(0);
    expect(workers[1]!.home.locate(dev)).toBeUndefined();
    workers[0]!.peerUp(1);
    await settle();
    expect(workers[1]!.home.locate(dev)?.worker).toBe(0);
  });
});

test("a stored command whose delivery throws is quarantined; the device's other commands still arrive", async () => {
  const { workers, stores } = cluster(1);
  const dev = crypto.randomUUID();
  const [a, b] = [delivery(), delivery()];
  workers[0]!.accept(command(dev, "poison"), a.h, Date.now());
  workers[0]!.accept(command(dev, "fine"), b.h, Date.now());
  await settle();
  expect(stores[0]!.count(dev)).toBe(2);
  const conn = new FakeConn(Date.now());
  conn.deliver = (cmd, route) => {
    if (cmd.id === "poison") throw new RangeError("Maximum call stack size exceeded");
    conn.got.push({ cmd, route });
    return true;
  };
  workers[0]!.welcomed(dev, conn);
  await settle();
  expect(conn.got.map((g) => g.cmd.id)).toEqual(["fine"]);
  expect(stores[0]!.quarantined()).toBe(1);
  expect(stores[0]!.pendingFor([dev]).map((c) => c.id)).toEqual(["fine"]);
});

test("a stored command that throws on another worker is quarantined by the worker that stores it", async () => {
  const { workers, stores } = cluster(2);
  const dev = deviceWithHome(0, 2);
  const d = delivery();
  workers[0]!.accept(command(dev, "poison"), d.h, Date.now());
  await settle();
  expect(stores[0]!.count(dev)).toBe(1);
  const conn = new FakeConn(Date.now());
  conn.deliver = () => {
    throw new RangeError("boom");
  };
  workers[1]!.welcomed(dev, conn);
  await settle();
  expect(stores[0]!.quarantined()).toBe(1);
  expect(stores[0]!.count(dev)).toBe(0);
});
