/**
 * Black-box tests of the daily CLI commands (issue 13.7) against real gateway processes:
 * `register`, `revoke`, `outbox` (through the API, and from the data directory when the gateway
 * is down), `backup` (while the gateway runs and writes; the copy restores into a working
 * gateway) and `config check`.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestDevice } from "./helpers/device.ts";
import { GatewayProcess, owslaCommand, removeDir, startGateway } from "./helpers/gateway.ts";
import { cleanBroker, waitFor } from "./helpers/util.ts";

setDefaultTimeout(30_000);

let gw: GatewayProcess;
let apiPort = 0;
let apiToken = "";
let scratch: string;
const extra: GatewayProcess[] = [];

/** The environment without any OWSLA_* variable, plus `add`. */
function cleanEnv(add: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("OWSLA_") && v !== undefined) env[k] = v;
  return { ...env, ...add };
}

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...owslaCommand(), ...args], { cwd: scratch, env: cleanEnv(env), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const apiPortOf = (g: GatewayProcess) => Number(new URL(g.json().findLast((l) => l.msg === "Control API listening")!.url).port);
const admin = (...args: string[]) => run([...args, "--data", gw.dir, "--api-port", String(apiPort)]);

async function api(method: string, path: string, body?: unknown, port = apiPort, token = apiToken): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json() };
}

async function hello(port: number, device: string, token: string): Promise<Record<string, unknown>> {
  const d = await TestDevice.connect(port);
  d.send({ op: "hello", v: 1, device, token });
  const f = await d.next((x) => x.op === "welcome" || x.op === "error");
  d.close();
  return f;
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "owsla-daily-"));
  gw = await startGateway({ gatewayId: "cli-daily", args: ["--workers", "2"] });
  apiPort = apiPortOf(gw);
  apiToken = readFileSync(join(gw.dir, "api.token"), "utf8").trim();
});

afterAll(async () => {
  for (const g of [gw, ...extra]) {
    if (!g) continue;
    if (g.proc.exitCode === null) await g.kill();
    await cleanBroker(g).catch(() => {});
    removeDir(g.dir);
  }
  if (scratch) removeDir(scratch);
});

describe("register and revoke", () => {
  test("register prints the device id and a token that works; revoke by hardware id disconnects it and refuses the token", async () => {
    const r = await admin("register", "daily-lock-1", "--room", "hall", "--label", "Front door");
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const [idLine, tokenLine] = r.stdout.trimEnd().split("\n");
    const id = /^device ([0-9a-f-]{36}) \(daily-lock-1\)$/.exec(idLine!)![1]!;
    const token = /^token (\S+)$/.exec(tokenLine!)![1]!;
    expect((await api("GET", `/api/v1/devices/${id}`)).json.meta).toMatchObject({ room: "hall", label: "Front door" });
    expect(await hello(gw.port, "daily-lock-1", token)).toMatchObject({ op: "welcome", id });

    const dev = await TestDevice.connect(gw.port);
    dev.send({ op: "hello", v: 1, device: "daily-lock-1", token });
    await dev.op("welcome");
    const rv = await admin("revoke", "daily-lock-1");
    expect([rv.code, rv.stderr]).toEqual([0, ""]);
    expect(rv.stdout).toBe(`device ${id} (daily-lock-1) revoked; its tokens no longer work\n`);
    expect((await dev.op("error", 3000)).code).toBe("unauthorized");
    expect((await api("GET", `/api/v1/devices/${id}`)).json.revoked).toBe(true);
    expect(await hello(gw.port, "daily-lock-1", token)).toMatchObject({ op: "error", code: "unauthorized" });
    // Registering it again does not hand out a token that would lift the revocation.
    const again = await admin("register", "daily-lock-1");
    expect([again.code, again.stderr]).toEqual([0, ""]);
    expect(again.stdout).toBe(`device ${id} (daily-lock-1) is revoked\nno token: the device is revoked; re-issue one with POST /api/v1/devices/${id}/token\n`);
    expect((await api("POST", "/api/v1/devices", { hardware_id: "daily-lock-1" })).json).toMatchObject({ device: { id, revoked: true }, token: null });
    // By UUID too; an unknown device is refused (exit 1); a bad hardware id is a usage error of the API (exit 1).
    expect((await admin("revoke", id, "--json")).code).toBe(0);
    const unknown = await admin("revoke", "no-such-device-anywhere");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("No device with hardware id");
    const bad = await admin("register", "lock\u001b[2J");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("without control or format characters");
  });
});

describe("outbox", () => {
  test("shows messages held for the broker per device, through the API and from the data directory once the gateway is down", async () => {
    // A gateway whose broker never answers: every pub goes to the outbox (acked once stored).
    const down = await startGateway({ gatewayId: "cli-outbox", waitBroker: false, args: ["--workers", "1", "--broker", "amqp://guest:guest@127.0.0.1:9"] });
    extra.push(down);
    const port = apiPortOf(down);
    const { dev, welcome } = await down.device("daily-therm-1");
    const id = welcome.id as string;
    for (let i = 0; i < 3; i++) dev.send({ op: "pub", topic: "temp", body: { c: 20 + i }, ref: `r${i}` });
    for (let i = 0; i < 3; i++) await dev.next((f) => f.op === "ack" && f.ref === `r${i}`);

    const live = await run(["outbox", "--data", down.dir, "--api-port", String(port), "--json"]);
    expect([live.code, live.stderr]).toEqual([0, ""]);
    const o = JSON.parse(live.stdout);
    // 3 pubs and the device's `connected` presence message.
    expect(o).toMatchObject({ rows: 4, devices_total: 1, devices: [{ device_id: id, rows: 4 }] });
    expect(o.bytes).toBeGreaterThan(0);
    expect(o.oldest_age_s).toBeGreaterThanOrEqual(0);
    const text = await run(["outbox", "--data", down.dir, "--api-port", String(port)]);
    expect(text.stdout).toMatch(/^outbox: 4 message\(s\), \d+ bytes, oldest \S+ \(\d+ s ago\), 1 device\(s\)\nDEVICE\s+MESSAGES\s+BYTES\s+OLDEST\n/);
    // Closing adds the `disconnected` presence message: 5 held when the gateway goes down.
    dev.close();
    await waitFor("the disconnect in the outbox", async () => JSON.parse((await run(["outbox", "--data", down.dir, "--api-port", String(port), "--json"])).stdout).rows === 5);
    await down.kill();
    const offline = await run(["outbox", "--data", down.dir, "--api-port", String(port)]);
    expect([offline.code, offline.stderr]).toEqual([0, ""]);
    expect(offline.stdout).toContain("The gateway's API does not answer; read from");
    expect(offline.stdout).toContain("outbox: 5 message(s)");
    expect(offline.stdout).toContain(id);
  });
});

describe("backup", () => {
  test("copies every database consistently while the gateway writes; the copy restores into a working gateway", async () => {
    // Writes going on during the backup: registrations through the API.
    let writing = true;
    let registered = 0;
    const writer = (async () => {
      while (writing) {
        const r = await api("POST", "/api/v1/devices", { hardware_id: `daily-bulk-${registered}` });
        if (r.status === 201) registered++;
      }
    })();
    await waitFor("some registrations", () => registered > 20);
    const target = join(scratch, "backup-1");
    const b = await run(["backup", target, "--data", gw.dir]);
    writing = false;
    await writer;
    expect([b.code, b.stderr]).toEqual([0, ""]);
    // The site database and each worker's own file (2 workers), each snapshot checked.
    for (const f of ["owsla.db", "worker-0.db", "worker-1.db"]) expect(b.stdout).toMatch(new RegExp(`${f.replace(".", "\\.")}\\s+\\d+ bytes\\s+sha256 [0-9a-f]{64}\\s+integrity ok`));
    expect(readdirSync(target).sort()).toEqual(["MANIFEST.json", "api.token", "owsla.db", "site.secret", "worker-0.db", "worker-1.db"]);
    expect((statSync(target).mode & 0o777).toString(8)).toBe("700");
    for (const f of readdirSync(target)) expect([f, (statSync(join(target, f)).mode & 0o777).toString(8)]).toEqual([f, "600"]);
    const manifest = JSON.parse(readFileSync(join(target, "MANIFEST.json"), "utf8"));
    for (const f of ["owsla.db", "worker-0.db", "worker-1.db"]) expect(manifest.files.find((x: any) => x.name === f)).toMatchObject({ integrity: "ok" });
    const secretCopy = manifest.files.find((f: any) => f.name === "site.secret");
    expect(secretCopy.sha256).toBe(new Bun.CryptoHasher("sha256").update(readFileSync(join(gw.dir, "site.secret"))).digest("hex"));

    // A non-empty target is refused; so is a data directory without databases.
    const again = await run(["backup", target, "--data", gw.dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("is not empty");
    const none = await run(["backup", join(scratch, "backup-2"), "--data", join(scratch, "empty-data")]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("No database (*.db) in");

    // Restore: the files (not the manifest) into an empty data directory, and start a gateway on it.
    const restoredDir = mkdtempSync(join(tmpdir(), "owsla-restored-"));
    for (const f of readdirSync(target)) if (f !== "MANIFEST.json") cpSync(join(target, f), join(restoredDir, f));
    const restored = await startGateway({ gatewayId: "cli-restored", dir: restoredDir, args: ["--workers", "1"] });
    extra.push(restored);
    const rPort = apiPortOf(restored);
    const list = await api("GET", "/api/v1/devices?q=daily-bulk-&limit=1000", undefined, rPort, apiToken);
    expect(list.status).toBe(200);
    // At least what was registered before the backup started, at most what was registered by its end.
    expect(list.json.devices.length).toBeGreaterThan(20);
    expect(list.json.devices.length).toBeLessThanOrEqual(registered);
    // The site secret came along: a token minted by the original gateway works on the restored one.
    expect(await hello(restored.port, "daily-bulk-0", gw.token("daily-bulk-0"))).toMatchObject({ op: "welcome" });
  });
});

describe("config check", () => {
  test("prints the effective configuration with sources, secrets hidden, as TOML that parses", async () => {
    const r = await run(["config", "check", "--device-port", "7111", "--broker", "amqp://u:hunter2-secret@mq:5672"], { OWSLA_API_TOKEN: "0123456789abcdef-very-secret" });
    expect([r.code, r.stderr]).toEqual([0, "Configuration OK\n"]);
    expect(r.stdout).toContain('port = 7111  # from --device-port');
    expect(r.stdout).toContain('token = "***"  # from OWSLA_API_TOKEN');
    expect(r.stdout).toContain('url = "amqp://u:***@mq:5672"  # from --broker');
    expect(r.stdout).toContain('keepalive_s = 60  # default');
    expect(r.stdout).not.toContain("hunter2");
    expect(r.stdout).not.toContain("very-secret");
    const parsed = Bun.TOML.parse(r.stdout) as any;
    expect(parsed.device.port).toBe(7111);
  });

  test("an invalid value, an unknown variable or an unreadable TLS file exits 2 naming it", async () => {
    const bad = await run(["config", "check", "--device-port", "70000"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("device.port");
    const typo = await run(["config", "check"], { OWSLA_DEVICE_PROT: "1" });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("OWSLA_DEVICE_PROT");
    const tls = await run(["config", "check", "--device-tls-cert", "/nonexistent/c.pem", "--device-tls-key", "/nonexistent/k.pem"]);
    expect(tls.code).toBe(2);
    expect(tls.stderr).toContain("Cannot read device.tls_cert /nonexistent/c.pem");
    const sub = await run(["config", "show"]);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain('Unknown sub-command "show"');
  });
});
