/**
 * The listener's side of connection-flood drops: builds a {@link FloodGuard} over the kernel
 * SYN filter of the listening socket, logs and counts each drop, and turns any failure of the
 * filter into one error line, after which floods are refused in user space only.
 */
import type { TCPSocketListener } from "bun";
import type { SessionContext } from "../session/context.ts";
import { FloodGuard } from "./flood-guard.ts";
import { openSynFilter } from "./syn-filter.ts";
import type { ListenerOptions } from "./listener.ts";

/** The flood guard's face to the listener: counts refusals, ends drops, survives a re-listen. */
export interface ListenerFloodGuard {
  refused(ip: string): void;
  expire(): void;
  reinstall(): void;
}

/** The listening socket's descriptor (Bun has it on the listener, missing from its types). */
function listenerFd(server: TCPSocketListener<unknown> | null): number | null {
  const fd = (server as unknown as { fd?: unknown } | null)?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : null;
}

/**
 * Sets up kernel drops for flooding addresses ({@link FloodGuard}), or null when they are off
 * or unavailable (said once in the log; floods are then refused in user space only).
 */
export function floodGuard(opts: Pick<ListenerOptions, "acceptRatePerIp" | "floodThreshold" | "floodBlockMs" | "metricPrefix">, server: () => TCPSocketListener<unknown> | null, ctx: SessionContext): ListenerFloodGuard | null {
  const { log, metrics } = ctx;
  if (opts.acceptRatePerIp <= 0 || opts.floodThreshold <= 0 || opts.floodBlockMs <= 0) return null;
  const filter = openSynFilter();
  if (typeof filter === "string") {
    log.warn("Connection floods will be refused by the worker only, not dropped by the kernel", { why: filter });
    return null;
  }
  const guard = new FloodGuard(opts.floodThreshold, opts.floodBlockMs, (sources) => {
    const fd = listenerFd(server());
    if (fd !== null) filter.apply(fd, sources);
  });
  metrics.gauge(`${opts.metricPrefix ?? "owsla_"}flood_dropped_addresses`, () => guard.droppedCount);
  let broken = false;
  const attempt = (what: string, f: () => void) => {
    if (broken) return;
    try {
      f();
    } catch (e) {
      broken = true;
      log.error(`Cannot ${what}; connection floods are refused by the worker only from now on`, { err: e as Error });
    }
  };
  return {
    refused(ip) {
      attempt("drop a flooding address in the kernel", () => {
        if (!guard.refused(ip)) return;
        metrics.inc("owsla_flood_drops_total");
        log.warn(`Connection flood from ${ip}: the kernel drops its new connections for ${opts.floodBlockMs / 1000} s`, {
          refused_within_1s: opts.floodThreshold,
        });
      });
    },
    expire() {
      attempt("end a kernel drop", () => {
        for (const ip of guard.expire()) log.info(`Connection flood from ${ip}: accepting its connections again`);
      });
    },
    reinstall() {
      attempt("drop flooding addresses on the new listening socket", () => guard.install());
    },
  };
}
