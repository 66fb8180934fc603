/**
 * Client child processes (holders, flooders) driven over Bun's IPC channel, so the sockets of
 * an attack live outside the measuring process (its event loop stays free for latency
 * measurements, and no process exceeds its descriptor limit).
 */
import type { Subprocess } from "bun";

const all = new Set<Subprocess>();
process.on("exit", () => {
  for (const p of all) {
    try {
      p.kill("SIGKILL");
    } catch {}
  }
});

/** One child process. */
export class Child {
  private proc!: Subprocess;
  private queue: any[] = [];
  private waiter: ((m: any) => void) | null = null;

  private constructor(readonly name: string) {}

  /**
   * Spawns `script` with `args` and waits for its `ready` message. With `nice`, the child runs
   * at that niceness (19 = only idle CPU), so a load generator sharing the machine's cores
   * with the gateway does not starve it: that is what an attacker on another machine is like.
   * With `cpus` (a taskset list such as "1"), the child may only run on those CPUs.
   */
  static async spawn(name: string, script: string, args: string[], opts: { nice?: number; cpus?: string } = {}): Promise<Child> {
    const c = new Child(name);
    const nice = opts.nice ? ["nice", "-n", String(opts.nice)] : [];
    const pin = opts.cpus ? ["taskset", "-c", opts.cpus] : [];
    c.proc = Bun.spawn([...pin, ...nice, process.execPath, script, ...args], {
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      serialization: "json",
      ipc: (m) => c.deliver(m),
    });
    all.add(c.proc);
    void c.proc.exited.then(() => c.deliver({ t: "exited", code: c.proc.exitCode }));
    await c.next("ready", 20_000);
    return c;
  }

  private deliver(m: any): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(m);
    } else this.queue.push(m);
  }

  send(m: unknown): void {
    try {
      this.proc.send(m);
    } catch {}
  }

  /** The next message, which must have type `t`. */
  async next(t: string, timeoutMs = 300_000): Promise<any> {
    const got = this.queue.length > 0 ? Promise.resolve(this.queue.shift()) : new Promise<any>((r) => (this.waiter = r));
    let timer: Timer | undefined;
    const m = await Promise.race([
      got,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          this.waiter = null;
          reject(new Error(`${this.name}: no "${t}" message within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (m.t !== t) throw new Error(`${this.name}: expected "${t}", got ${JSON.stringify(m).slice(0, 300)}`);
    return m;
  }

  /** Sends `m` and returns the reply of type `t`. */
  async ask(m: { t: string; [k: string]: unknown }, t: string, timeoutMs?: number): Promise<any> {
    this.send(m);
    return await this.next(t, timeoutMs);
  }

  /** Asks the child to exit; kills it after 3 s. */
  async stop(): Promise<void> {
    this.send({ t: "exit" });
    await Promise.race([this.proc.exited, Bun.sleep(3000)]);
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
    await this.proc.exited;
    all.delete(this.proc);
  }
}
