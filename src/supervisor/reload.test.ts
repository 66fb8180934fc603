import { describe, expect, test } from "bun:test";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { memoryLogger } from "../log/logger.ts";
import { configChanges } from "../config/live.ts";
import { helpText } from "../config/help.ts";
import { reloadConfig, type ReloadMessage } from "./reload.ts";

const cfg = (...args: string[]): Config => loadConfig(args, {}).config;

function rootLogger() {
  const log = memoryLogger("debug");
  const levels: string[] = [];
  return Object.assign(log, { setLevel: (l: string) => levels.push(l), levels });
}

describe("reloadConfig", () => {
  test("applies live keys, keeps restart-only keys and names them in the log", () => {
    const log = rootLogger();
    const sent: ReloadMessage[] = [];
    const running = cfg("--device-port", "7070", "--log-level", "info");
    const next = cfg("--device-port", "7071", "--log-level", "debug", "--device-max-connections", "50", "--device-hello-timeout-ms", "900");
    const now = reloadConfig(running, { load: () => next, readTls: () => undefined, log, broadcast: (m) => sent.push(m) });
    expect(now.device.port).toBe(7070);
    expect(now.log.level).toBe("debug");
    expect(now.device.max_connections).toBe(50);
    expect(log.levels).toEqual(["debug"]);
    expect(sent).toEqual([{ t: "reload", level: "debug", maxConnections: 50, helloTimeoutMs: 900 }]);
    expect(log.lines.find((l) => l.level === "warn")?.msg).toBe("Reload: device.port changed but needs a restart (systemctl restart owsla); the running values stay until then");
    expect(log.lines.find((l) => l.msg === "Reloaded settings")).toMatchObject({ changed: ["device.hello_timeout_ms", "device.max_connections", "log.level"], tls_files_reread: false });
  });

  test("an invalid configuration changes nothing and says why", () => {
    const log = rootLogger();
    const sent: ReloadMessage[] = [];
    const running = cfg();
    const now = reloadConfig(running, {
      load: () => loadConfig(["--device-port", "99999"], {}).config,
      readTls: () => undefined,
      log,
      broadcast: (m) => sent.push(m),
    });
    expect(now).toBe(running);
    expect(sent).toEqual([]);
    expect(String(log.lines.find((l) => l.level === "error")?.msg)).toMatch(/^Reload refused, nothing changed: .*device.port/);
  });

  test("TLS files are read again and sent even when their paths did not change; unreadable ones refuse the reload", () => {
    const log = rootLogger();
    const sent: ReloadMessage[] = [];
    const running = cfg("--device-tls-cert", "/c.pem", "--device-tls-key", "/k.pem");
    reloadConfig(running, { load: () => running, readTls: () => ({ cert: "C2", key: "K2" }), log, broadcast: (m) => sent.push(m) });
    expect(sent[0]!.tls).toEqual({ cert: "C2", key: "K2" });
    const refused = reloadConfig(running, {
      load: () => running,
      readTls: () => {
        throw new Error("Cannot read device.tls_cert /c.pem: ENOENT");
      },
      log,
      broadcast: (m) => sent.push(m),
    });
    expect(refused).toBe(running);
    expect(sent.length).toBe(1);
  });

  test("turning TLS on needs a restart", () => {
    const log = rootLogger();
    const sent: ReloadMessage[] = [];
    const now = reloadConfig(cfg(), { load: () => cfg("--device-tls-cert", "/c.pem", "--device-tls-key", "/k.pem"), readTls: () => ({ cert: "C", key: "K" }), log, broadcast: (m) => sent.push(m) });
    expect(now.device.tls_cert).toBe("");
    expect(sent[0]!.tls).toBeUndefined();
    expect(log.lines.find((l) => l.level === "warn")?.msg).toMatch(/^Reload: device.tls_cert, device.tls_key changed but need a restart/);
  });
});

test("configChanges marks live keys", () => {
  expect(configChanges(cfg(), cfg("--log-level", "warn", "--workers-count", "3"))).toEqual([
    { name: "workers.count", live: false },
    { name: "log.level", live: true },
  ]);
});

test("owsla serve --help says which settings a reload changes", () => {
  const text = helpText("serve");
  expect(text).toContain("Reload (SIGHUP; `systemctl reload owsla`)");
  expect(text).toContain("log.level, device.tls_cert, device.tls_key, device.tls_client_ca, device.tls_crl, device.tls_min_version, device.max_connections, device.hello_timeout_ms");
});
