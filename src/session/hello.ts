/**
 * Hello: authentication and identity for a new connection. Decides which device UUID a
 * `hello` frame gets, or why it is refused; the connection (frame state machine) then sends
 * `welcome` or the error. Token checks need no lookup (HMAC under the site secret, floors held
 * in memory); only anonymous identities touch the site database.
 */
import type { HelloFrame } from "../protocol/frames.ts";
import { deviceUuid, freshDeviceUuid } from "../identity/identity.ts";
import { authenticateHello } from "../auth/hello-auth.ts";
import type { SessionContext } from "./context.ts";
import type { CloseReason } from "./close-reasons.ts";

/** Retry hint sent with `server_busy`/`rate_limited`, in ms. */
export const RETRY_AFTER_MS = 1000;

/** What a hello leads to. */
export type HelloOutcome =
  | { ok: true; deviceId: string; hardwareId: string | null }
  | { ok: false; reason: CloseReason; code: "unauthorized" | "rate_limited" | "server_busy"; message: string; retryAfterMs?: number };

/**
 * Counts a failed hello against the source address (bans brute force; never against the
 * hardware id, so nobody can lock a device out without its credentials).
 * Resolves once the other workers have been told, so the device's next attempt is counted
 * with this one wherever it lands.
 */
async function recordAuthFailure(ctx: SessionContext, remote: string, hardwareId: string | undefined): Promise<void> {
  const { bans } = ctx.auth;
  const before = bans.bansTotal;
  const keys = [`ip:${remote}`];
  for (const k of keys) bans.fail(k);
  const relay = ctx.directory.authFailed(keys);
  const banned = bans.bansTotal - before;
  if (banned > 0) ctx.log.warn("Banned after repeated failed logins", { remote, hardware_id: hardwareId });
  if (!(await relay) && banned > 0) ctx.metrics.inc("owsla_auth_bans_total", undefined, banned);
}

/**
 * Checks a hello's credentials (rules in src/auth/hello-auth.ts) and resolves the device's
 * identity. `certNames`: names of the connection's verified TLS client certificate, or null.
 */
export async function authenticate(f: HelloFrame, remote: string, ctx: SessionContext, certNames: readonly string[] | null = null): Promise<HelloOutcome> {
  const verdict = authenticateHello(ctx.auth, ctx.siteNamespace, f, certNames);
  if (!verdict.ok) {
    ctx.metrics.inc("owsla_auth_failures_total");
    ctx.refusals.note("hello", remote, "Device refused at hello", { hardware_id: f.device, why: verdict.message });
    await recordAuthFailure(ctx, remote, f.device);
    return { ok: false, reason: "unauthorized", code: "unauthorized", message: verdict.message };
  }
  if (f.device) return { ok: true, deviceId: deviceUuid(ctx.siteNamespace, f.device), hardwareId: f.device };
  let id: string;
  if (f.resume) {
    // Anonymous identities are random (v4); any other UUID is a hardware device's (v5) and
    // must be claimed with `device`, whether or not this gateway has recorded it yet.
    const kind = f.resume[14] === "4" ? ctx.directory.anonymousKnown(f.resume) : "hardware";
    if (kind === "hardware") {
      ctx.metrics.inc("owsla_auth_failures_total");
      ctx.refusals.note("hello", remote, "Device refused at hello", { resume: f.resume, why: "resume names a device with a hardware id" });
      await recordAuthFailure(ctx, remote, undefined);
      return { ok: false, reason: "unauthorized", code: "unauthorized", message: `Unauthorized: ${f.resume} belongs to a device with a hardware id; send hello with \`device\` instead of \`resume\`` };
    }
    id = f.resume;
    if (kind === "anonymous") return { ok: true, deviceId: id, hardwareId: null };
  } else {
    id = freshDeviceUuid();
  }
  // An anonymous identity must survive a crash before the device learns it.
  try {
    await ctx.directory.createAnonymous(id);
  } catch (err) {
    ctx.log.error("Cannot record a new anonymous device identity; refusing the device until the site database takes writes again", { err: err as Error });
    return { ok: false, reason: "server_busy", code: "server_busy", message: "Gateway cannot store device identity; retry later", retryAfterMs: RETRY_AFTER_MS };
  }
  return { ok: true, deviceId: id, hardwareId: null };
}
