/**
 * Black-box tests of the admin commands against a running gateway (`serve --workers 2`): each
 * command is spawned as `owsla <cmd> --data <gateway dir> --api-port <port>` (sources, or the
 * binary named by OWSLA_TEST_BINARY) and judged by its exit code and output, as a shell script
 * would. Exit codes: 0 ok, 1 refused by the gateway, 2 usage, 3 unreachable, 4 unauthorized.
 *
 * Covers: devices (table, --json, filters), device <id>, send (plain, --wait-ack, --json),
 * kick, status, version, token (current generation after a revocation), --help of every
 * command, and each non-zero exit code.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestDevice, type Frame } from "./helpers/device.ts";
import { freePort, owslaCommand, removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { waitFor, autoAck, cleanBroker } from "./helpers/util.ts";

setDefaultTimeout(20_000);

const UNKNOWN_ID = "0b9e7c1e-3f4a-4c1d-9a7b-2e5f6a7b8c9d";

let gw: GatewayProcess;
let apiPort = 0;
let apiToken = "";
/** Working directory of every spawned command (holds no config or data). */
let scratch: string;
const opened: TestDevice[] = [];

/** Device "cli-ack": acks every command; `acked` records them. */
let acker: { dev: TestDevice; id: string; got: Frame[] };
/** Device "cli-quiet": never acks. */
let quiet: { dev: TestDevice; id: string };

/** The environment without any OWSLA_* variable. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("OWSLA_") && v !== undefined) env[k] = v;
  return env;
}

/** Runs `owsla ...args` to completion (killed after `timeoutMs`). */
async function run(args: string[], timeoutMs = 15_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...owslaCommand(), ...args], { cwd: scratch, env: cleanEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Runs an admin command against the test gateway. */
function admin(...args: string[]) {
  return run([...args, "--data", gw.dir, "--api-port", String(apiPort)]);
}

/** Direct API call (for setting up and checking what the CLI did). */
async function api(method: string, path: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${apiPort}${path}`, { method, headers: { authorization: `Bearer ${apiToken}` } });
  return { status: res.status, json: await res.json() };
}

async function connected(id: string, want = true): Promise<any> {
  return await waitFor(`device ${id} connected=${want}`, async () => {
    const r = await api("GET", `/api/v1/devices/${id}`);
    return r.status === 200 && r.json.connected === want ? r.json : null;
  });
}

async function connect(hw: string): Promise<{ dev: TestDevice; id: string }> {
  const { dev, welcome } = await gw.device(hw);
  opened.push(dev);
  await connected(welcome.id);
  return { dev, id: welcome.id };
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "owsla-admin-"));
  gw = await startGateway({ gatewayId: "cli-gw", args: ["--workers", "2"] });
  const line = gw.json().findLast((l) => l.msg === "Control API listening");
  apiPort = Number(new URL(line!.url).port);
  apiToken = readFileSync(join(gw.dir, "api.token"), "utf8").trim();
  const a = await connect("cli-ack");
  acker = { ...a, got: autoAck(a.dev) };
  quiet = await connect("cli-quiet");
});

afterAll(async () => {
  for (const d of opened) if (!d.closed) d.close();
  if (gw) {
    await gw.kill();
    await cleanBroker(gw);
    removeDir(gw.dir);
  }
  if (scratch) removeDir(scratch);
});

describe("devices", () => {
  test("prints a table with a header, one row per device and a count", async () => {
    const r = await admin("devices");
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+HARDWARE ID\s+CONNECTED\s+WORKER\s+LAST SEEN\s+LAST CLOSE$/);
    const row = lines.find((l) => l.startsWith(acker.id));
    expect(row).toBeDefined();
    expect(row!.split(/\s{2,}/).slice(0, 4)).toEqual([acker.id, "cli-ack", "yes", expect.stringMatching(/^[01]$/)]);
    expect(lines.some((l) => l.startsWith(quiet.id) && l.includes("cli-quiet"))).toBe(true);
    expect(lines.at(-1)).toBe("2 device(s)");
  });

  test("--json prints the device objects; filters narrow them", async () => {
    const r = await admin("devices", "--json");
    expect(r.code).toBe(0);
    const all = JSON.parse(r.stdout);
    expect(all.map((d: any) => d.hardware_id).sort()).toEqual(["cli-ack", "cli-quiet"]);
    expect(all.find((d: any) => d.id === acker.id)).toMatchObject({ connected: true, hardware_id: "cli-ack" });

    const one = JSON.parse((await admin("devices", "--json", "--hardware-id", "cli-quiet")).stdout);
    expect(one.map((d: any) => d.id)).toEqual([quiet.id]);
    const limited = JSON.parse((await admin("devices", "--json", "--limit", "1")).stdout);
    expect(limited).toHaveLength(1);
    const none = JSON.parse((await admin("devices", "--json", "--connected", "false")).stdout);
    expect(none).toEqual([]);
    const search = JSON.parse((await admin("devices", "--json", "--search", "quiet")).stdout);
    expect(search.map((d: any) => d.id)).toEqual([quiet.id]);
  });
});

describe("device", () => {
  test("shows one device as key/value lines and as --json", async () => {
    const r = await admin("device", acker.id);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(new RegExp(`^id\\s+${acker.id}$`, "m"));
    expect(r.stdout).toMatch(/^hardware_id\s+cli-ack$/m);
    expect(r.stdout).toMatch(/^connected\s+true$/m);
    expect(r.stdout).toMatch(/^worker\s+[01]$/m);
    expect(r.stdout).toMatch(/^pending_commands\s+0$/m);

    const j = await admin("device", acker.id.toUpperCase(), "--json");
    expect(j.code).toBe(0);
    const fromApi = (await api("GET", `/api/v1/devices/${acker.id}`)).json;
    expect(JSON.parse(j.stdout)).toEqual(fromApi);
  });
});

describe("send", () => {
  test("queues a command that the device receives", async () => {
    const r = await admin("send", quiet.id, "lights.set", '{"on":true,"level":3}');
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const m = /^command (\S+) queued$/.exec(r.stdout.trim());
    expect(m).not.toBeNull();
    const cmd = await quiet.dev.op("cmd");
    expect(cmd).toMatchObject({ id: m![1], topic: "lights.set", body: { on: true, level: 3 } });
    quiet.dev.send({ op: "ack", ref: cmd.id });
  });

  test("--wait-ack exits 0 once an acking device acked; --json prints the result", async () => {
    const r = await admin("send", acker.id, "door.lock", '"now"', "--wait-ack");
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const m = /^command (\S+) acked by the device$/.exec(r.stdout.trim());
    expect(m).not.toBeNull();
    expect(acker.got.find((f) => f.id === m![1])).toMatchObject({ topic: "door.lock", body: "now" });

    const j = await admin("send", acker.id, "door.unlock", "null", "--wait-ack", "--json");
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ id: expect.any(String), acked: true });
  });
});

describe("kick", () => {
  test("closes the device's socket; a second kick exits 1 (not connected)", async () => {
    const { dev, id } = await connect("cli-kick");
    const r = await admin("kick", id);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout.trim()).toBe(`device ${id} disconnected`);
    await dev.waitClosed(2000);
    await connected(id, false);
    const again = await admin("kick", id);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("not_connected");
    expect(again.stdout).toBe("");
  });
});

describe("status", () => {
  test("shows workers, connections, broker link and queues", async () => {
    const r = await admin("status");
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(/^gateway cli-gw \(owsla \S+\), up \d+ s$/m);
    expect(r.stdout).toMatch(/^connections 2, devices known 3,/m);
    expect(r.stdout).toMatch(/^broker links up 2\/2, reconnects 0$/m);
    expect(r.stdout).toMatch(/^workers up 2\/2, restarts 0$/m);
    expect(r.stdout).toMatch(/^WORKER\s+PID\s+UP\s+READY\s+CONNECTIONS\s+BROKER\s+RESTARTS$/m);
    for (const pid of gw.workerPids()) expect(r.stdout).toMatch(new RegExp(`^[01]\\s+${pid}\\s+yes\\s+yes\\s+\\d+\\s+up\\s+0$`, "m"));
  });

  test("--json prints the stats with the list of workers", async () => {
    const r = await admin("status", "--json");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ gateway: "cli-gw", connections: 2, devices_known: 3, workers: { up: 2, total: 2, restarts: 0 }, broker: { up: 2, total: 2 } });
    // "worker_list" is the list of workers (a script does `jq '.worker_list[].pid'`).
    expect(Array.isArray(s.worker_list)).toBe(true);
    expect(s.worker_list.map((w: any) => w.pid).sort()).toEqual(gw.workerPids().sort());
  });
});

describe("version, token and help", () => {
  test("version prints version, git commit and target", async () => {
    const r = await run(["version"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(/^owsla \d+\.\d+\.\d+\S*\ncommit \S+\ntarget \S.*\n$/);
  });

  test.each(["serve", "token", "devices", "device", "send", "kick", "status", "version", "revoke", "register", "outbox", "backup", "config"])("%s --help exits 0 with its usage on stdout", async (c) => {
    const r = await run([c, "--help"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(new RegExp(`Usage: (owsla )?${c}\\b`));
    if (["devices", "device", "send", "kick", "status", "revoke", "register", "outbox"].includes(c)) {
      // Admin commands list the connection options and the exit codes.
      expect(r.stdout).toContain("--api-port");
      expect(r.stdout).toMatch(/Exit codes: 0 ok, 1 .*, 2 usage, 3 .*, 4 unauthorized/);
    }
    if (c === "device" || c === "kick") expect(r.stdout).toContain("<device-uuid>");
    if (c === "send") expect(r.stdout).toMatch(/<device-uuid> <topic> <json-body>.*--wait-ack/);
    if (c === "token") expect(r.stdout).toMatch(/hardware[- ]id/i);
  });

  test("token never lifts a revocation; after the gateway re-issued one, it prints the current generation's token", async () => {
    const { dev, id } = await connect("cli-rev");
    expect((await api("POST", `/api/v1/devices/${id}/revoke`)).status).toBe(200);
    await dev.waitClosed(2000);
    const refused = await run(["token", "cli-rev", "--data", gw.dir]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain(`Device cli-rev (${id}) is revoked`);
    expect(refused.stderr).toContain(`POST /api/v1/devices/${id}/token`);
    expect((await api("GET", `/api/v1/devices/${id}`)).json.revoked).toBe(true);
    const reissued = (await api("POST", `/api/v1/devices/${id}/token`)).json.token;
    const r = await run(["token", "cli-rev", "--data", gw.dir]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const tok = r.stdout.trim();
    expect(tok).toBe(reissued);
    expect(tok).not.toBe(gw.token("cli-rev"));
    const d = await TestDevice.connect(gw.port);
    opened.push(d);
    const welcome = await d.hello({ device: "cli-rev", token: tok });
    expect(welcome.id).toBe(id);
    const bad = await run(["token", "--data", gw.dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Usage");
  });
});

describe("exit codes", () => {
  test("1 when the gateway refuses: unknown device UUID", async () => {
    const rs = await Promise.all([admin("device", UNKNOWN_ID), admin("send", UNKNOWN_ID, "a.b", "{}"), admin("kick", UNKNOWN_ID)]);
    for (const r of rs) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("not_found");
      expect(r.stderr).toContain(UNKNOWN_ID);
      expect(r.stdout).toBe("");
    }
  });

  test("1 when --wait-ack times out (the device never acks); the command stays pending", async () => {
    // The API's default wait (10 s) is covered by src/api/app-requests.test.ts.
    const t0 = Date.now();
    const r = await admin("send", quiet.id, "slow.op", "{}", "--wait-ack", "--timeout-ms", "1500");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("timeout");
    expect(r.stdout).toBe("");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500); // it did wait for the ack that long
    const cmd = await quiet.dev.op("cmd");
    expect(cmd.topic).toBe("slow.op");
    expect((await api("GET", `/api/v1/devices/${quiet.id}`)).json.pending_commands).toBe(1);
  }, 20_000);

  test("2 for bad usage: missing arguments, bad UUID, bad JSON, bad flag values, unknown flags", async () => {
    const cases: string[][] = [
      ["device"],
      ["device", "not-a-uuid"],
      ["send", acker.id],
      ["send", acker.id, "a.b"],
      ["send", acker.id, "a.b", "{bad json"],
      ["send", acker.id, "a.b", "{}", "extra"],
      ["send", "not-a-uuid", "a.b", "{}"],
      ["kick"],
      ["devices", "extra"],
      ["devices", "--limit", "0"],
      ["devices", "--connected", "maybe"],
      ["send", acker.id, "a.b", "{}", "--wait-ack", "--timeout-ms", "0"],
      ["status", "extra"],
      ["status", "--no-such-flag", "1"],
    ];
    const rs = await Promise.all(cases.map((c) => admin(...c)));
    cases.forEach((c, i) => {
      const r = rs[i]!;
      expect([c.join(" "), r.code]).toEqual([c.join(" "), 2]);
      expect(r.stderr.length).toBeGreaterThan(0);
      expect(r.stdout).toBe("");
    });
    expect(rs[4]!.stderr).toContain("not valid JSON");
    // Nothing was sent by the refused `send`s.
    expect(acker.got.filter((f) => f.topic === "a.b")).toEqual([]);
  });

  test("3 when no gateway listens on the API port", async () => {
    const port = freePort();
    for (const args of [["status"], ["devices"], ["device", acker.id], ["send", acker.id, "a.b", "{}"], ["kick", acker.id]]) {
      const r = await run([...args, "--data", gw.dir, "--api-port", String(port)]);
      expect([args[0], r.code]).toEqual([args[0], 3]);
      expect(r.stderr).toContain("Cannot reach");
      expect(r.stdout).toBe("");
    }
  });

  test("4 with a wrong --api-token, or without a token file", async () => {
    for (const args of [["status"], ["devices"], ["device", acker.id], ["kick", acker.id]]) {
      const r = await admin(...args, "--api-token", "wrong-token-0123456789abcdef");
      expect([args[0], r.code]).toEqual([args[0], 4]);
      expect(r.stderr).toContain("refused the API token");
    }
    expect(acker.dev.closed).toBe(false);
    const empty = mkdtempSync(join(tmpdir(), "owsla-admin-empty-"));
    try {
      const r = await run(["status", "--data", empty, "--api-port", String(apiPort)]);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain("api.token");
    } finally {
      removeDir(empty);
    }
    // The right token given explicitly works from anywhere.
    const ok = await run(["status", "--api-token", apiToken, "--api-port", String(apiPort)]);
    expect(ok.code).toBe(0);
  });
});
