/**
 * Site-wide revocations on this gateway: the glue between the broker's site events
 * (`src/bridge/site-events.ts`) and the local device records and workers.
 *
 * This is the only place that knows both sides: receive -> store durably in the supervisor's
 * site database -> tell the workers -> ack; revoke locally -> publish.
 */
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import type { Config } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { linkOptions } from "../bridge/link-config.ts";
import { topology } from "../bridge/topology.ts";
import { SiteEvents, type SiteRevocation } from "../bridge/site-events.ts";

/**
 * Records that `r.deviceId` must present generation `r.generation` from now on: raises its
 * token generation (never lowers it) and marks it revoked, creating the row when this gateway
 * has never seen the device (so a later hello with an old token is refused here too). Returns
 * whether anything changed.
 */
export function storeRevocation(db: Database, r: SiteRevocation, now = Date.now()): boolean {
  const upsert = (hw: string | null) =>
    db
      .query(
        `INSERT INTO devices (id, hardware_id, first_seen, last_seen, connected, revoked, token_gen) VALUES (?, ?, ?, ?, 0, 1, ?)
         ON CONFLICT(id) DO UPDATE SET revoked = 1, token_gen = excluded.token_gen WHERE excluded.token_gen > devices.token_gen`,
      )
      .run(r.deviceId, hw, now, now, r.generation).changes > 0;
  try {
    return upsert(r.hardwareId);
  } catch (e) {
    // Another row holds that hardware id (a different site namespace): the id is what counts.
    if (/UNIQUE/i.test((e as Error).message)) return upsert(null);
    throw e;
  }
}

/** What the supervisor gives the site revocations. */
export interface SiteRevocationDeps {
  config: Config;
  db: Database;
  /** Tells every running worker the device's new generation (closes its connection). */
  tellWorkers(deviceId: string, generation: number): Promise<unknown>;
  log: Logger;
}

/** Starts the site events of this gateway; `publish` sends a local revocation to the site. */
export function startSiteRevocations(d: SiteRevocationDeps): { publish(deviceId: string, generation: number, hardwareId: string | null): void; events: SiteEvents } {
  const { config, log } = d;
  const events = new SiteEvents({
    link: linkOptions(config, topology(config.broker.prefix, config.gateway.id), `owsla ${config.gateway.id} site events`, log),
    prefix: config.broker.prefix,
    gatewayId: config.gateway.id,
    queueType: config.broker.queue_type,
    pendingFile: join(config.store.dir, "site-pending.json"),
    log,
    async onRevoked(r) {
      const changed = storeRevocation(d.db, r);
      // Tell the workers even when nothing changed: a worker may have started from an older row.
      await d.tellWorkers(r.deviceId, r.generation);
      if (changed) log.info("Device revoked by another gateway of the site", { device: r.deviceId, generation: r.generation, origin: r.origin });
    },
  });
  events.start();
  return {
    events,
    publish(deviceId, generation, hardwareId) {
      const r: SiteRevocation = { deviceId, generation, hardwareId, origin: config.gateway.id, at: Date.now() };
      events.publishRevocation(r).then(
        (how) => log.info(how === "sent" ? "Revocation sent to the site's gateways" : "Revocation kept; sent to the site's gateways when the broker is back", { device: deviceId, generation }),
        (err: Error) => log.error("Cannot send a revocation to the site's gateways; revoke the device again", { device: deviceId, err }),
      );
    },
  };
}
