/**
 * Control messages between the supervisor (which serves the control API) and workers, over
 * the supervisor's IPC channels. Requests carry an id; the worker answers with the same id.
 */
import type { MetricsSnapshot } from "../metrics/metrics.ts";
import type { Command } from "../protocol/gateway-messages.ts";

/** Requests a worker understands, with their arguments and results. */
export interface ControlOps {
  /** The worker's metrics and broker link state. */
  stats: { args: Record<string, never>; result: { snapshot: MetricsSnapshot; broker: string; connections: number; store: string } };
  /** Which of `ids` this worker holds, with their connection ids. */
  held: { args: { ids: string[] }; result: [deviceId: string, connId: string, lastTraffic: number][] };
  /** Devices this worker holds with an id after `after`, in id order, at most `limit`. */
  heldPage: { args: { after: string | null; limit: number }; result: [deviceId: string, connId: string, lastTraffic: number][] };
  /** Close a device's connection if this worker holds it. */
  kick: { args: { deviceId: string; reason: "kicked" | "revoked" }; result: boolean };
  /** Raise a device's token floor and disconnect it (revocation). */
  revoke: { args: { deviceId: string; generation: number }; result: boolean };
  /** Store a command (this worker is the device's home) and send it to the device if connected; optionally report its ack. */
  command: { args: { cmd: Command; watchAckMs: number | null }; result: boolean };
}

/** Name of a control operation. */
export type ControlOp = keyof ControlOps;

/** Supervisor -> worker request. */
export interface ControlRequest<K extends ControlOp = ControlOp> {
  t: "ctl";
  id: number;
  op: K;
  args: ControlOps[K]["args"];
}

/** Worker -> supervisor response. */
export interface ControlResponse {
  t: "ctl-res";
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** Worker -> supervisor notice that a watched command was acked by its device. */
export interface AckNotice {
  t: "acked";
  deviceId: string;
  cmdId: string;
}

/** Type guards. */
export const isControlRequest = (m: unknown): m is ControlRequest =>
  typeof m === "object" && m !== null && (m as ControlRequest).t === "ctl" && typeof (m as ControlRequest).id === "number";
export const isControlResponse = (m: unknown): m is ControlResponse =>
  typeof m === "object" && m !== null && (m as ControlResponse).t === "ctl-res";
export const isAckNotice = (m: unknown): m is AckNotice => typeof m === "object" && m !== null && (m as AckNotice).t === "acked";

/** Worker side: answers control requests with `handlers`. */
export async function answerControl(
  req: ControlRequest,
  handlers: { [K in ControlOp]: (args: ControlOps[K]["args"]) => ControlOps[K]["result"] | Promise<ControlOps[K]["result"]> },
  reply: (r: ControlResponse) => void,
): Promise<void> {
  try {
    const fn = handlers[req.op] as (a: unknown) => unknown;
    if (!fn) throw new Error(`Unknown control operation ${String(req.op)}`);
    reply({ t: "ctl-res", id: req.id, ok: true, result: await fn(req.args) });
  } catch (e) {
    reply({ t: "ctl-res", id: req.id, ok: false, error: (e as Error).message });
  }
}

/** Supervisor side: sends requests to workers and matches responses, with a timeout. */
export class ControlClient {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();

  constructor(private readonly send: (workerId: number, m: ControlRequest) => boolean) {}

  /** Asks worker `workerId`; rejects when it is down or does not answer within `timeoutMs`. */
  call<K extends ControlOp>(workerId: number, op: K, args: ControlOps[K]["args"], timeoutMs = 2000): Promise<ControlOps[K]["result"]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`Worker ${workerId} did not answer ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      if (!this.send(workerId, { t: "ctl", id, op, args })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`Worker ${workerId} is not running`));
      }
    });
  }

  /** Feeds a response from a worker. */
  onResponse(r: ControlResponse): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.result);
    else p.reject(new Error(r.error ?? "worker error"));
  }
}
