/**
 * Persistent MQTT sessions (clean start 0 with a session expiry, or 3.1.1 clean session 0):
 * what the gateway keeps of a session between connections — its subscriptions and the
 * commands written to it without PUBACK (re-sent with DUP and their packet id). Commands
 * themselves never live here: they wait in the command store like for any offline device.
 *
 * Sessions are kept in the memory of the worker that held the connection; a reconnect that
 * lands on another worker, or after a restart, finds none (CONNACK Session Present 0) and the
 * client subscribes again, as MQTT requires of it. Nothing queued is lost either way.
 */

/**
 * What survives of a session between connections. Kept small: every connected device has one
 * (a Map of its two filters cost about 290 bytes of heap, an array about 50).
 */
export interface MqttSession {
  /**
   * The filters subscribed to, each once, at most `MAX_SUBSCRIPTIONS`. Their granted QoS is not
   * kept: commands always go out at QoS 1 (docs/mqtt.md, decision 8).
   */
  subscriptions: string[];
  /** Command id -> packet id of commands written and not acked (null until the first command). */
  unacked: Map<string, number> | null;
}

/** A new, empty session. */
export function emptySession(): MqttSession {
  return { subscriptions: [], unacked: null };
}

/** How often expired sessions are dropped, in ms. */
const SWEEP_MS = 60_000;

/** One worker's persistent sessions, by device id. */
export class SessionStore {
  private readonly byDevice = new Map<string, { session: MqttSession; expiresAt: number }>();
  private lastSweep = Date.now();

  /** Sessions kept. */
  get size(): number {
    return this.byDevice.size;
  }

  /** Removes and returns the session of `deviceId` (null when none or expired). */
  take(deviceId: string, now = Date.now()): MqttSession | null {
    this.sweep(now);
    const kept = this.byDevice.get(deviceId);
    if (!kept) return null;
    this.byDevice.delete(deviceId);
    return kept.expiresAt > now ? kept.session : null;
  }

  /** Keeps `session` of `deviceId` for `expirySeconds`. */
  keep(deviceId: string, session: MqttSession, expirySeconds: number, now = Date.now()): void {
    if (expirySeconds <= 0) return;
    this.byDevice.set(deviceId, { session, expiresAt: now + expirySeconds * 1000 });
    this.sweep(now);
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_MS) return;
    this.lastSweep = now;
    for (const [d, s] of this.byDevice) if (s.expiresAt <= now) this.byDevice.delete(d);
  }
}
