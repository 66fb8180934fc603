/**
 * The control plane: implements what the control API needs ({@link ApiDeps}) in the
 * supervisor process, from the shared database and by asking workers over IPC.
 */
import { Waiters } from "../supervisor/waiters.ts";
import type { ApiDeps, CommandRequest, DevicePage, DeviceView, OutboxSummary, Stats, WorkerView } from "../api/deps.ts";
import type { Supervisor } from "../supervisor/supervisor.ts";
import type { DeviceRow, DeviceStore } from "../store/devices.ts";
import { homeOf } from "../registry/home.ts";
import { STORE_LIMIT_REFUSAL } from "../registry/inbox-limit.ts";
import { ApiError } from "../api/errors.ts";
import type { Metrics, MetricsSnapshot } from "../metrics/metrics.ts";
import type { Logger } from "../log/logger.ts";
import { deviceUuid, messageId } from "../identity/identity.ts";
import { mintToken } from "../auth/token.ts";
import type { AckNotice, ControlClient, ControlOp, ControlOps } from "./protocol.ts";

/** Dependencies of the {@link ControlPlane}. */
export interface ControlPlaneOptions {
  sup: Supervisor;
  client: ControlClient;
  devices: DeviceStore;
  /** Commits the sightings received so far (called after the workers answered, before reading rows). */
  syncSightings(): void;
  /** Commands stored for a device, summed over the workers' databases. */
  storedCommands(deviceId?: string): number;
  secret: Uint8Array;
  siteNamespace: string;
  gatewayId: string;
  version: string;
  apiToken: string;
  commandTtlS: number;
  /** How full the outbox is (see {@link ApiDeps.outbox}). */
  outbox: (limit: number) => OutboxSummary;
  metrics: Metrics;
  log: Logger;
  /** Site events wiring (bridge helper): a local revocation is also sent to the site's other gateways. */
  onRevoked?: (deviceId: string, generation: number, hardwareId: string | null) => void;
}

/** How long the API waits for each worker's answer, in ms. */
export const WORKER_ANSWER_MS = 1500;

/** Where a device is connected: the worker holding it and the connection id (live state, from the workers). */
type Held = { worker: number; conn: string; lastTraffic: number };

function view(r: DeviceRow, held: Held | undefined, pending = 0): DeviceView {
  let meta: Record<string, unknown> = {};
  try {
    meta = r.meta ? (JSON.parse(r.meta) as Record<string, unknown>) : {};
  } catch {
    meta = {};
  }
  return {
    id: r.id,
    hardware_id: r.hardware_id,
    connected: held !== undefined,
    worker: held?.worker ?? null,
    connection_id: held?.conn ?? null,
    first_seen: new Date(r.first_seen).toISOString(),
    // The last traffic on its connection (live, from the worker holding it), or on its last
    // connection (recorded at the close).
    last_seen: new Date(held ? held.lastTraffic : r.last_seen).toISOString(),
    last_close_reason: r.close_reason,
    revoked: r.revoked === 1,
    meta,
    pending_commands: pending,
  };
}

function sum(snaps: MetricsSnapshot[], kind: "counters" | "gauges", name: string): number {
  let n = 0;
  for (const s of snaps) for (const [k, v] of Object.entries(s[kind])) if ((k === name || k.startsWith(name + "{")) && Number.isFinite(v)) n += v;
  return n;
}

/** {@link ApiDeps} backed by the supervisor, its workers and the shared store. */
export class ControlPlane implements ApiDeps {
  readonly version: string;
  readonly gatewayId: string;
  readonly apiToken: string;
  private readonly startedAt = Date.now();
  private readonly ackWaiters = new Waiters<string>();

  constructor(private readonly o: ControlPlaneOptions) {
    this.version = o.version;
    this.gatewayId = o.gatewayId;
    this.apiToken = o.apiToken;
  }

  async outbox(limit: number): Promise<OutboxSummary> {
    return this.o.outbox(limit);
  }

  logError(message: string, fields: { ref: string; method: string; path: string; err: Error }): void {
    this.o.log.error(message, fields);
  }

  /** A worker reported that a watched command was acked. */
  onAck(n: AckNotice): void {
    this.ackWaiters.signal(`${n.deviceId}/${n.cmdId}`);
  }

  /** Calls `op` on every running worker; failures become undefined. */
  private async all<K extends ControlOp>(op: K, args: ControlOps[K]["args"]): Promise<{ id: number; result?: ControlOps[K]["result"] }[]> {
    const ws = this.o.sup.workers().filter((w) => w.up);
    const settled = await Promise.allSettled(ws.map((w) => this.o.client.call(w.id, op, args, WORKER_ANSWER_MS)));
    return ws.map((w, i) => {
      const s = settled[i]!;
      return s.status === "fulfilled" ? { id: w.id, result: s.value } : { id: w.id };
    });
  }

  async workers(): Promise<WorkerView[]> {
    const stats = new Map((await this.all("stats", {})).map((s) => [s.id, s.result]));
    return this.o.sup.workers().map((w) => ({
      id: w.id,
      pid: w.pid,
      up: w.up,
      ready: w.ready,
      restarts: w.restarts,
      started_at: new Date(w.startedAt).toISOString(),
      connections: stats.get(w.id)?.connections ?? null,
      broker: stats.get(w.id)?.broker ?? null,
    }));
  }

  async metrics() {
    const stats = await this.all("stats", {});
    return {
      workers: stats.filter((s) => s.result).map((s) => ({ id: s.id, snapshot: s.result!.snapshot })),
      supervisor: this.o.metrics.snapshot(),
    };
  }

  async ready() {
    const ws = this.o.sup.workers();
    const stats = await this.all("stats", {});
    let store = "ok";
    try {
      this.o.devices.count();
    } catch (e) {
      store = `error: ${(e as Error).message}`;
    }
    for (const st of stats) {
      if (st.result && st.result.store !== "ok" && store === "ok") store = `worker ${st.id}: ${st.result.store}`;
    }
    const readyCount = ws.filter((w) => w.up && w.ready).length;
    const broker: Record<string, string> = {};
    for (const s of stats) broker[String(s.id)] = s.result?.broker ?? "unknown";
    return { ready: readyCount === ws.length && store === "ok", workers_ready: readyCount, workers: ws.length, store, broker };
  }

  /** Where each of `ids` is connected, asking every worker (live state; workers that do not answer count as holding none). */
  private async holders(ids: string[]): Promise<Map<string, Held>> {
    const out = new Map<string, Held>();
    if (ids.length === 0) return out;
    for (const r of await this.all("held", { ids })) for (const [id, conn, lastTraffic] of r.result ?? []) out.set(id, { worker: r.id, conn, lastTraffic });
    this.o.syncSightings();
    return out;
  }

  /** Connected devices with ids after `after`, in id order, at most `limit` (merged over the workers). */
  private async connectedPage(after: string | null, limit: number): Promise<Map<string, Held>> {
    const all: [string, Held][] = [];
    for (const r of await this.all("heldPage", { after, limit })) for (const [id, conn, lastTraffic] of r.result ?? []) all.push([id, { worker: r.id, conn, lastTraffic }]);
    this.o.syncSightings();
    all.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return new Map(all.slice(0, limit));
  }

  async listDevices(q: { cursor?: string; limit: number; connected?: boolean; hardware_id?: string; search?: string }): Promise<DevicePage> {
    const want = q.limit + 1;
    const page: DeviceView[] = [];
    const matches = (r: DeviceRow) =>
      (q.hardware_id === undefined || r.hardware_id === q.hardware_id) &&
      (!q.search || r.id.includes(q.search) || (r.hardware_id ?? "").includes(q.search) || (r.meta ?? "").includes(q.search));
    let after = q.cursor ?? null;
    // Connection state lives in the workers; the device table has the rest. Page by id over
    // whichever side the filter narrows, and fill the page from the other.
    for (let round = 0; round < 50 && page.length < want; round++) {
      if (q.connected === true) {
        const held = await this.connectedPage(after, want * 2);
        if (held.size === 0) break;
        const ids = [...held.keys()];
        for (const r of this.o.devices.getMany(ids)) if (matches(r) && page.length < want) page.push(view(r, held.get(r.id)));
        after = ids[ids.length - 1]!;
        if (held.size < want * 2) break;
      } else {
        let rows = this.o.devices.list({ after: after ?? undefined, limit: want * 2, hardwareId: q.hardware_id, search: q.search });
        if (rows.length === 0) break;
        const held = await this.holders(rows.map((r) => r.id));
        rows = this.o.devices.getMany(rows.map((r) => r.id)); // again, with the sightings the workers just sent
        for (const r of rows) {
          if (page.length >= want) break;
          const h = held.get(r.id);
          if (q.connected === false && h) continue;
          page.push(view(r, h));
        }
        after = rows[rows.length - 1]!.id;
        if (rows.length < want * 2) break;
      }
    }
    const more = page.length > q.limit;
    const devices = page.slice(0, q.limit);
    return { devices, next_cursor: more ? devices[devices.length - 1]!.id : null };
  }

  async getDevice(id: string): Promise<DeviceView | null> {
    if (!this.o.devices.get(id)) return null;
    const held = (await this.holders([id])).get(id);
    const r = this.o.devices.get(id); // read after the workers' sightings are in
    return r ? view(r, held, this.o.storedCommands(id)) : null;
  }

  async registerDevice(hardwareId: string, meta: Record<string, unknown>) {
    const id = deviceUuid(this.o.siteNamespace, hardwareId);
    const created = this.o.devices.register(id, hardwareId, meta);
    const row = this.o.devices.get(id)!;
    // A revoked device gets no token here: that would lift the revocation behind the operator's
    // back. Re-issuing is explicit (POST /api/v1/devices/{id}/token).
    const token = row.revoked ? null : mintToken(this.o.secret, hardwareId, row.token_gen);
    return { device: view(row, (await this.holders([id])).get(id)), token, created };
  }

  async updateDevice(id: string, meta: Record<string, unknown>): Promise<DeviceView | null> {
    return this.o.devices.updateMeta(id, meta) ? await this.getDevice(id) : null;
  }

  async revokeDevice(id: string): Promise<DeviceView | null> {
    const generation = this.o.devices.revoke(id);
    if (generation === null) return null;
    await this.all("revoke", { deviceId: id, generation });
    this.o.log.info("Device revoked", { device: id, generation });
    this.o.onRevoked?.(id, generation, this.o.devices.get(id)?.hardware_id ?? null); // site events wiring
    return this.getDevice(id);
  }

  issueToken(id: string): string | null {
    const row = this.o.devices.get(id);
    if (!row?.hardware_id) return null;
    const gen = this.o.devices.reissue(id);
    return gen === null ? null : mintToken(this.o.secret, row.hardware_id, gen);
  }

  async sendCommand(id: string, req: CommandRequest, waitAckMs: number | null) {
    if (!this.o.devices.get(id)) return null;
    const cmd = {
      id: messageId(),
      deviceId: id,
      topic: req.topic,
      body: JSON.stringify(req.body ?? null),
      corr: req.corr ?? null,
      expiresAt: Date.now() + (req.ttl_s ?? this.o.commandTtlS) * 1000,
    };
    // The device's home worker stores it (one writer per file) and sends it on when connected.
    const home = homeOf(id, this.o.sup.workers().length);
    const acked = waitAckMs === null ? null : this.ackWaiters.wait(`${id}/${cmd.id}`, waitAckMs);
    try {
      await this.o.client.call(home, "command", { cmd, watchAckMs: waitAckMs === null ? null : waitAckMs + 1000 }, WORKER_ANSWER_MS * 2);
    } catch (e) {
      this.ackWaiters.signal(`${id}/${cmd.id}`);
      if ((e as Error).message.startsWith(STORE_LIMIT_REFUSAL)) throw new ApiError("not_ready", `Cannot store the command: ${(e as Error).message}`);
      throw new Error(`Cannot store the command: worker ${home} (the device's home) did not take it (${(e as Error).message}); retry in a moment`);
    }
    this.o.metrics.inc("owsla_api_commands_total");
    if (!acked) return { id: cmd.id };
    return { id: cmd.id, acked: await acked };
  }

  async kick(id: string): Promise<boolean | null> {
    if (!this.o.devices.get(id)) return null;
    const results = await this.all("kick", { deviceId: id, reason: "kicked" });
    return results.some((r) => r.result === true);
  }

  async stats(): Promise<Stats> {
    const stats = await this.all("stats", {});
    const snaps = stats.flatMap((s) => (s.result ? [s.result.snapshot] : []));
    const ws = this.o.sup.workers();
    return {
      gateway: this.gatewayId,
      version: this.version,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      connections: sum(snaps, "gauges", "owsla_connections"),
      devices_known: this.o.devices.count(),
      accepts_total: sum(snaps, "counters", "owsla_accepts_total"),
      welcomes_total: sum(snaps, "counters", "owsla_welcomes_total"),
      messages_up_total: sum(snaps, "counters", "owsla_messages_up_total"),
      messages_down_total: sum(snaps, "counters", "owsla_messages_down_total"),
      outbox_depth: sum(snaps, "gauges", "owsla_outbox_depth"),
      inbox_depth: this.o.storedCommands(),
      broker: { up: sum(snaps, "gauges", "owsla_broker_up"), total: ws.length, reconnects: sum(snaps, "gauges", "owsla_broker_reconnects") },
      workers: { up: ws.filter((w) => w.up).length, total: ws.length, restarts: ws.reduce((n, w) => n + w.restarts, 0) },
    };
  }
}
