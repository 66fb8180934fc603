/**
 * Routes commands to devices held by this process: every command is stored in the inbox
 * (so it survives a crash and is re-sent until acked) and written at once when the device
 * is connected here.
 */
import type { CommandRouter } from "../bridge/consumer.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { DeviceConnection } from "../session/connection.ts";
import type { DeviceStore } from "../store/devices.ts";
import type { Command, Inbox } from "../store/inbox.ts";
import type { Registry } from "./registry.ts";
import type { Cluster } from "./cluster.ts";
import { wallClock } from "../session/connection.ts";

/** {@link CommandRouter} for one worker; devices held by other workers are reached through the {@link Cluster}. */
export class LocalRouter implements CommandRouter {
  constructor(
    private readonly inbox: Inbox,
    private readonly devices: DeviceStore,
    private readonly registry: Registry<DeviceConnection>,
    private readonly metrics: Metrics,
    private readonly cluster: Cluster,
    private readonly workerId: number,
  ) {}

  known(id: string): boolean {
    return this.registry.get(id) !== undefined || this.devices.known(id);
  }

  deliver(cmd: Command, receivedAt: number): Promise<void> {
    const stored = this.inbox.add(cmd);
    const conn = this.registry.get(cmd.deviceId);
    if (conn) {
      if (conn.sendCommand(cmd)) {
        this.metrics.inc("owsla_commands_delivered_live_total");
        this.metrics.observe("owsla_command_delivery_ms", Math.max(0, wallClock() - receivedAt));
      }
    } else {
      // Ask only the worker the device table names (with 12 workers a broadcast would cost 11
      // IPC messages per command); a device moving meanwhile is caught by its welcome re-checks.
      const row = this.devices.get(cmd.deviceId);
      const holder = row && row.connected === 1 && row.worker !== null && row.worker !== this.workerId ? row.worker : undefined;
      this.cluster.forwardCommand(cmd, receivedAt, holder);
    }
    return stored;
  }

  /** A command forwarded by another worker: write it if this worker holds the device. */
  deliverForwarded(cmd: Command, sentAt: number): void {
    const conn = this.registry.get(cmd.deviceId);
    if (conn?.sendCommand(cmd)) {
      this.metrics.inc("owsla_commands_delivered_live_total");
      this.metrics.observe("owsla_command_delivery_ms", Math.max(0, wallClock() - sentAt));
    }
  }
}
