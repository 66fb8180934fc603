/**
 * Start-up failures against real gateway processes: a device or API port held by another
 * program (a plain listener, or a second gateway whose workers would otherwise have shared the
 * port through SO_REUSEPORT) is one error line and exit code 3, and no worker is started.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BROKER_URL, freePort, owslaCommand, removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { TestDevice } from "./helpers/device.ts";

/** Runs `owsla serve` to its end; returns the exit code and the log lines (stdout and stderr). */
async function serveUntilExit(args: string[]): Promise<{ code: number; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "owsla-startup-"));
  try {
    const p = Bun.spawn([...owslaCommand(), "serve", "--data", dir, "--broker", BROKER_URL, "--log-format", "json", "--workers", "2", "--mqtt-port", "0", "--mqtt-tls-port", "0", ...args], {
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    const killer = setTimeout(() => p.kill("SIGKILL"), 20_000);
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(killer);
    return { code, lines: (out + err).split("\n").filter(Boolean) };
  } finally {
    removeDir(dir);
  }
}

/** Error lines, and any other line that is not a JSON log line (the API token notice aside). */
const errors = (lines: string[]) => lines.filter((l) => l.includes('"level":"error"') || !(l.startsWith("{") || l.includes("control API token") || /^ {2}[0-9a-f]{48}$/.test(l)));
const workerStarts = (lines: string[]) => lines.filter((l) => l.includes('"msg":"Worker started"'));

describe("start-up failures", () => {
  test("a device port held by another program: one error line, exit 3, no worker started", async () => {
    const port = freePort();
    const holder = Bun.listen({ hostname: "0.0.0.0", port, socket: { data() {} } });
    try {
      const { code, lines } = await serveUntilExit(["--port", String(port), "--api-port", "0"]);
      expect(code).toBe(3);
      expect(errors(lines)).toHaveLength(1);
      expect(errors(lines)[0]).toContain(`Cannot start: device port 0.0.0.0:${port} is not free (address already in use)`);
      expect(errors(lines)[0]).toContain("set device.port");
      expect(workerStarts(lines)).toEqual([]);
    } finally {
      holder.stop(true);
    }
  });

  test("an MQTT port held by another program (an MQTT broker): one error line, exit 3, no worker started", async () => {
    const holder = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
    try {
      const { code, lines } = await serveUntilExit(["--port", String(freePort()), "--api-port", "0", "--mqtt-port", String(holder.port)]);
      expect(code).toBe(3);
      expect(errors(lines)).toHaveLength(1);
      expect(errors(lines)[0]).toContain(`Cannot start: mqtt.port 0.0.0.0:${holder.port} is not free (address already in use)`);
      expect(errors(lines)[0]).toContain("mqtt.enabled = false");
      expect(workerStarts(lines)).toEqual([]);
    } finally {
      holder.stop(true);
    }
  });

  test("a device port held with SO_REUSEPORT (as a gateway's workers hold it) is refused too", async () => {
    const port = freePort();
    const holder = Bun.listen({ hostname: "0.0.0.0", port, socket: { data() {} }, ...({ reusePort: true } as object) });
    try {
      const { code, lines } = await serveUntilExit(["--port", String(port), "--api-port", "0"]);
      expect(code).toBe(3);
      expect(errors(lines)).toHaveLength(1);
      expect(workerStarts(lines)).toEqual([]);
    } finally {
      holder.stop(true);
    }
  });

  test("an API port held by another program: one error line naming api.port, exit 3, no worker started", async () => {
    const apiPort = freePort();
    const holder = Bun.listen({ hostname: "127.0.0.1", port: apiPort, socket: { data() {} } });
    try {
      const { code, lines } = await serveUntilExit(["--port", String(freePort()), "--api-port", String(apiPort)]);
      expect(code).toBe(3);
      expect(errors(lines)).toHaveLength(1);
      expect(errors(lines)[0]).toContain(`Cannot start: control API port 127.0.0.1:${apiPort} is not free`);
      expect(errors(lines)[0]).toContain("set api.port");
      expect(workerStarts(lines)).toEqual([]);
    } finally {
      holder.stop(true);
    }
  });

  test("an unreadable TLS certificate: one error line naming the key, exit 3, no worker started", async () => {
    const { code, lines } = await serveUntilExit(["--port", String(freePort()), "--api-port", "0", "--device-tls-cert", "/nonexistent/cert.pem", "--device-tls-key", "/nonexistent/key.pem"]);
    expect(code).toBe(3);
    expect(errors(lines)).toHaveLength(1);
    expect(errors(lines)[0]).toContain("Cannot start: Cannot read device.tls_cert /nonexistent/cert.pem");
    expect(workerStarts(lines)).toEqual([]);
  });

  test("workers that cannot start (a certificate that is not PEM) stop the gateway with exit 3 instead of a restart loop", async () => {
    const dir = mkdtempSync(join(tmpdir(), "owsla-badpem-"));
    try {
      writeFileSync(join(dir, "cert.pem"), "not a certificate\n");
      writeFileSync(join(dir, "key.pem"), "not a key\n");
      const { code, lines } = await serveUntilExit(["--port", String(freePort()), "--api-port", "0", "--device-tls-cert", join(dir, "cert.pem"), "--device-tls-key", join(dir, "key.pem")]);
      expect(code).toBe(3);
      expect(lines.filter((l) => l.includes("Worker exited; restarting it"))).toEqual([]);
      expect(workerStarts(lines)).toHaveLength(2);
      // One line per worker that failed, each saying why; nothing else at error level.
      const errs = errors(lines);
      expect(errs.length).toBeGreaterThanOrEqual(1);
      expect(errs.length).toBeLessThanOrEqual(2);
      for (const e of errs) expect(e).toContain("Cannot start: Cannot listen for devices on 0.0.0.0:");
      for (const e of errs) expect(e).toContain(" with the TLS files: ");
      expect(errs[0]).toContain("check that device.tls_cert and device.tls_key are a matching PEM certificate and key");
    } finally {
      removeDir(dir);
    }
  });

  test("an invalid setting is exit 2 with one line", async () => {
    const { code, lines } = await serveUntilExit(["--port", "70000"]);
    expect(code).toBe(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("device.port");
  });
});

describe("no second gateway on the same device port", () => {
  let first: GatewayProcess;
  beforeAll(async () => {
    first = await startGateway({ gatewayId: "first", waitBroker: false, args: ["--workers", "2"] });
  });
  afterAll(async () => {
    await first?.stop();
    if (first) removeDir(first.dir);
  });

  test("a second gateway (other id and data dir) started on the port exits 3 and takes no connection", async () => {
    const { code, lines } = await serveUntilExit(["--port", String(first.port), "--api-port", "0", "--gateway", "second"]);
    expect(code).toBe(3);
    expect(errors(lines)).toHaveLength(1);
    expect(errors(lines)[0]).toContain(`device port 0.0.0.0:${first.port} is not free`);
    expect(lines.some((l) => l.includes("all workers listening"))).toBe(false);
    // Every device still reaches the first gateway and is welcomed with its token.
    for (let i = 0; i < 10; i++) {
      const d = await TestDevice.connect(first.port);
      const w = await d.hello({ device: `solo-${i}`, token: first.token(`solo-${i}`) });
      expect(w.op).toBe("welcome");
      d.close();
    }
  });
});
