/**
 * A reload (SIGHUP, `systemctl reload owsla`) in the supervisor: reads the configuration again,
 * keeps every setting that needs a restart, applies the live ones (see config/live.ts) to its
 * own logger and tells every worker with a {@link ReloadMessage}. A configuration that no longer
 * loads, or TLS files that cannot be read, change nothing: the gateway keeps running as it was
 * and the log says why.
 *
 * @module
 */
import type { Config } from "../config/types.ts";
import type { Level, RootLogger } from "../log/logger.ts";
import { applyLive, configChanges, tlsToggled } from "../config/live.ts";
import type { TlsFiles } from "../listener/listener.ts";

/** supervisor → worker: apply these live settings. */
export interface ReloadMessage {
  t: "reload";
  level: Level;
  maxConnections: number;
  helloTimeoutMs: number;
  /** The device listener's TLS files, read again (absent when TLS is off). */
  tls?: TlsFiles;
}

/** Whether `m` is a {@link ReloadMessage}. */
export function isReload(m: unknown): m is ReloadMessage {
  return typeof m === "object" && m !== null && (m as { t?: unknown }).t === "reload";
}

/** What {@link reloadConfig} needs. */
export interface ReloadDeps {
  /** Loads the configuration again (config file, environment, the original flags); throws on an invalid one. */
  load: () => Config;
  /** Reads the device TLS files a configuration names (throws when unreadable). */
  readTls: (config: Config) => TlsFiles | undefined;
  /** The supervisor's root logger. */
  log: RootLogger;
  /** Sends a message to every running worker. */
  broadcast: (m: ReloadMessage) => void;
}

/** Reloads `running`; returns the configuration now in force (`running` itself when the reload was refused). */
export function reloadConfig(running: Config, deps: ReloadDeps): Config {
  const { log } = deps;
  let next: Config;
  let tls: TlsFiles | undefined;
  try {
    next = deps.load();
    tls = tlsToggled(running, next) ? undefined : deps.readTls(next);
  } catch (err) {
    log.error(`Reload refused, nothing changed: ${(err as Error).message}`);
    return running;
  }
  const changes = configChanges(running, next);
  const needRestart = changes.filter((c) => !c.live || (tlsToggled(running, next) && c.name.startsWith("device.tls_"))).map((c) => c.name);
  if (needRestart.length > 0) {
    log.warn(`Reload: ${needRestart.join(", ")} changed but need${needRestart.length === 1 ? "s" : ""} a restart (systemctl restart owsla); the running values stay until then`);
  }
  const merged = applyLive(running, next);
  log.setLevel(merged.log.level);
  deps.broadcast({
    t: "reload",
    level: merged.log.level,
    maxConnections: merged.device.max_connections,
    helloTimeoutMs: merged.device.hello_timeout_ms,
    ...(tls ? { tls } : {}),
  });
  const applied = changes.filter((c) => c.live && !needRestart.includes(c.name)).map((c) => c.name);
  log.info("Reloaded settings", { changed: applied, tls_files_reread: tls !== undefined });
  return merged;
}
