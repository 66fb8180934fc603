/**
 * `auth.mode = "cert"` (issue 13.5): the device's client certificate (CN or a DNS/URI/email
 * SAN) must name the hardware id of its hello; a certificate on the CRL is refused; TLS below
 * `device.tls_min_version` is refused. Certificates are made by `openssl` here.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestDevice } from "./helpers/device.ts";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { HAVE_OPENSSL, TestPki } from "./helpers/pki.ts";
import { waitFor } from "./helpers/util.ts";

const pki = new TestPki();

beforeAll(() => {
  if (!HAVE_OPENSSL) return;
  pki.makeCa("owsla-cert-test-ca");
  pki.issue("server", "localhost", "IP:127.0.0.1,DNS:localhost");
  pki.issue("cn-dev", "cert-dev-1");
  pki.issue("san-dev", "label-not-an-id", "DNS:cert-dev-2,URI:urn:owsla:cert-dev-2b");
  pki.issue("revoked-dev", "cert-dev-3");
  pki.revoke("revoked-dev");
});

afterAll(() => pki.remove());

const file = (n: string) => pki.file(n);

describe.skipIf(!HAVE_OPENSSL)("certificate identity (auth.mode cert)", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      gatewayId: "cert-id",
      waitBroker: false,
      args: [
        "--workers", "1", "--auth-mode", "cert", "--auth-ban-failures", "0",
        "--device-tls-cert", pki.path("server.pem"), "--device-tls-key", pki.path("server.key"),
        "--device-tls-client-ca", pki.path("ca.pem"), "--device-tls-crl", pki.path("crl.pem"),
        "--device-tls-min-version", "1.3",
      ],
    });
  });
  afterAll(async () => {
    await gw.stop();
    removeDir(gw.dir);
  });

  /** Connects with client certificate `name` and says hello for `device` (no token); returns the answer or null. */
  async function helloAs(name: string, device: string): Promise<Record<string, unknown> | null> {
    let d: TestDevice;
    try {
      d = await TestDevice.connect(gw.port, "127.0.0.1", { ca: file("ca.pem"), serverName: "localhost", cert: file(`${name}.pem`), key: file(`${name}.key`) });
    } catch {
      return null;
    }
    try {
      d.send({ op: "hello", v: 1, device });
      return await d.next((f) => f.op === "welcome" || f.op === "error", 2000).catch(() => null);
    } finally {
      d.close();
    }
  }

  test("a certificate whose CN is the hardware id gets welcome without a token", async () => {
    expect(await helloAs("cn-dev", "cert-dev-1")).toMatchObject({ op: "welcome" });
  });

  test("a certificate whose DNS or URI SAN is the hardware id gets welcome", async () => {
    expect(await helloAs("san-dev", "cert-dev-2")).toMatchObject({ op: "welcome" });
    expect(await helloAs("san-dev", "urn:owsla:cert-dev-2b")).toMatchObject({ op: "welcome" });
  });

  test("a hello for any other hardware id is refused with unauthorized", async () => {
    for (const [cert, other] of [["cn-dev", "cert-dev-2"], ["san-dev", "cert-dev-1"], ["san-dev", "label-not-an-id-2"]] as const) {
      const r = await helloAs(cert, other);
      expect(r).toMatchObject({ op: "error", code: "unauthorized" });
      expect(String(r!.message)).toContain("the client certificate does not name this hardware id");
    }
  });

  test("a certificate on the CRL never reaches hello", async () => {
    expect((await helloAs("revoked-dev", "cert-dev-3"))?.op).not.toBe("welcome");
    expect(await helloAs("revoked-dev", "cert-dev-3")).toBeNull();
  });

  test("a CRL renewed at the same path applies on reload (SIGHUP): the newly revoked certificate is refused, connected devices stay", async () => {
    const d = await TestDevice.connect(gw.port, "127.0.0.1", { ca: file("ca.pem"), serverName: "localhost", cert: file("san-dev.pem"), key: file("san-dev.key") });
    d.send({ op: "hello", v: 1, device: "cert-dev-2" });
    await d.op("welcome");
    expect(await helloAs("cn-dev", "cert-dev-1")).toMatchObject({ op: "welcome" });
    pki.revoke("cn-dev");
    const before = gw.json().filter((l) => l.msg === "Reloaded settings applied").length;
    gw.proc.kill("SIGHUP");
    await waitFor("the worker applied the reload", () => gw.json().filter((l) => l.msg === "Reloaded settings applied").length > before);
    expect(await helloAs("cn-dev", "cert-dev-1")).toBeNull();
    expect(await helloAs("revoked-dev", "cert-dev-3")).toBeNull();
    d.send({ op: "ping" });
    expect((await d.op("pong")).op).toBe("pong");
    d.close();
  });

  test("TLS 1.2 is refused when device.tls_min_version is 1.3; TLS 1.3 is served", async () => {
    const hello = JSON.stringify({ op: "hello", v: 1, device: "cert-dev-2" }) + "\n" + JSON.stringify({ op: "bye" }) + "\n";
    const run = async (version: string) => {
      const p = Bun.spawn(
        ["openssl", "s_client", "-connect", `127.0.0.1:${gw.port}`, version, "-CAfile", pki.path("ca.pem"), "-cert", pki.path("san-dev.pem"), "-key", pki.path("san-dev.key"), "-quiet"],
        { stdin: "pipe", stdout: "pipe", stderr: "pipe" },
      );
      p.stdin.write(hello);
      p.stdin.flush();
      const timer = setTimeout(() => p.kill(), 4000);
      const out = await new Response(p.stdout).text();
      clearTimeout(timer);
      return out;
    };
    const [v12, v13] = await Promise.all([run("-tls1_2"), run("-tls1_3")]);
    expect(v12).not.toContain("welcome");
    expect(v13).toContain('"op":"welcome"');
  });
});
