/**
 * The Ruby example back-end (examples/ruby-backend/backend.rb, bunny) against a real gateway
 * and RabbitMQ: it answers device RPCs the standard way, sends back-end-initiated commands via
 * owsla.down, logs device messages and stops cleanly. Skipped only when Ruby or the bunny gem
 * is missing (CI installs ruby-bunny).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { join } from "node:path";
import { BROKER_URL, GatewayProcess, ROOT, removeDir, startGateway } from "./helpers/gateway.ts";

const BACKEND_RB = join(ROOT, "examples/ruby-backend/backend.rb");

/** Whether `ruby -e 'require "bunny"'` works here. */
function rubyWithBunny(): boolean {
  try {
    return Bun.spawnSync(["ruby", "-e", 'require "bunny"'], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  } catch {
    return false; // no ruby on PATH
  }
}

const hasBunny = rubyWithBunny();
if (!hasBunny) {
  console.warn("SKIPPED tests/ruby-backend.test.ts: `ruby -e 'require \"bunny\"'` failed; install Ruby and the bunny gem (Debian: ruby-bunny) to run it.");
}

/** The Ruby back-end as a child process, with its stdout/stderr collected as lines. */
class RubyBackend {
  readonly lines: string[] = [];
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  proc!: Subprocess<"ignore", "pipe", "pipe">;

  constructor(
    readonly prefix: string,
    readonly queue: string,
  ) {}

  /** Spawns `ruby backend.rb` and waits for its "ready" line. */
  async start(timeoutMs = 10000): Promise<void> {
    this.proc = Bun.spawn(["ruby", BACKEND_RB], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, AMQP_URL: BROKER_URL, OWSLA_PREFIX: this.prefix, QUEUE: this.queue },
    });
    void this.pump(this.proc.stdout);
    void this.pump(this.proc.stderr);
    const exited = this.proc.exited.then((code) => {
      throw new Error(`Ruby back-end exited with ${code} before "ready":\n${this.lines.join("\n")}`);
    });
    await Promise.race([this.waitLine((l) => l.startsWith("ready "), timeoutMs), exited]);
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.lines.push(line);
        if (process.env.OWSLA_TEST_VERBOSE) console.log(`[ruby] ${line}`);
        const w = this.waiters.findIndex((w) => w.pred(line));
        if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(line);
      }
    }
  }

  /** The first output line (already printed or future) matching `pred`. */
  waitLine(pred: (l: string) => boolean, timeoutMs = 5000): Promise<string> {
    const found = this.lines.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (l: string) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`Ruby back-end printed no matching line within ${timeoutMs} ms; output:\n${this.lines.join("\n")}`));
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

describe.skipIf(!hasBunny)("Ruby example back-end", () => {
  let gw: GatewayProcess;
  let ruby: RubyBackend;

  beforeAll(async () => {
    gw = await startGateway({ gatewayId: "bldg-rb" });
    ruby = new RubyBackend(gw.prefix, `${gw.prefix}ruby-backend`);
    await ruby.start();
  });

  afterAll(async () => {
    await ruby?.stop();
    await gw?.stop();
    // The gateway and Ruby declared durable queues/exchanges under the unique prefix: remove them.
    const client = new AMQPClient(BROKER_URL);
    try {
      await client.connect();
      const ch = await client.channel();
      if (ruby) await ch.queueDelete(ruby.queue).catch(() => {});
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
    const { dev } = await gw.device("thermo-ruby-rpc");
    dev.send({ op: "pub", topic: "rpc.get_schedule", body: { day: "mon" }, ref: "rb-1" });
    expect((await dev.op("ack")).ref).toBe("rb-1");
    const c = await dev.op("cmd", 8000);
    expect(c.corr).toBe("rb-1");
    expect(c.body).toEqual({ ok: true, echo: { day: "mon" } });
    dev.send({ op: "ack", ref: c.id });
    dev.close();
  });

  test("a door.request_unlock makes it send a door.unlock command to that device via owsla.down", async () => {
    const { dev, welcome } = await gw.device("lock-ruby");
    dev.send({ op: "pub", topic: "door.request_unlock", body: { badge: "b-42" }, ref: "rb-2" });
    expect((await dev.op("ack")).ref).toBe("rb-2");
    const c = await dev.op("cmd", 8000);
    expect(c.topic).toBe("door.unlock");
    expect(c.body).toEqual({ unlock: true });
    expect(c.id).toMatch(/^[0-9a-f-]{36}$/);
    dev.send({ op: "ack", ref: c.id });
    const sent = await ruby.waitLine((l) => l.startsWith("commanded ") && l.includes(`device_id=${welcome.id}`));
    expect(sent).toContain("gateway_id=bldg-rb");
    expect(sent).toContain(`message_id=${c.id}`);
    dev.close();
  });

  test("logs each device message with routing key, device id, topic and body, presence included", async () => {
    const { dev, welcome } = await gw.device("thermo-ruby-log");
    dev.send({ op: "pub", topic: "sensors.temp", body: { c: 21.5 }, ref: "rb-3" });
    await dev.op("ack");
    const line = await ruby.waitLine((l) => l.startsWith("received ") && l.includes(`device_id=${welcome.id}`) && l.includes("topic=sensors.temp"));
    expect(line).toBe(`received routing_key=bldg-rb.${welcome.id}.sensors.temp device_id=${welcome.id} topic=sensors.temp body={"c":21.5}`);
    const presence = await ruby.waitLine((l) => l.includes(`routing_key=bldg-rb.${welcome.id}.$presence`));
    expect(presence).toContain('"event":"connected"');
    // Presence is logged only: no reply, no command.
    expect(ruby.lines.filter((l) => /^(replied|commanded) /.test(l) && l.includes(welcome.id))).toEqual([]);
    dev.close();
  });

  test("stops cleanly on SIGTERM", async () => {
    const code = await ruby.stop();
    expect(code).toBe(0);
    expect(ruby.lines).toContain("stopped");
    expect(ruby.lines.filter((l) => /^(failed|rejected) /.test(l))).toEqual([]);
  });
});
