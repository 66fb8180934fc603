/**
 * Control API hardening and secrets in logs (issue 7): loopback by default, bearer token
 * required, 429 after 10 wrong tokens from one address, bodies capped (413), and no secret in
 * any log line of two runs on one data dir with traffic (site secret, API token except its
 * one first-start notice, device tokens, broker passwords). The same scenario runs from
 * `bun scripts/hostile/api-hardening.ts`.
 */
import { beforeAll, describe, test } from "bun:test";
import { run } from "../scripts/hostile/api-hardening.ts";
import { expectCheck, printResult } from "../scripts/hostile/lib/expect-checks.ts";

let result: Awaited<ReturnType<typeof run>> | null = null;

describe("control API under hostile use", () => {
  beforeAll(async () => {
    result = await run({ workers: 2, stream_mb: 8, devices: 6 });
    printResult(result);
  }, 90_000);

  test("listens on loopback by default, in the supervisor", () => {
    expectCheck(result, "api_on_loopback");
    expectCheck(result, "api_owned_by_supervisor");
  });
  test("every route but the probes (/healthz, /readyz) and / needs the bearer token", () => {
    expectCheck(result, "bearer_required");
    expectCheck(result, "bearer_accepted");
  });
  test("10 wrong tokens from one address get its further wrong tokens 429; the right token is never limited", () => {
    expectCheck(result, "wrong_tokens_refused");
    expectCheck(result, "rate_limited_after_10");
    expectCheck(result, "right_token_never_limited");
    expectCheck(result, "other_address_unaffected");
  });
  test("request bodies are capped at 64 KiB (413), also when streamed, without buffering them", () => {
    expectCheck(result, "body_cap_content_length");
    expectCheck(result, "body_under_cap_accepted");
    expectCheck(result, "body_cap_chunked");
    expectCheck(result, "body_cap_memory");
  });
  test("the API token is printed once, on first start, and kept across a restart", () => {
    expectCheck(result, "token_notice_once");
    expectCheck(result, "token_kept_across_restart");
  });
  test("no secret appears in any log line (site secret, API token, device tokens, broker passwords)", () => {
    expectCheck(result, "broker_failures_were_logged");
    expectCheck(result, "no_secret_in_logs");
  });
});
