/**
 * A simulated device for failure tests: keeps reconnecting, publishes numbered messages,
 * acks every command, and records what the gateway acknowledged and delivered.
 */
import { TestDevice } from "./device.ts";

/** A self-healing device that keeps talking to the gateway. */
export class SimDevice {
  /** refs the gateway acked (the gateway promised these reached the back-end). */
  readonly acked = new Set<string>();
  /** command ids received (with repeats counted in `cmdDeliveries`). */
  readonly cmds = new Set<string>();
  cmdDeliveries = 0;
  deviceId = "";
  private seq = 0;
  private running = true;
  private dev: TestDevice | null = null;
  private loop: Promise<void>;

  constructor(
    readonly hardwareId: string,
    private readonly port: () => number,
    private readonly token: string,
    private pubEveryMs = 10,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const dev = await TestDevice.connect(this.port());
        this.dev = dev;
        const w = await dev.hello({ device: this.hardwareId, token: this.token });
        this.deviceId = w.id;
        const reader = (async () => {
          while (!dev.closed) {
            const f = await dev.next(() => true, 60_000);
            if (f.op === "ack") this.acked.add(f.ref);
            else if (f.op === "cmd") {
              this.cmds.add(f.id);
              this.cmdDeliveries++;
              dev.send({ op: "ack", ref: f.id });
            }
          }
        })().catch(() => {});
        while (this.running && !dev.closed) {
          if (this.pubEveryMs > 0) dev.send({ op: "pub", topic: "sim", body: { n: this.seq }, ref: `${this.hardwareId}-${this.seq++}` });
          await Bun.sleep(this.pubEveryMs || 50);
        }
        if (!this.running) {
          // Stay connected a little to receive the last acks, then leave.
          await Bun.sleep(300);
          dev.close();
        }
        await reader;
      } catch {
        // Refused or dropped: retry shortly.
      }
      if (this.running) await Bun.sleep(100 + Math.random() * 100);
    }
  }

  /** Stops publishing (but keeps the connection for commands) when `quiet`, or stops entirely. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Stops sending new messages; keeps receiving commands. */
  quiet(): void {
    this.pubEveryMs = 0;
  }
}
