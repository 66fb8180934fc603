/**
 * Settings that a reload (SIGHUP, `systemctl reload owsla`) applies to the running gateway
 * without dropping devices. Everything else in the configuration needs a restart; a reload
 * that finds such a key changed says so and keeps the running value.
 *
 * - `log.level`: the supervisor and every worker, from the next line on.
 * - `device.tls_cert`, `device.tls_key`, `device.tls_client_ca`, `device.tls_crl`,
 *   `device.tls_min_version`: the files are read again (a renewed CRL at the same path too) and
 *   each worker opens a new listening socket with them on the same port (SO_REUSEPORT), then
 *   closes the old one. Connected devices keep their TLS sessions; new handshakes use the new
 *   certificate. Turning TLS on or off needs a restart.
 * - `device.max_connections`: checked at each new connection.
 * - `device.hello_timeout_ms`: applies to connections from now on.
 *
 * @module
 */
import type { Config } from "./types.ts";

/** The keys a reload applies live, as `section.key`. */
export const LIVE_KEYS = [
  "log.level",
  "device.tls_cert",
  "device.tls_key",
  "device.tls_client_ca",
  "device.tls_crl",
  "device.tls_min_version",
  "device.max_connections",
  "device.hello_timeout_ms",
] as const;

/** One changed key: dotted name, and whether a reload applies it. */
export interface ConfigChange {
  name: string;
  live: boolean;
}

/**
 * Keys whose values differ between `before` and `after`, in section order. (A renewed
 * certificate at an unchanged path is no change here; a reload reads the TLS files anyway.)
 */
export function configChanges(before: Config, after: Config): ConfigChange[] {
  const changes: ConfigChange[] = [];
  for (const section of Object.keys(after) as (keyof Config)[]) {
    const a = before[section] as unknown as Record<string, unknown>;
    const b = after[section] as unknown as Record<string, unknown>;
    for (const key of Object.keys(b)) {
      if (a[key] === b[key]) continue;
      const name = `${section}.${key}`;
      changes.push({ name, live: (LIVE_KEYS as readonly string[]).includes(name) });
    }
  }
  return changes;
}

/** Whether TLS is on (a certificate configured) in one config and off in the other. */
export function tlsToggled(before: Config, after: Config): boolean {
  return Boolean(before.device.tls_cert) !== Boolean(after.device.tls_cert);
}

/** The running configuration with the live keys taken from `next` and every other key kept. */
export function applyLive(running: Config, next: Config): Config {
  const merged = structuredClone(running);
  merged.log.level = next.log.level;
  merged.device.max_connections = next.device.max_connections;
  merged.device.hello_timeout_ms = next.device.hello_timeout_ms;
  if (!tlsToggled(running, next)) {
    merged.device.tls_cert = next.device.tls_cert;
    merged.device.tls_key = next.device.tls_key;
    merged.device.tls_client_ca = next.device.tls_client_ca;
    merged.device.tls_crl = next.device.tls_crl;
    merged.device.tls_min_version = next.device.tls_min_version;
  }
  return merged;
}

/** Lines for `owsla serve --help`: what a reload applies. */
export function liveHelp(): string[] {
  return [
    "Reload (SIGHUP; `systemctl reload owsla`): the config file and OWSLA_* variables are read",
    "again and these settings change without dropping devices:",
    `  ${LIVE_KEYS.join(", ")}`,
    "(the TLS files are read again even when their paths are unchanged, for renewed certificates).",
    "Every other setting needs a restart; a reload that finds one changed logs it and keeps the",
    "running value. A reload with an invalid config changes nothing and says why.",
  ];
}
