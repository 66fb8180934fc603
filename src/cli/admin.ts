/**
 * Admin commands of the same binary (`devices`, `device`, `send`, `kick`, `status`, `revoke`,
 * `register`, `outbox`): thin clients of the control API, using the token from the data
 * directory or `--api-token`.
 *
 * Exit codes a script can rely on: 0 success; 1 the gateway refused (not found, not
 * connected, timeout, rate limited after wrong tokens); 2 usage error; 3 gateway unreachable;
 * 4 unauthorized (wrong token).
 */

import type { OutboxSummary } from "../store/outbox-summary.ts";
import { MAX_ACK_TIMEOUT_MS } from "../api/limits.ts";

/** Exit codes of the admin commands. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, unauthorized: 4 } as const;

/** Where an admin command sends its requests and its output. */
export interface AdminContext {
  baseUrl: string;
  token: string;
  json: boolean;
  out: (s: string) => void;
  err: (s: string) => void;
  fetch?: typeof fetch;
  /** The outbox read from the data directory, for `outbox` when the gateway is not running (null: no database). */
  localOutbox?: (limit: number) => { summary: OutboxSummary; source: string } | null;
}

/** Usage text of each admin command. */
export const ADMIN_USAGE: Record<string, string> = {
  devices: "Usage: owsla devices [--connected true|false] [--hardware-id ID] [--search TEXT] [--limit N] [--json]\nLists devices known to the gateway, page by page.",
  device: "Usage: owsla device <device-uuid> [--json]\nShows one device: identity, connection, worker, last seen, pending commands, last close reason.",
  send: "Usage: owsla send <device-uuid> <topic> <json-body> [--wait-ack [--timeout-ms N]] [--json]\nSends a command to a device through the gateway (stored until acked or expired). --wait-ack waits for the device's ack, at most --timeout-ms (default 10000, at most 60000).",
  kick: "Usage: owsla kick <device-uuid> [--json]\nCloses the device's connection; it may reconnect.",
  status: "Usage: owsla status [--json]\nShows the gateway's workers, connections, broker link and queues.",
  revoke:
    "Usage: owsla revoke <device-uuid | hardware-id> [--json]\nRevokes the device's tokens (on every worker) and disconnects it; re-issue one with POST /api/v1/devices/<id>/token.",
  register:
    "Usage: owsla register <hardware-id> [--room TEXT] [--kind TEXT] [--label TEXT] [--json]\nPre-registers a device and prints its id and the token it presents in hello (an already known device keeps its id; metadata is merged).",
  outbox:
    "Usage: owsla outbox [--limit N] [--json]\nShows how full the outbox is (messages held for the broker): count, bytes, oldest, and the N devices holding most (default 20).\nAsks the running gateway; when none answers, reads the database in the data directory (--data).",
};

/** Admin-only flags, removed before the shared config parser sees the arguments. */
export interface AdminFlags {
  json: boolean;
  waitAck: boolean;
  /** How long --wait-ack waits, ms (the API's default when absent). */
  timeoutMs?: number;
  connected?: boolean;
  hardwareId?: string;
  search?: string;
  limit?: number;
  room?: string;
  kind?: string;
  label?: string;
}

/** Splits admin-only flags out of `args`. Throws a usage error message on bad values. */
export function extractAdminFlags(args: string[]): { flags: AdminFlags; rest: string[] } {
  const flags: AdminFlags = { json: false, waitAck: false };
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [name, inline] = a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`Option ${name} needs a value`);
      return v;
    };
    if (name === "--json") flags.json = true;
    else if (name === "--wait-ack") flags.waitAck = true;
    else if (name === "--timeout-ms") {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1 || n > MAX_ACK_TIMEOUT_MS) throw new Error(`--timeout-ms must be an integer from 1 to ${MAX_ACK_TIMEOUT_MS}`);
      flags.timeoutMs = n;
    }
    else if (name === "--connected") {
      const v = value();
      if (v !== "true" && v !== "false") throw new Error(`--connected must be true or false, got "${v}"`);
      flags.connected = v === "true";
    } else if (name === "--hardware-id") flags.hardwareId = value();
    else if (name === "--search") flags.search = value();
    else if (name === "--room") flags.room = value();
    else if (name === "--kind") flags.kind = value();
    else if (name === "--label") flags.label = value();
    else if (name === "--limit") {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error("--limit must be an integer from 1 to 1000");
      flags.limit = n;
    } else rest.push(a);
  }
  return { flags, rest };
}

class AdminError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

async function call(ctx: AdminContext, method: string, path: string, body?: unknown): Promise<any> {
  const f = ctx.fetch ?? fetch;
  let res: Response;
  try {
    res = await f(ctx.baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${ctx.token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new AdminError(`Cannot reach the gateway's control API at ${ctx.baseUrl}: ${(e as Error).message}. Is the gateway running? Check --api-host/--api-port.`, EXIT.unreachable);
  }
  const text = await res.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: { code: "bad_response", message: text.slice(0, 200) } };
  }
  if (res.status === 401) throw new AdminError("The gateway refused the API token: pass --api-token or run where the data directory (--data) holds api.token.", EXIT.unauthorized);
  if (!res.ok) throw new AdminError(`${data?.error?.message ?? `HTTP ${res.status}`} (${data?.error?.code ?? res.status})`, EXIT.refused);
  return data;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The device UUID for `arg`: a UUID as is, else the device with that hardware id (looked up). */
async function deviceIdOf(ctx: AdminContext, arg: string | undefined, usage: string): Promise<string> {
  if (!arg) throw new AdminError(`Missing the device.\n${usage}`, EXIT.usage);
  if (UUID_RE.test(arg)) return arg.toLowerCase();
  const page: { devices: { id: string }[] } = await call(ctx, "GET", `/api/v1/devices?${new URLSearchParams({ hardware_id: arg, limit: "1" })}`);
  if (!page.devices[0]) throw new AdminError(`No device with hardware id ${JSON.stringify(arg)} (not_found)`, EXIT.refused);
  return page.devices[0].id;
}

/** Prints an outbox summary. */
function printOutbox(ctx: AdminContext, o: OutboxSummary, note: string): void {
  if (ctx.json) return ctx.out(JSON.stringify(o));
  if (note) ctx.out(note);
  const oldest = o.oldest ? `, oldest ${o.oldest} (${o.oldest_age_s} s ago)` : "";
  ctx.out(`outbox: ${o.rows} message(s), ${o.bytes} bytes${oldest}, ${o.devices_total} device(s)`);
  if (o.devices.length) ctx.out(table([["DEVICE", "MESSAGES", "BYTES", "OLDEST"], ...o.devices.map((d) => [d.device_id, String(d.rows), String(d.bytes), d.oldest])]));
}

function needId(id: string | undefined, usage: string): string {
  if (!id || !UUID_RE.test(id)) throw new AdminError(`${id ? `"${id}" is not a device UUID.` : "Missing the device UUID."}\n${usage}`, EXIT.usage);
  return id.toLowerCase();
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((v, c) => v.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n");
}

/** Runs admin command `command` with positional `args`; returns the exit code. */
export async function runAdmin(command: string, args: string[], flags: AdminFlags, ctx: AdminContext): Promise<number> {
  try {
    const usage = ADMIN_USAGE[command]!;
    switch (command) {
      case "devices": {
        if (args.length) throw new AdminError(`Unexpected argument "${args[0]}".\n${usage}`, EXIT.usage);
        const all: any[] = [];
        let cursor: string | null = null;
        do {
          const q = new URLSearchParams({ limit: String(Math.min(flags.limit ?? 1000, 1000)) });
          if (cursor) q.set("cursor", cursor);
          if (flags.connected !== undefined) q.set("connected", String(flags.connected));
          if (flags.hardwareId) q.set("hardware_id", flags.hardwareId);
          if (flags.search) q.set("q", flags.search);
          const page: { devices: any[]; next_cursor: string | null } = await call(ctx, "GET", `/api/v1/devices?${q}`);
          all.push(...page.devices);
          cursor = flags.limit !== undefined && all.length >= flags.limit ? null : page.next_cursor;
        } while (cursor);
        const shown = flags.limit !== undefined ? all.slice(0, flags.limit) : all;
        if (ctx.json) ctx.out(JSON.stringify(shown));
        else {
          ctx.out(table([["ID", "HARDWARE ID", "CONNECTED", "WORKER", "LAST SEEN", "LAST CLOSE"], ...shown.map((d) => [d.id, d.hardware_id ?? "-", d.connected ? "yes" : "no", d.worker ?? "-", d.last_seen, d.last_close_reason ?? "-"].map(String))]));
          ctx.out(`${shown.length} device(s)`);
        }
        return EXIT.ok;
      }
      case "device": {
        const id = needId(args[0], usage);
        const d = await call(ctx, "GET", `/api/v1/devices/${id}`);
        if (ctx.json) ctx.out(JSON.stringify(d));
        else for (const [k, v] of Object.entries(d)) ctx.out(`${k.padEnd(18)} ${typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)}`);
        return EXIT.ok;
      }
      case "send": {
        const id = needId(args[0], usage);
        const topic = args[1];
        const raw = args[2];
        if (!topic || raw === undefined || args.length > 3) throw new AdminError(`Expected <device-uuid> <topic> <json-body>.\n${usage}`, EXIT.usage);
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch {
          throw new AdminError(`The body is not valid JSON: ${raw.slice(0, 60)}\n${usage}`, EXIT.usage);
        }
        const wait = flags.waitAck ? `?wait=ack${flags.timeoutMs !== undefined ? `&timeout_ms=${flags.timeoutMs}` : ""}` : "";
        const r = await call(ctx, "POST", `/api/v1/devices/${id}/commands${wait}`, { topic, body });
        if (ctx.json) ctx.out(JSON.stringify(r));
        else ctx.out(flags.waitAck ? `command ${r.id} acked by the device` : `command ${r.id} queued`);
        return EXIT.ok;
      }
      case "kick": {
        const id = needId(args[0], usage);
        const r = await call(ctx, "DELETE", `/api/v1/devices/${id}/connection`);
        ctx.out(ctx.json ? JSON.stringify(r) : `device ${id} disconnected`);
        return EXIT.ok;
      }
      case "status": {
        if (args.length) throw new AdminError(`Unexpected argument "${args[0]}".\n${usage}`, EXIT.usage);
        const [s, workers] = await Promise.all([call(ctx, "GET", "/api/v1/stats"), call(ctx, "GET", "/api/v1/workers")]);
        const list: any[] = Array.isArray(workers) ? workers : (workers.workers ?? []);
        if (ctx.json) ctx.out(JSON.stringify({ ...s, worker_list: list }));
        else {
          ctx.out(`gateway ${s.gateway} (owsla ${s.version}), up ${s.uptime_s} s`);
          ctx.out(`connections ${s.connections}, devices known ${s.devices_known}, welcomes ${s.welcomes_total}`);
          ctx.out(`messages up ${s.messages_up_total}, down ${s.messages_down_total}; outbox ${s.outbox_depth}, inbox ${s.inbox_depth}`);
          ctx.out(`broker links up ${s.broker.up}/${s.broker.total}, reconnects ${s.broker.reconnects}`);
          ctx.out(`workers up ${s.workers.up}/${s.workers.total}, restarts ${s.workers.restarts}`);
          ctx.out(table([["WORKER", "PID", "UP", "READY", "CONNECTIONS", "BROKER", "RESTARTS"], ...list.map((w: any) => [w.id, w.pid, w.up ? "yes" : "no", w.ready ? "yes" : "no", w.connections ?? "?", w.broker ?? "?", w.restarts].map(String))]));
        }
        return EXIT.ok;
      }
      case "revoke": {
        if (args.length > 1) throw new AdminError(`Unexpected argument "${args[1]}".\n${usage}`, EXIT.usage);
        const id = await deviceIdOf(ctx, args[0], usage);
        const d = await call(ctx, "POST", `/api/v1/devices/${id}/revoke`);
        ctx.out(ctx.json ? JSON.stringify(d) : `device ${id}${d.hardware_id ? ` (${d.hardware_id})` : ""} revoked; its tokens no longer work`);
        return EXIT.ok;
      }
      case "register": {
        if (!args[0] || args.length > 1) throw new AdminError(`Expected one <hardware-id>.\n${usage}`, EXIT.usage);
        const body = { hardware_id: args[0], ...(flags.room ? { room: flags.room } : {}), ...(flags.kind ? { kind: flags.kind } : {}), ...(flags.label ? { label: flags.label } : {}) };
        const r = await call(ctx, "POST", "/api/v1/devices", body);
        if (ctx.json) ctx.out(JSON.stringify(r));
        else {
          ctx.out(`device ${r.device.id} (${r.device.hardware_id})${r.device.revoked ? " is revoked" : ""}`);
          ctx.out(r.token === null ? `no token: the device is revoked; re-issue one with POST /api/v1/devices/${r.device.id}/token` : `token ${r.token}`);
        }
        return EXIT.ok;
      }
      case "outbox": {
        if (args.length) throw new AdminError(`Unexpected argument "${args[0]}".\n${usage}`, EXIT.usage);
        const limit = flags.limit ?? 20;
        try {
          printOutbox(ctx, await call(ctx, "GET", `/api/v1/outbox?limit=${limit}`), "");
        } catch (e) {
          const local = e instanceof AdminError && e.code === EXIT.unreachable ? ctx.localOutbox?.(limit) : undefined;
          if (!local) throw e;
          printOutbox(ctx, local.summary, `The gateway's API does not answer; read from ${local.source}.`);
        }
        return EXIT.ok;
      }
      default:
        ctx.err(`Unknown admin command "${command}".`);
        return EXIT.usage;
    }
  } catch (e) {
    if (e instanceof AdminError) {
      ctx.err(e.message);
      return e.code;
    }
    throw e;
  }
}
