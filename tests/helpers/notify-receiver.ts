/**
 * A fake systemd notification socket for tests: an AF_UNIX datagram socket bound by a small
 * Python program (independent of the gateway's own FFI code) that prints every datagram it
 * receives as one JSON line. Tests read the datagrams as lists of `KEY=VALUE` assignments.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { forEachLine } from "./lines.ts";

const RECEIVER = `
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps({"at": time.time() * 1000, "d": data.decode("utf-8", "replace")}), flush=True)
`;

/** The Python interpreter to use, or null when there is none. */
export function python(): string | null {
  return Bun.which("python3") ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : null);
}

/** A bound fake NOTIFY_SOCKET. */
export class NotifyReceiver {
  /** Every datagram received so far, in order. */
  readonly datagrams: string[] = [];
  /** When each datagram arrived (ms since the epoch, the system clock), same order. */
  readonly receivedAt: number[] = [];
  private proc!: Subprocess<"ignore", "pipe", "inherit">;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly dir: string,
    /** The NOTIFY_SOCKET value to pass. */
    readonly path: string,
  ) {}

  /** Binds a fresh socket in a temporary directory. */
  static async start(): Promise<NotifyReceiver> {
    const dir = mkdtempSync(join(tmpdir(), "owsla-notify-"));
    const r = new NotifyReceiver(dir, join(dir, "notify.sock"));
    r.proc = Bun.spawn([python()!, "-c", RECEIVER, r.path], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
    let bound!: () => void;
    const isBound = new Promise<void>((res) => (bound = res));
    void forEachLine(r.proc.stdout, (line) => {
      if (line === "bound") bound();
      else {
        const { at, d } = JSON.parse(line) as { at: number; d: string };
        r.datagrams.push(d);
        r.receivedAt.push(at);
      }
      for (const w of r.waiters.splice(0)) w();
    });
    await isBound;
    return r;
  }

  /** Datagrams that contain the assignment `assignment` (e.g. "READY=1"). */
  with(assignment: string): string[] {
    return this.datagrams.filter((d) => d.split("\n").includes(assignment));
  }

  /** Waits until `pred` holds over the datagrams; throws with what arrived after `timeoutMs`. */
  async until(pred: (d: string[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.datagrams)) {
      if (Date.now() > deadline) throw new Error(`The notify socket did not get the expected datagrams within ${timeoutMs} ms; got:\n${this.datagrams.join("\n---\n")}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), Bun.sleep(100)]);
    }
  }

  /** Stops the receiver and removes its directory. */
  async stop(): Promise<void> {
    this.proc.kill();
    await this.proc.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
