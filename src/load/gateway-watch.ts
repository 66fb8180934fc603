/**
 * Finds the gateway's processes (supervisor and workers) and sums their resident memory.
 * Given `--gateway-pid`, that pid and its descendants; given `--data`, the processes holding
 * `<data>/owsla.db` open (found once, at start), then the tree under their root, so a worker
 * restarted meanwhile is still counted.
 */
import { join } from "node:path";
import { pidsHoldingFile, processTree, totalRss } from "./procfs.ts";

/** Watches the resident memory of one gateway. */
export class GatewayWatch {
  private constructor(private readonly root: number) {}

  /** A watch for `--gateway-pid`, else `--data`; null when neither is given or nothing was found. */
  static find(gatewayPid: number | null, dataDir: string | null): GatewayWatch | null {
    if (gatewayPid !== null) return new GatewayWatch(gatewayPid);
    if (dataDir === null) return null;
    const holders = pidsHoldingFile(join(dataDir, "owsla.db"));
    if (holders.length === 0) return null;
    // The root is the holder whose process tree contains every other holder (the supervisor).
    const root = holders.find((p) => {
      const tree = processTree(p);
      return holders.every((h) => tree.includes(h));
    });
    return new GatewayWatch(root ?? Math.min(...holders));
  }

  /** The supervisor pid and every descendant that exists now. */
  pids(): number[] {
    return processTree(this.root);
  }

  /** Total VmRSS of the gateway's processes, in bytes (0 when it is gone). */
  rss(): number {
    return totalRss(this.pids());
  }
}
