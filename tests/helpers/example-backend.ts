/**
 * Runs an example back-end (examples/<lang>-backend) as a child process against a real gateway
 * and RabbitMQ; tests/ruby-backend.test.ts and tests/python-backend.test.ts use the same suite.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { BROKER_URL, GatewayProcess, removeDir, startGateway } from "./gateway.ts";
import { forEachLine } from "./lines.ts";

/** An example back-end as a child process, with its stdout/stderr collected as lines. */
export class ExampleBackend {
  readonly lines: string[] = [];
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  proc!: Subprocess<"ignore", "pipe", "pipe">;

  constructor(
    /** What the output calls it, e.g. "Ruby". */
    readonly label: string,
    readonly argv: string[],
    readonly prefix: string,
    readonly queue: string,
  ) {}

  /** Spawns the back-end and waits for its "ready" line. */
  async start(timeoutMs = 10000): Promise<void> {
    this.proc = Bun.spawn(this.argv, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, AMQP_URL: BROKER_URL, OWSLA_PREFIX: this.prefix, QUEUE: this.queue },
    });
    void forEachLine(this.proc.stdout, (l) => this.onLine(l));
    void forEachLine(this.proc.stderr, (l) => this.onLine(l));
    const exited = this.proc.exited.then((code) => {
      throw new Error(`${this.label} back-end exited with ${code} before "ready":\n${this.lines.join("\n")}`);
    });
    await Promise.race([this.waitLine((l) => l.startsWith("ready "), timeoutMs), exited]);
  }

  private onLine(line: string): void {
    this.lines.push(line);
    if (process.env.OWSLA_TEST_VERBOSE) console.log(`[${this.label}] ${line}`);
    const w = this.waiters.findIndex((w) => w.pred(line));
    if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(line);
  }


  /** The first output line (already printed or future) matching `pred`. */
  waitLine(pred: (l: string) => boolean, timeoutMs = 5000): Promise<string> {
    const found = this.lines.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (l: string) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.label} back-end printed no matching line within ${timeoutMs} ms; output:\n${this.lines.join("\n")}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** SIGTERM; returns the exit code, or null when it had to be SIGKILLed after `timeoutMs`. */
  async stop(timeoutMs = 5000): Promise<number | null> {
    if (!this.proc || this.proc.exitCode !== null) return this.proc?.exitCode ?? null;
    this.proc.kill("SIGTERM");
    const code = await Promise.race([this.proc.exited, Bun.sleep(timeoutMs).then(() => null)]);
    if (code === null) {
      this.proc.kill("SIGKILL");
      await this.proc.exited;
    }
    return code;
  }
}

/**
 * The end-to-end suite every example back-end passes: started against a real gateway and
 * RabbitMQ, it answers a device RPC, commands a door, logs messages and presence, and stops
 * cleanly on SIGTERM.
 */
export function describeExampleBackend(label: string, argv: string[], available: boolean, gatewayId: string): void {
describe.skipIf(!available)(`${label} example back-end`, () => {
  let gw: GatewayProcess;
  let backend: ExampleBackend;

  beforeAll(async () => {
    gw = await startGateway({ gatewayId });
    backend = new ExampleBackend(label, argv, gw.prefix, `${gw.prefix}${label.toLowerCase()}-backend`);
    await backend.start();
  });

  afterAll(async () => {
    await backend?.stop();
    await gw?.stop();
    // The gateway and Ruby declared durable queues/exchanges under the unique prefix: remove them.
    const client = new AMQPClient(BROKER_URL);
    try {
      await client.connect();
      const ch = await client.channel();
      if (backend) await ch.queueDelete(backend.queue).catch(() => {});
      if (gw) {
        await ch.queueDelete(`${gw.prefix}owsla.gw.${gw.gatewayId}`).catch(() => {});
        await ch.queueDelete(`${gw.prefix}owsla.dead`).catch(() => {});
        await ch.exchangeDelete(`${gw.prefix}owsla.up`).catch(() => {});
        await ch.exchangeDelete(`${gw.prefix}owsla.down`).catch(() => {});
        await ch.exchangeDelete(`${gw.prefix}owsla.dead`).catch(() => {});
      }
    } finally {
      await client.close().catch(() => {});
    }
    if (gw) removeDir(gw.dir);
  });

  test("answers a device RPC the standard way: the device gets a cmd with corr = its ref echoing the body", async () => {
    const { dev } = await gw.device(`thermo-${gatewayId}-rpc`);
    dev.send({ op: "pub", topic: "rpc.get_schedule", body: { day: "mon" }, ref: "rb-1" });
    expect((await dev.op("ack")).ref).toBe("rb-1");
    const c = await dev.op("cmd", 8000);
    expect(c.corr).toBe("rb-1");
    expect(c.body).toEqual({ ok: true, echo: { day: "mon" } });
    dev.send({ op: "ack", ref: c.id });
    dev.close();
  });

  test("a door.request_unlock makes it send a door.unlock command to that device via owsla.down", async () => {
    const { dev, welcome } = await gw.device(`lock-${gatewayId}`);
    dev.send({ op: "pub", topic: "door.request_unlock", body: { badge: "b-42" }, ref: "rb-2" });
    expect((await dev.op("ack")).ref).toBe("rb-2");
    const c = await dev.op("cmd", 8000);
    expect(c.topic).toBe("door.unlock");
    expect(c.body).toEqual({ unlock: true });
    expect(c.id).toMatch(/^[0-9a-f-]{36}$/);
    dev.send({ op: "ack", ref: c.id });
    const sent = await backend.waitLine((l) => l.startsWith("commanded ") && l.includes(`device_id=${welcome.id}`));
    expect(sent).toContain(`gateway_id=${gatewayId}`);
    expect(sent).toContain(`message_id=${c.id}`);
    dev.close();
  });

  test("logs each device message with routing key, device id, topic and body, presence included", async () => {
    const { dev, welcome } = await gw.device(`thermo-${gatewayId}-log`);
    dev.send({ op: "pub", topic: "sensors.temp", body: { c: 21.5 }, ref: "rb-3" });
    await dev.op("ack");
    const line = await backend.waitLine((l) => l.startsWith("received ") && l.includes(`device_id=${welcome.id}`) && l.includes("topic=sensors.temp"));
    expect(line).toBe(`received routing_key=${gatewayId}.${welcome.id}.sensors.temp device_id=${welcome.id} topic=sensors.temp body={"c":21.5}`);
    const presence = await backend.waitLine((l) => l.includes(`routing_key=${gatewayId}.${welcome.id}.$presence`));
    expect(presence).toContain('"event":"connected"');
    // Presence is logged only: no reply, no command.
    expect(backend.lines.filter((l) => /^(replied|commanded) /.test(l) && l.includes(welcome.id))).toEqual([]);
    dev.close();
  });

  test("stops cleanly on SIGTERM", async () => {
    const code = await backend.stop();
    expect(code).toBe(0);
    expect(backend.lines).toContain("stopped");
    expect(backend.lines.filter((l) => /^(failed|rejected) /.test(l))).toEqual([]);
  });
});
}
