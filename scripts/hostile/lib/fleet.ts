/**
 * Honest devices that stay connected and measure round trips (pub with ref → ack) while an
 * attack runs; every sample is tagged with the current phase.
 */
import type { HostileGateway } from "./gateway.ts";
import { RawConn } from "./raw.ts";
import { latencySummary } from "./stats.ts";

/** Connected devices publishing in a loop. */
export class Fleet {
  phase = "before";
  /** pub → ack round trips by phase, ms (through the broker's publisher confirm). */
  readonly rtt: Record<string, number[]> = {};
  /** ping → pong round trips by phase, ms (the gateway's event loop only). */
  readonly pingRtt: Record<string, number[]> = {};
  readonly failures: string[] = [];
  private running = true;
  private loops: Promise<void>[] = [];
  private conns: RawConn[] = [];

  private constructor() {}

  /**
   * Connects `n` devices (device i from source address `addr(i)`) and starts publishing every
   * `everyMs` on each.
   */
  static async start(gw: HostileGateway, n: number, everyMs: number, addr: (i: number) => string, prefix = "honest"): Promise<Fleet> {
    const f = new Fleet();
    for (let i = 0; i < n; i++) {
      const hw = `${prefix}-${i}`;
      const c = await RawConn.connect({ port: gw.port, localAddress: addr(i) });
      c.write(JSON.stringify({ op: "hello", v: 1, device: hw, token: gw.token(hw) }) + "\n");
      const w = await c.waitFrame((x) => x.op === "welcome" || x.op === "error", 5000);
      if (!w || w.op !== "welcome") throw new Error(`Honest device ${hw} was not welcomed: ${JSON.stringify(w)}`);
      f.conns.push(c);
    }
    f.loops = f.conns.map((c, i) => f.loop(c, i, everyMs));
    return f;
  }

  private async loop(c: RawConn, i: number, everyMs: number): Promise<void> {
    let seq = 0;
    // Stagger the devices over the interval.
    await Bun.sleep((everyMs * i) / Math.max(1, this.conns.length));
    while (this.running) {
      if (c.closed) {
        this.failures.push(`${this.phase}: device ${i} disconnected (${c.errors.join(",") || "no error frame"})`);
        return;
      }
      const ref = `h${i}-${seq++}`;
      const phase = this.phase;
      const t0 = performance.now();
      c.write(JSON.stringify({ op: "pub", topic: "honest.rtt", body: { seq }, ref }) + "\n");
      const a = await c.waitFrame((f) => f.ref === ref, 5000);
      const ms = performance.now() - t0;
      if (a?.op === "ack") (this.rtt[phase] ??= []).push(ms);
      else this.failures.push(`${phase}: ${a ? `${a.code}: ${a.message}` : "no ack within 5 s"}`);
      const t1 = performance.now();
      c.write('{"op":"ping"}\n');
      const before = c.frames.length;
      const pong = await c.waitFrame((f) => f.op === "pong" && c.frames.indexOf(f) >= before, 5000);
      if (pong) (this.pingRtt[phase] ??= []).push(performance.now() - t1);
      // Forget old frames so the pong search stays short.
      c.frames.splice(0, c.frames.length);
      await Bun.sleep(Math.max(0, everyMs - (performance.now() - t0)));
    }
  }

  /** pub → ack round-trip summary of `phase`. */
  summary(phase: string): ReturnType<typeof latencySummary> {
    return latencySummary(this.rtt[phase] ?? []);
  }

  /** ping → pong round-trip summary of `phase`. */
  pingSummary(phase: string): ReturnType<typeof latencySummary> {
    return latencySummary(this.pingRtt[phase] ?? []);
  }

  /** Stops publishing and closes the devices. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const c of this.conns) c.terminate();
  }
}
