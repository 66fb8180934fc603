/**
 * Reload (SIGHUP) against a real gateway: a renewed device TLS certificate at the same path is
 * served to new connections while connected devices stay connected; a changed log level in the
 * config file applies; a setting that needs a restart is kept and named; an invalid config file
 * changes nothing; device.max_connections and device.hello_timeout_ms apply to new connections.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { TestDevice } from "./helpers/device.ts";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";

const pki = mkdtempSync(join(tmpdir(), "owsla-reload-pki-"));
const sh = (cmd: string) => {
  const r = Bun.spawnSync(["bash", "-c", cmd], { cwd: pki, stderr: "pipe" });
  if (!r.success) throw new Error(`${cmd}: ${r.stderr}`);
};
const haveOpenssl = Bun.which("openssl") !== null;

/** The CN of the certificate the device port presents to a new TLS connection. */
function servedCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.destroy();
      resolve(String(cn));
    });
    s.on("error", reject);
  });
}

/** Waits until `n` log lines with message `msg` were written. */
async function logged(gw: GatewayProcess, msg: string, n: number): Promise<void> {
  for (let i = 0; i < 200 && gw.json().filter((l) => l.msg === msg).length < n; i++) await Bun.sleep(25);
  expect(gw.json().filter((l) => l.msg === msg).length).toBe(n);
}

describe.skipIf(!haveOpenssl)("reload (SIGHUP)", () => {
  let gw: GatewayProcess;
  const config = join(pki, "owsla.toml");
  const writeConfig = (extra: string) =>
    writeFileSync(config, `[device]\ntls_cert = "${join(pki, "server.pem")}"\ntls_key = "${join(pki, "server.key")}"\n${extra}\n`);

  beforeAll(async () => {
    for (const cn of ["cert-one", "cert-two"]) {
      sh(`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=${cn} -keyout ${cn}.key -out ${cn}.pem`);
    }
    copyFileSync(join(pki, "cert-one.pem"), join(pki, "server.pem"));
    copyFileSync(join(pki, "cert-one.key"), join(pki, "server.key"));
    writeConfig(`max_connections = 100\n[log]\nlevel = "info"`);
    gw = await startGateway({ gatewayId: "reload", waitBroker: false, args: ["--workers", "2", "--config", config] });
  });
  afterAll(async () => {
    await gw?.stop();
    if (gw) removeDir(gw.dir);
    rmSync(pki, { recursive: true, force: true });
  });

  test("a renewed certificate at the same path is served after SIGHUP; a connected device stays connected", async () => {
    expect(await servedCn(gw.port)).toBe("cert-one");
    const d = await TestDevice.connect(gw.port, "127.0.0.1", { rejectUnauthorized: false });
    expect((await d.hello({ device: "tls-stays", token: gw.token("tls-stays") })).op).toBe("welcome");
    copyFileSync(join(pki, "cert-two.pem"), join(pki, "server.pem"));
    copyFileSync(join(pki, "cert-two.key"), join(pki, "server.key"));
    gw.proc.kill("SIGHUP");
    await logged(gw, "Reloaded settings applied", 2);
    // Both workers serve the new certificate: every new connection, whichever worker takes it.
    for (let i = 0; i < 8; i++) expect(await servedCn(gw.port)).toBe("cert-two");
    d.send({ op: "ping" });
    expect((await d.op("pong")).op).toBe("pong");
    expect(d.closed).toBe(false);
    d.close();
  });

  test("log.level from the config file applies live; device.keepalive_s needs a restart and is kept", async () => {
    writeConfig(`max_connections = 100\nkeepalive_s = 30\n[log]\nlevel = "debug"`);
    const connected = () => gw.json().filter((l) => l.msg === "Device connected" && l.hardware_id === "chatty-now");
    const d0 = await TestDevice.connect(gw.port, "127.0.0.1", { rejectUnauthorized: false });
    await d0.hello({ device: "chatty-now", token: gw.token("chatty-now") });
    d0.close();
    gw.proc.kill("SIGHUP");
    const restartOnly = (l: Record<string, any>) => String(l.msg).startsWith("Reload: device.keepalive_s changed but needs a restart");
    for (let i = 0; i < 100 && !gw.json().some(restartOnly); i++) await Bun.sleep(25);
    expect(gw.json().find(restartOnly)?.level).toBe("warn");
    await logged(gw, "Reloaded settings applied", 4);
    expect(connected()).toEqual([]); // at info level, welcomes are not logged
    const dev = await TestDevice.connect(gw.port, "127.0.0.1", { rejectUnauthorized: false });
    const welcome = await dev.hello({ device: "chatty-now", token: gw.token("chatty-now") });
    dev.close();
    // Now at debug level: the welcome is logged by the worker; devices still get the old keepalive.
    for (let i = 0; i < 100 && connected().length === 0; i++) await Bun.sleep(25);
    expect(connected()).toHaveLength(1);
    expect(welcome.keepalive).toBe(60);
  });

  test("an invalid config file changes nothing and says why", async () => {
    writeFileSync(config, `[device]\nmax_connections = "many"\n`);
    gw.proc.kill("SIGHUP");
    for (let i = 0; i < 100 && !gw.logs.some((l) => l.includes("Reload refused, nothing changed")); i++) await Bun.sleep(25);
    const line = gw.json().find((l) => String(l.msg).startsWith("Reload refused, nothing changed"));
    expect(line?.level).toBe("error");
    expect(String(line?.msg)).toContain("max_connections");
    expect(await servedCn(gw.port)).toBe("cert-two");
    expect(gw.proc.exitCode).toBeNull();
  });

  test("device.max_connections and device.hello_timeout_ms apply live to new connections; a connected device stays", async () => {
    const opts = { rejectUnauthorized: false };
    writeConfig(`max_connections = 100\n[log]\nlevel = "info"`);
    gw.proc.kill("SIGHUP");
    await logged(gw, "Reloaded settings applied", 6);
    const stays = await TestDevice.connect(gw.port, "127.0.0.1", opts);
    expect((await stays.hello({ device: "live-stays", token: gw.token("live-stays") })).op).toBe("welcome");

    // One connection per worker (2 workers): of three new devices at least one is refused.
    writeConfig(`max_connections = 1\nhello_timeout_ms = 300\n[log]\nlevel = "info"`);
    gw.proc.kill("SIGHUP");
    await logged(gw, "Reloaded settings applied", 8);
    const answers: string[] = [];
    const opened: TestDevice[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await TestDevice.connect(gw.port, "127.0.0.1", opts);
      opened.push(d);
      d.send({ op: "hello", v: 1, device: `live-${i}`, token: gw.token(`live-${i}`) });
      // Over TLS a refused socket is closed before its handshake completes, without the
      // server_busy frame a plain connection gets (see tests/limits.test.ts).
      answers.push(await d.next((f) => f.op === "welcome" || f.op === "error").then((f) => String(f.code ?? "welcome"), () => "closed"));
    }
    expect(answers.filter((a) => a !== "welcome").length).toBeGreaterThanOrEqual(1);
    expect(answers.filter((a) => a !== "welcome" && a !== "server_busy" && a !== "closed")).toEqual([]);
    stays.send({ op: "ping" });
    expect((await stays.op("pong")).op).toBe("pong");
    for (const d of opened) d.close();
    stays.close();

    // A connection that never says hello is closed after the reloaded 300 ms (the default is 10 s).
    writeConfig(`max_connections = 100\nhello_timeout_ms = 300\n[log]\nlevel = "info"`);
    gw.proc.kill("SIGHUP");
    await logged(gw, "Reloaded settings applied", 10);
    const silent = await TestDevice.connect(gw.port, "127.0.0.1", opts);
    await silent.waitClosed(5000);
    const all = await Promise.all([0, 1, 2].map(async (i) => {
      const d = await TestDevice.connect(gw.port, "127.0.0.1", opts);
      const w = await d.hello({ device: `live-again-${i}`, token: gw.token(`live-again-${i}`) });
      d.close();
      return w.op;
    }));
    expect(all).toEqual(["welcome", "welcome", "welcome"]);
  });
});
