/**
 * Checks made by `owsla serve` before any worker starts, so that a start-up failure is one
 * clear line and one exit code instead of a crash loop of workers.
 *
 * Workers bind the device port with SO_REUSEPORT, and the kernel lets any process of the same
 * user join such a port: a second gateway (or any program using SO_REUSEPORT) would silently take
 * a share of the devices. Before the workers bind, the supervisor binds the port itself
 * *without* SO_REUSEPORT and releases it: that bind fails whenever anything else holds the port,
 * whatever options it used.
 *
 * @module
 */

/** Exit codes of `owsla serve`. */
export const EXIT = {
  /** Stopped on request (SIGTERM/SIGINT) after a clean drain. */
  ok: 0,
  /** Stopped on its own at run time: crash loop (restart intensity) or an unexpected failure. */
  failed: 1,
  /** Invalid configuration or command line. */
  usage: 2,
  /**
   * Could not start: the device or API port is held by another program or cannot be bound, the
   * TLS files cannot be read, or a worker could not start (then the gateway stops instead of
   * restarting it). Also what a worker exits with when it cannot start.
   */
  unavailable: 3,
} as const;

/**
 * Binds `host:port` without SO_REUSEPORT and releases it. Returns null when that worked (or port
 * is 0, picked by the kernel), else the reason, e.g. `address already in use`.
 */
export function tryExclusiveBind(host: string, port: number): string | null {
  if (port === 0) return null;
  try {
    const s = Bun.listen({ hostname: host, port, socket: { data() {} } });
    s.stop(true);
    return null;
  } catch (e) {
    const err = e as Error & { code?: string };
    return err.code === "EADDRINUSE" ? "address already in use" : (err.code ?? err.message);
  }
}

/** The ports `owsla serve` needs, with the config keys that set them. */
export interface PortNeeds {
  device: { host: string; port: number };
  api: { host: string; port: number };
  /** More device ports (MQTT), each with the config key that sets it. */
  more?: { host: string; port: number; key: string }[];
}

/** One clear sentence per port that cannot be had, in the order device, API; empty when both are free. */
export function unavailablePorts(need: PortNeeds, bind: typeof tryExclusiveBind = tryExclusiveBind): string[] {
  const problems: string[] = [];
  const device = bind(need.device.host, need.device.port);
  if (device) {
    problems.push(
      `Cannot start: device port ${need.device.host}:${need.device.port} is not free (${device}). Another program holds it — ` +
        `possibly another Owsla gateway (see \`ss -ltnp 'sport = :${need.device.port}'\`); stop it or set device.port`,
    );
  }
  const api = bind(need.api.host, need.api.port);
  if (api) {
    problems.push(
      `Cannot start: control API port ${need.api.host}:${need.api.port} is not free (${api}). Another program holds it ` +
        `(see \`ss -ltnp 'sport = :${need.api.port}'\`); stop it or set api.port`,
    );
  }
  for (const m of need.more ?? []) {
    const why = bind(m.host, m.port);
    if (why) {
      problems.push(
        `Cannot start: ${m.key} ${m.host}:${m.port} is not free (${why}). Another program holds it — possibly an MQTT broker ` +
          `(see \`ss -ltnp 'sport = :${m.port}'\`); stop it, set ${m.key}, or turn MQTT off with mqtt.enabled = false`,
      );
    }
  }
  return problems;
}
