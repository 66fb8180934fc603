/**
 * An in-memory {@link ApiDeps} for tests of the control API (and of anything built on it).
 *
 * @module
 */
import { deviceUuid, messageId } from "../identity/identity.ts";
import type { MetricsSnapshot } from "../metrics/metrics.ts";
import type { ApiDeps, CommandRequest, DevicePage, DeviceView, Stats, WorkerView } from "./deps.ts";

const NAMESPACE = "b152f5e3-aa92-4c3c-8f61-2eb500a32561";
const EPOCH = "2025-01-01T00:00:00.000Z";

/** A command the fake received. */
export interface SentCommand {
  device: string;
  cmd: CommandRequest;
  waitAckMs: number | null;
  id: string;
}

/** The fake with its state open to tests. */
export interface FakeDeps extends ApiDeps {
  devices: Map<string, DeviceView>;
  /** Token generation per device (bumped by revoke). */
  generations: Map<string, number>;
  sent: SentCommand[];
  /** Whether a `wait=ack` command is acked (true) or times out (false). Default true. */
  devicesAck: boolean;
  /** Answer of `ready()`. */
  readiness: Awaited<ReturnType<ApiDeps["ready"]>>;
  workerList: WorkerView[];
  snapshots: Awaited<ReturnType<ApiDeps["metrics"]>>;
  /** Adds a device and returns it. */
  addDevice(hardwareId: string, patch?: Partial<DeviceView>): DeviceView;
}

function emptySnapshot(): MetricsSnapshot {
  return { counters: {}, gauges: {}, histograms: {} };
}

/** A fresh fake; `overrides` replace individual methods. */
export function createFakeDeps(overrides: Partial<ApiDeps> = {}): FakeDeps {
  const devices = new Map<string, DeviceView>();
  const generations = new Map<string, number>();
  const tokenOf = (id: string): string => `tok.${id}.${generations.get(id) ?? 0}`;

  const fake: FakeDeps = {
    version: "1.2.3-test",
    gatewayId: "gw-test",
    apiToken: "test-api-token-0123456789",
    devices,
    generations,
    sent: [],
    devicesAck: true,
    readiness: { ready: true, workers_ready: 2, workers: 2, store: "ok", broker: { "0": "up", "1": "up" } },
    workerList: [0, 1].map((id) => ({
      id,
      pid: 1000 + id,
      up: true,
      ready: true,
      restarts: 0,
      started_at: EPOCH,
      connections: id,
      broker: "up",
    })),
    snapshots: {
      workers: [
        { id: 0, snapshot: { counters: { owsla_accepts_total: 3 }, gauges: { owsla_connections: 2 }, histograms: {} } },
        { id: 1, snapshot: { counters: { owsla_accepts_total: 4 }, gauges: { owsla_connections: 5 }, histograms: {} } },
      ],
      supervisor: { ...emptySnapshot(), counters: { owsla_worker_restarts_total: 1 } },
    },

    addDevice(hardwareId, patch = {}) {
      const id = deviceUuid(NAMESPACE, hardwareId);
      const device: DeviceView = {
        id,
        hardware_id: hardwareId,
        connected: false,
        worker: null,
        connection_id: null,
        first_seen: EPOCH,
        last_seen: EPOCH,
        last_close_reason: null,
        revoked: false,
        meta: {},
        pending_commands: 0,
        ...patch,
      };
      devices.set(id, device);
      return device;
    },

    async workers() {
      return fake.workerList;
    },
    async metrics() {
      return fake.snapshots;
    },
    async ready() {
      return fake.readiness;
    },
    async listDevices(q) {
      let all = [...devices.values()].sort((a, b) => a.id.localeCompare(b.id));
      if (q.connected !== undefined) all = all.filter((d) => d.connected === q.connected);
      if (q.hardware_id !== undefined) all = all.filter((d) => d.hardware_id === q.hardware_id);
      if (q.search !== undefined) {
        const s = q.search;
        all = all.filter((d) => d.id.includes(s) || (d.hardware_id ?? "").includes(s) || JSON.stringify(d.meta).includes(s));
      }
      if (q.cursor !== undefined) all = all.filter((d) => d.id > q.cursor!);
      const page = all.slice(0, q.limit);
      const next = all.length > q.limit ? page[page.length - 1]!.id : null;
      const result: DevicePage = { devices: page.map((d) => ({ ...d, pending_commands: 0 })), next_cursor: next };
      return result;
    },
    async getDevice(id) {
      const d = devices.get(id);
      return d ? { ...d, pending_commands: fake.sent.filter((s) => s.device === id).length } : null;
    },
    async registerDevice(hardwareId, meta) {
      const id = deviceUuid(NAMESPACE, hardwareId);
      const existing = devices.get(id);
      const device = existing ?? fake.addDevice(hardwareId);
      device.meta = { ...device.meta, ...meta };
      return { device, token: device.revoked ? null : tokenOf(id), created: !existing };
    },
    async updateDevice(id, meta) {
      const d = devices.get(id);
      if (!d) return null;
      d.meta = { ...d.meta, ...meta };
      return d;
    },
    async revokeDevice(id) {
      const d = devices.get(id);
      if (!d) return null;
      generations.set(id, (generations.get(id) ?? 0) + 1);
      d.revoked = true;
      d.connected = false;
      return d;
    },
    issueToken(id) {
      const d = devices.get(id);
      if (!d) return null;
      d.revoked = false;
      return tokenOf(id);
    },
    async sendCommand(id, cmd, waitAckMs) {
      if (!devices.has(id)) return null;
      const sent = { device: id, cmd, waitAckMs, id: messageId() };
      fake.sent.push(sent);
      return waitAckMs === null ? { id: sent.id } : { id: sent.id, acked: fake.devicesAck };
    },
    async kick(id) {
      const d = devices.get(id);
      if (!d) return null;
      if (!d.connected) return false;
      d.connected = false;
      d.last_close_reason = "kicked";
      return true;
    },
    async outbox(limit: number) {
      const devices = [
        { device_id: "0b9e7c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d", rows: 3, bytes: 120, oldest: "2026-01-01T00:00:00.000Z" },
        { device_id: "1b9e7c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d", rows: 1, bytes: 40, oldest: "2026-01-01T00:01:00.000Z" },
      ];
      return { rows: 4, bytes: 160, oldest: devices[0]!.oldest, oldest_age_s: 60, devices_total: 2, devices: devices.slice(0, limit) };
    },
    async stats(): Promise<Stats> {
      return {
        gateway: fake.gatewayId,
        version: fake.version,
        uptime_s: 42,
        connections: [...devices.values()].filter((d) => d.connected).length,
        devices_known: devices.size,
        accepts_total: 7,
        welcomes_total: 6,
        messages_up_total: 10,
        messages_down_total: fake.sent.length,
        outbox_depth: 0,
        inbox_depth: 0,
        broker: { up: 2, total: 2, reconnects: 0 },
        workers: { up: 2, total: 2, restarts: 1 },
      };
    },
  };
  return Object.assign(fake, overrides);
}
