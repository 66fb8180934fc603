/**
 * The last line of defence of a gateway process (supervisor or worker) against errors nothing
 * else caught.
 */
import type { Logger } from "./logger.ts";
import { BurstLog } from "./burst-log.ts";

/**
 * Keeps a stray rejected promise (e.g. amqp-client's EPIPE on a socket that just died) from
 * killing the process; logs it instead. A thrown exception still ends the process, so the
 * supervisor (or systemd) restarts it from a known state.
 */
export function guardProcess(log: Logger): void {
  // A dropped broker connection can reject thousands of pending promises at once: a few lines
  // per kind of error every 10 s, then a count (`left_out`).
  const rejections = new BurstLog((msg, fields) => log.warn(msg, fields), { windowMs: 10_000, burst: 5 });
  process.on("unhandledRejection", (reason) => {
    const msg = reason instanceof Error ? reason.message : String(reason);
    const stack = reason instanceof Error ? reason.stack?.split("\n").slice(1, 4).join(" | ") : undefined;
    rejections.note(msg.slice(0, 80), "Ignored an unhandled promise rejection", { err: msg, ...(stack ? { stack } : {}) });
  });
  process.on("uncaughtException", (err) => {
    log.error("Uncaught exception; exiting so the process is restarted cleanly", { err: err.message, stack: err.stack?.split("\n").slice(0, 6).join(" | ") });
    process.exit(70);
  });
}
