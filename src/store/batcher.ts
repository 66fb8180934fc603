/**
 * Group commit: many small writes from hot paths share one SQLite transaction.
 *
 * Each `run(op)` returns a promise that settles once the transaction holding `op` has
 * committed (or failed). Ops are flushed after `delayMs`, or at once when `maxOps` are queued.
 * A failed transaction (disk full, read-only, locked too long) rejects every op in it: callers
 * never report success for data that is not stored.
 */
import type { Database } from "bun:sqlite";

/** After a failed commit, writes are refused without trying for this long, in ms. */
export const FAIL_FAST_MS = 500;

/** Options for {@link Batcher}. */
export interface BatcherOptions {
  /** Longest wait before a queued op is committed, in ms. Default 2. */
  delayMs?: number;
  /** Ops per transaction; reaching it flushes at once. Default 500. */
  maxOps?: number;
  /** Called with the error when a transaction fails. */
  onError?: (err: Error) => void;
  /** Called after a successful commit. */
  onCommit?: () => void;
}

interface Pending {
  op: () => void;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Queues write operations and commits them in batches. */
export class Batcher {
  private queue: Pending[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly delayMs: number;
  private readonly maxOps: number;
  /** Last commit failure, cleared by the next successful commit. */
  lastError: Error | null = null;
  private failedAt = 0;

  constructor(
    private readonly db: Database,
    private readonly opts: BatcherOptions = {},
  ) {
    this.delayMs = opts.delayMs ?? 2;
    this.maxOps = opts.maxOps ?? 500;
  }

  /** Number of ops waiting to be committed. */
  get pending(): number {
    return this.queue.length;
  }

  /** Queues `op` (synchronous statements on the db) and resolves once committed. */
  run(op: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      if (this.queue.length >= this.maxOps) this.flush();
      else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.delayMs);
    });
  }

  /** Commits everything queued now. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxOps);
      // Right after a failure (disk full, read-only), fail fast instead of retrying every batch:
      // each attempt may wait for locks and would keep the event loop busy.
      if (this.lastError && performance.now() - this.failedAt < FAIL_FAST_MS) {
        for (const p of batch) p.reject(this.lastError);
        continue;
      }
      try {
        this.db.transaction(() => {
          for (const p of batch) p.op();
        }).immediate();
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        // A failed COMMIT may leave the transaction open (and the write lock held).
        try {
          if (this.db.inTransaction) this.db.exec("ROLLBACK");
        } catch {
          // Nothing more to do; the next attempt reports the state.
        }
        this.lastError = err;
        this.failedAt = performance.now();
        this.opts.onError?.(err);
        for (const p of batch) p.reject(err);
        continue;
      }
      this.lastError = null;
      this.opts.onCommit?.();
      for (const p of batch) p.resolve();
    }
  }
}
