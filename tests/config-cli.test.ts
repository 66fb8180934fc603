/**
 * Black-box tests of the command line: `bun main.ts ...` run as a process, asserting on its
 * exit code and output. Covers help, configuration errors (named key and source, reported
 * before anything listens), the `token` and `version` commands, unknown commands, and that the
 * broker password never reaches the log.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestDevice } from "./helpers/device.ts";
import { GatewayProcess, ROOT, freePort, owslaCommand, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";

/** Waits inside tests are shorter, so a failure is reported as such, not as a timeout. */
setDefaultTimeout(20_000);

/** Scratch directory: working directory of every spawned process and home of its files. */
let scratch: string;
const started: GatewayProcess[] = [];

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "owsla-cli-"));
});

afterAll(async () => {
  for (const gw of started) {
    if (gw.proc.exitCode === null) await gw.stop();
    const backend = await new TestBackend(gw.prefix).start().catch(() => null);
    if (backend) {
      await backend.ch.queueDelete(`${gw.prefix}owsla.dead`).catch(() => {});
      await backend.ch.exchangeDelete(`${gw.prefix}owsla.dead`).catch(() => {});
      await backend.stop([gw.gatewayId]);
    }
    removeDir(gw.dir);
  }
  removeDir(scratch);
});

/** The environment without any OWSLA_* variable, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("OWSLA_") && v !== undefined) env[k] = v;
  return { ...env, ...extra };
}

/** Runs `bun main.ts ...args` to completion (killed after `timeoutMs`). */
async function run(args: string[], env: Record<string, string> = {}, timeoutMs = 10_000) {
  const proc = Bun.spawn([...owslaCommand(), ...args], {
    cwd: scratch,
    env: cleanEnv(env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr, out: stdout + stderr };
}

/** Writes a TOML file into the scratch dir and returns its path. */
function toml(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

describe("help", () => {
  test("--help exits 0 and lists every flag with its environment variable", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    for (const want of ["--device-port", "OWSLA_DEVICE_PORT", "--port", "--data", "--gateway", "--broker", "--auth-mode", "OWSLA_BROKER_URL", "--config"]) {
      expect(r.stdout).toContain(want);
    }
    expect(r.stdout).toContain("Usage:");
  });

  test("serve --help shows the same options", async () => {
    const r = await run(["serve", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--device-port");
    expect(r.stdout).toContain("OWSLA_DEVICE_PORT");
  });
});

describe("invalid configuration", () => {
  /**
   * Each case: extra args, env and the texts the error must contain (the key, the source,
   * the offending value). Each run gets a fresh port and a data dir that must stay absent.
   */
  const cases: { name: string; args?: string[]; env?: Record<string, string>; file?: [string, string]; want: string[] }[] = [
    { name: "--port abc", args: ["--port", "abc"], want: ["device.port", "--port", "abc"] },
    { name: "--device-port 70000", args: ["--device-port", "70000"], want: ["device.port", "--device-port", "70000", "65535"] },
    { name: "OWSLA_DEVICE_PORT=abc", env: { OWSLA_DEVICE_PORT: "abc" }, want: ["device.port", "OWSLA_DEVICE_PORT", "abc"] },
    { name: "--auth-mode foo", args: ["--auth-mode", "foo"], want: ["auth.mode", "--auth-mode", "foo", "token", "none"] },
    { name: "OWSLA_AUTH_MODE=foo", env: { OWSLA_AUTH_MODE: "foo" }, want: ["auth.mode", "OWSLA_AUTH_MODE", "foo"] },
    { name: "--gateway-site-namespace not-a-uuid", args: ["--gateway-site-namespace", "not-a-uuid"], want: ["gateway.site_namespace", "--gateway-site-namespace", "UUID"] },
    { name: "an unknown flag", args: ["--device-prot", "7070"], want: ["--device-prot"] },
    { name: "a config file with an unknown key", file: ["bad-key.toml", "[device]\nprot = 7070\n"], want: ["device.prot", "bad-key.toml"] },
    { name: "a config file with a bad value", file: ["bad-value.toml", '[device]\nport = "abc"\n'], want: ["device.port", "bad-value.toml", "abc"] },
    { name: "a config file with an unknown section", file: ["bad-section.toml", "[devices]\nport = 1\n"], want: ["devices", "bad-section.toml"] },
    { name: "an unknown OWSLA_* variable", env: { OWSLA_DEVICE_PROT: "7070" }, want: ["OWSLA_DEVICE_PROT", "did you mean OWSLA_DEVICE_PORT"] },
    { name: "a config file with a TOML syntax error", file: ["bad-syntax.toml", "[device]\n# ok\nport = = 1\n"], want: ["bad-syntax.toml", "line 3", "port = = 1"] },
  ];

  for (const c of cases) {
    test(`${c.name} exits non-zero naming the key and its source, before listening`, async () => {
      const data = join(scratch, `never-${Math.random().toString(36).slice(2)}`);
      const port = freePort();
      const args = ["--data", data, "--log-format", "json", "--api-port", "0"];
      if (!c.args?.some((a) => a.includes("port"))) args.push("--port", String(port));
      if (c.file) args.push("--config", toml(c.file[0], c.file[1]));
      const r = await run([...args, ...(c.args ?? [])], c.env);
      expect(r.code).not.toBe(0);
      for (const w of c.want) expect(r.stderr).toContain(w);
      expect(r.stderr).toContain("Invalid config");
      // Nothing was started: no startup log, no listener, nothing written to the data dir.
      expect(r.out).not.toContain("Starting Owsla gateway");
      expect(r.out).not.toContain("Worker listening");
      expect(existsSync(data)).toBe(false);
    });
  }

  test("a config file named by OWSLA_CONFIG is checked the same way", async () => {
    const path = toml("env-bad-key.toml", "[auth]\nmodee = \"none\"\n");
    const data = join(scratch, "never-env-config");
    const r = await run(["--data", data, "--port", String(freePort())], { OWSLA_CONFIG: path });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("auth.modee");
    expect(r.stderr).toContain(path);
    expect(existsSync(data)).toBe(false);
  });
});

describe("commands", () => {
  test("version prints the version, git commit and target, and exits 0", async () => {
    const r = await run(["version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^owsla \d+\.\d+\.\d+\S*\ncommit [0-9a-f]{7,}\ntarget \S.*\n$/);
    if (process.env.OWSLA_TEST_BINARY) expect(r.stdout).toContain("target bun-linux-x64");
  });

  test("an unknown command exits 2 with the usage", async () => {
    const r = await run(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("frobnicate");
    expect(r.stderr).toContain("Usage:");
    expect(r.stdout).toBe("");
  });

  test("token without a hardware id exits 2 with its usage", async () => {
    const r = await run(["token", "--data", join(scratch, "token-usage")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("token");
  });

  test("token <hw> prints a token that a running gateway with the same data dir accepts", async () => {
    const gw = await startGateway({ gatewayId: "cli-token" });
    started.push(gw);
    const r = await run(["token", "door-lock-77", "--data", gw.dir]);
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    expect(r.stdout).toBe(token + "\n");
    expect(token).toMatch(/^[A-Za-z0-9_-]{16,}$/);

    const dev = await TestDevice.connect(gw.port);
    const welcome = await dev.hello({ device: "door-lock-77", token });
    expect(welcome.gateway).toBe("cli-token");
    dev.close();

    // The token is bound to its hardware id.
    const other = await TestDevice.connect(gw.port);
    other.send({ op: "hello", v: 1, device: "door-lock-78", token });
    expect((await other.op("error")).code).toBe("unauthorized");
    await other.waitClosed();

    // The same data dir, asked again, prints the same token.
    expect((await run(["token", "door-lock-77", "--data", gw.dir])).stdout).toBe(r.stdout);
  });

  test("token never creates a site secret silently: without a data directory it fails and creates nothing", async () => {
    const data = join(scratch, "no-such-data");
    const r = await run(["token", "door-lock-77", "--data", data]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`No site secret at ${join(data, "site.secret")}: the data directory ${data} does not exist`);
    expect(r.stderr).toContain("--create-secret");
    expect(existsSync(data)).toBe(false);
  });

  test("token --create-secret starts a new site secret in a new 0700 data directory, 0600", async () => {
    const data = join(scratch, "new-site", "data");
    const r = await run(["token", "door-lock-77", "--data", data, "--create-secret"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect((statSync(data).mode & 0o777).toString(8)).toBe("700");
    expect((statSync(join(data, "site.secret")).mode & 0o777).toString(8)).toBe("600");
    // Then it reads that secret: the same token again, without the option.
    expect((await run(["token", "door-lock-77", "--data", data])).stdout).toBe(r.stdout);
  });

  test("token refuses a hardware id with control characters", async () => {
    const r = await run(["token", "lock\u001b[2J", "--data", join(scratch, "x")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("without control or format characters");
  });
});

describe("broker credentials", () => {
  test("the broker password never appears in the log, and an unreachable broker does not stop the gateway", async () => {
    const password = "Zq9-unlikely-Pa55word-7731";
    const closedPort = freePort();
    const url = `amqp://owsla:${password}@127.0.0.1:${closedPort}/site`;
    const gw = await startGateway({ gatewayId: "cli-secret", args: ["--broker", url], waitBroker: false });
    started.push(gw);

    const redacted = `amqp://owsla:***@127.0.0.1:${closedPort}/site`;
    const start = gw.json().find((l) => l.msg === "Starting Owsla gateway");
    expect(start?.config?.broker?.url).toBe(redacted);

    // The failed connection attempt is logged with the redacted URL.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !gw.json().some((l) => String(l.msg).startsWith("Cannot connect to broker"))) await Bun.sleep(50);
    const failures = gw.json().filter((l) => String(l.msg).startsWith("Cannot connect to broker"));
    expect(failures.length).toBeGreaterThanOrEqual(1);
    for (const f of failures) expect(f.url).toBe(redacted);

    // Still running, and still serving devices (a pub is acked from the outbox).
    await Bun.sleep(500);
    expect(gw.proc.exitCode).toBeNull();
    const { dev } = await gw.device("thermo-offline-broker");
    dev.send({ op: "pub", topic: "temp", body: { c: 20 }, ref: "r-offline" });
    expect((await dev.op("ack")).ref).toBe("r-offline");
    dev.close();

    // A graceful stop works without a broker.
    const t0 = Date.now();
    expect(await gw.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
    const all = gw.logs.join("\n");
    expect(all).not.toContain(password);
    expect(all).not.toContain(encodeURIComponent(password));
  });
});
