/**
 * Huge frames (issue 7): 14 streamers push 10 MiB each without a newline (the full-size run,
 * `bun scripts/hostile/huge-frames.ts`, pushes 100 MiB each). Every connection must be closed
 * with frame_too_large, and the workers' memory must grow by less than 20 MiB.
 */
import { beforeAll, describe, test } from "bun:test";
import { run } from "../scripts/hostile/huge-frames.ts";
import { expectCheck, printResult } from "../scripts/hostile/lib/expect-checks.ts";

let result: Awaited<ReturnType<typeof run>> | null = null;

describe("streams without a newline", () => {
  beforeAll(async () => {
    result = await run({ sockets: 14, mb: 10, max_growth_mb: 20, chunk_kb: 256, workers: 2, max_frame_bytes: 65536, timeout_s: 60 });
    printResult(result);
  }, 90_000);

  test("every streamer pushed its share", () => expectCheck(result, "all_streamed"));
  test("every connection is refused with frame_too_large", () => expectCheck(result, "all_frame_too_large"));
  test("every connection is closed by the gateway", () => expectCheck(result, "all_closed"));
  test("workers' memory grows by less than 20 MiB", () => expectCheck(result, "rss_growth"));
  test("no worker crashed and nothing crashed in the logs", () => {
    expectCheck(result, "workers_unchanged");
    expectCheck(result, "no_crash_lines");
  });
  test("a valid device is served afterwards", () => expectCheck(result, "served_after"));
});
