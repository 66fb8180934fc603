/**
 * Hello: authentication and identity for a new connection. Decides which device UUID a
 * `hello` frame gets, or why it is refused; the connection (frame state machine) then sends
 * `welcome` or the error. Token checks need no lookup (HMAC under the site secret, floors held
 * in memory); only anonymous identities touch the site database.
 */
import type { HelloFrame } from "../protocol/frames.ts";
import { deviceUuid, freshDeviceUuid } from "../identity/identity.ts";
import { verifyToken } from "../auth/token.ts";
import type { SessionContext } from "./context.ts";
import type { CloseReason } from "./close-reasons.ts";

/** Retry hint sent with `server_busy`/`rate_limited`, in ms. */
export const RETRY_AFTER_MS = 1000;

/** What a hello leads to. */
export type HelloOutcome =
  | { ok: true; deviceId: string; hardwareId: string | null }
  | { ok: false; reason: CloseReason; code: "unauthorized" | "rate_limited" | "server_busy"; message: string; retryAfterMs?: number };

/**
 * Counts a failed hello against the source address and the hardware id (bans brute force).
 * Resolves once the other workers have been told, so the device's next attempt is counted
 * with this one wherever it lands.
 */
async function recordAuthFailure(ctx: SessionContext, remote: string, hardwareId: string | undefined): Promise<void> {
  const { bans } = ctx.auth;
  const before = bans.bansTotal;
  const keys = [`ip:${remote}`, ...(hardwareId ? [`hw:${hardwareId}`] : [])];
  for (const k of keys) bans.fail(k);
  const relay = ctx.directory.authFailed(keys);
  const banned = bans.bansTotal - before;
  if (banned > 0) ctx.log.warn("Banned after repeated failed logins", { remote, hardware_id: hardwareId });
  if (!(await relay) && banned > 0) ctx.metrics.inc("owsla_auth_bans_total", undefined, banned);
}

/** Checks a hello's credentials and resolves the device's identity. */
export async function authenticate(f: HelloFrame, remote: string, ctx: SessionContext): Promise<HelloOutcome> {
  if (f.device) {
    const left = ctx.auth.bans.remaining(`hw:${f.device}`);
    if (left > 0) {
      ctx.metrics.inc("owsla_accepts_rejected_total", { reason: "banned_hardware_id" });
      return { ok: false, reason: "unauthorized", code: "rate_limited", message: `Too many failed logins for this hardware id; retry in ${Math.ceil(left / 1000)} s`, retryAfterMs: left };
    }
  }
  if (ctx.auth.mode === "token") {
    const floor = f.device ? (ctx.auth.tokenFloors.get(deviceUuid(ctx.siteNamespace, f.device)) ?? 0) : 0;
    if (!f.device || !f.token || !verifyToken(ctx.auth.secret, f.device, f.token, floor)) {
      ctx.metrics.inc("owsla_auth_failures_total");
      const why = !f.device
        ? "hello needs `device` (the hardware id) in token mode"
        : !f.token
          ? "hello has no `token`"
          : floor > 0 && verifyToken(ctx.auth.secret, f.device, f.token)
            ? "this token was revoked; ask the installer for a re-issued one"
            : "token does not match the hardware id";
      ctx.log.debug("Device refused", { hardware_id: f.device, remote, why });
      await recordAuthFailure(ctx, remote, f.device);
      return { ok: false, reason: "unauthorized", code: "unauthorized", message: `Unauthorized: ${why}; ask the installer for a token minted with \`owsla token <hardware-id>\`` };
    }
  }
  if (f.device) return { ok: true, deviceId: deviceUuid(ctx.siteNamespace, f.device), hardwareId: f.device };
  let id: string;
  if (f.resume) {
    // Anonymous identities are random (v4); any other UUID is a hardware device's (v5) and
    // must be claimed with `device`, whether or not this gateway has recorded it yet.
    const kind = f.resume[14] === "4" ? ctx.directory.anonymousKnown(f.resume) : "hardware";
    if (kind === "hardware") {
      ctx.metrics.inc("owsla_auth_failures_total");
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
