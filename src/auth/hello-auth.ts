/**
 * Whether a device's hello may claim the identity it names, in each `auth.mode`:
 *
 * - `token`: `device` and a token of the device's current generation (site secret HMAC).
 * - `cert`: `device`, and the verified client certificate names it (CN or a DNS/URI/email SAN).
 * - `none`: anything.
 *
 * The session code calls {@link authenticateHello} and acts on the answer; the rules live here.
 */
import { deviceUuid } from "../identity/identity.ts";
import { tokenGeneration, verifyToken } from "./token.ts";
import { certificateNamesDevice } from "./cert-identity.ts";

/** How devices authenticate. */
export type DeviceAuthMode = "token" | "cert" | "none";

/** What {@link authenticateHello} needs to know. */
export interface HelloAuthSettings {
  mode: DeviceAuthMode;
  /** Site secret that device tokens are HMACs under. */
  secret: Uint8Array;
  /** Device UUID -> current token generation (raised by revocation); absent = 0. */
  tokenFloors: Map<string, number>;
}

/** The identity claims of a hello. */
export interface HelloClaim {
  device?: string;
  token?: string;
}

/** Outcome: ok, or the message of the `unauthorized` error frame (says why and what to do). */
export type HelloAuthResult = { ok: true } | { ok: false; message: string };

const TOKEN_HINT = "ask the installer for a token minted with `owsla token <hardware-id>`";
const CERT_HINT = "connect with a client certificate whose CN or subjectAltName is the hardware id";

/**
 * Decides whether `hello` may claim its identity. `certNames` are the names of the
 * connection's verified client certificate (null without one).
 */
export function authenticateHello(auth: HelloAuthSettings, siteNamespace: string, hello: HelloClaim, certNames: readonly string[] | null): HelloAuthResult {
  const refuse = (why: string, hint: string): HelloAuthResult => ({ ok: false, message: `Unauthorized: ${why}; ${hint}` });
  if (auth.mode === "none") return { ok: true };
  if (auth.mode === "cert") {
    if (!hello.device) return refuse(`hello needs \`device\` (the hardware id) in cert mode`, CERT_HINT);
    if (certNames === null) return refuse("no verified client certificate", CERT_HINT);
    if (!certificateNamesDevice(certNames, hello.device)) return refuse("the client certificate does not name this hardware id", CERT_HINT);
    return { ok: true };
  }
  if (!hello.device) return refuse("hello needs `device` (the hardware id) in token mode", TOKEN_HINT);
  if (!hello.token) return refuse("hello has no `token`", TOKEN_HINT);
  const current = auth.tokenFloors.get(deviceUuid(siteNamespace, hello.device)) ?? 0;
  if (verifyToken(auth.secret, hello.device, hello.token, current)) return { ok: true };
  const claimed = tokenGeneration(hello.token);
  if (claimed >= 0 && claimed < current && verifyToken(auth.secret, hello.device, hello.token, claimed)) {
    return refuse("this token was revoked", "ask the installer for a re-issued one");
  }
  return refuse("token does not match the hardware id", TOKEN_HINT);
}
