/** TLS on the device port: server certificate, optional client certificates, handshake deadline. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as netConnect } from "node:net";
import { TestDevice } from "./helpers/device.ts";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { HAVE_OPENSSL, TestPki } from "./helpers/pki.ts";

const pki = new TestPki();

beforeAll(() => {
  if (!HAVE_OPENSSL) return;
  pki.makeCa("owsla-test-ca");
  pki.issue("server", "localhost", "IP:127.0.0.1,DNS:localhost");
  pki.issue("client", "thermo-tls");
  pki.selfSigned("rogue", "intruder");
});

afterAll(() => pki.remove());

const file = (n: string) => pki.file(n);

describe.skipIf(!HAVE_OPENSSL)("TLS device listener", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      gatewayId: "tls",
      waitBroker: false,
      args: ["--workers", "1", "--device-tls-cert", pki.path("server.pem"), "--device-tls-key", pki.path("server.key"), "--device-hello-timeout-ms", "1500"],
    });
  });
  afterAll(async () => {
    await gw.stop();
    removeDir(gw.dir);
  });

  test("a TLS device verifying the server certificate gets welcome", async () => {
    const d = await TestDevice.connect(gw.port, "127.0.0.1", { ca: file("ca.pem"), serverName: "localhost" });
    const w = await d.hello({ device: "thermo-tls", token: gw.token("thermo-tls") });
    expect(w.op).toBe("welcome");
    d.send({ op: "ping" });
    await d.op("pong");
    d.close();
  });

  test("openssl s_client can speak the line protocol", async () => {
    const hello = JSON.stringify({ op: "hello", v: 1, device: "nc-tls", token: gw.token("nc-tls") }) + "\n";
    const p = Bun.spawn(["openssl", "s_client", "-connect", `127.0.0.1:${gw.port}`, "-CAfile", pki.path("ca.pem"), "-verify_return_error", "-quiet"], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    p.stdin.write(hello);
    p.stdin.flush();
    const dec = new TextDecoder();
    let out = "";
    const deadline = Date.now() + 5000;
    for await (const chunk of p.stdout) {
      out += dec.decode(chunk);
      if (out.includes("\n") || Date.now() > deadline) break;
    }
    p.kill();
    expect(JSON.parse(out.split("\n")[0]!).op).toBe("welcome");
  });

  test("a client that opens TCP but never completes the handshake is cut by the hello deadline", async () => {
    const sock = netConnect({ host: "127.0.0.1", port: gw.port });
    const closed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      sock.on("close", () => resolve(Date.now() - t0));
      sock.on("error", () => {});
    });
    const ms = await Promise.race([closed, Bun.sleep(8000).then(() => -1)]);
    sock.destroy();
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(5000);
  });
});

describe.skipIf(!HAVE_OPENSSL)("TLS with client certificates", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      gatewayId: "mtls",
      waitBroker: false,
      args: ["--workers", "1", "--device-tls-cert", pki.path("server.pem"), "--device-tls-key", pki.path("server.key"), "--device-tls-client-ca", pki.path("ca.pem")],
    });
  });
  afterAll(async () => {
    await gw.stop();
    removeDir(gw.dir);
  });

  test("a device with a certificate from the configured CA gets welcome", async () => {
    const d = await TestDevice.connect(gw.port, "127.0.0.1", { ca: file("ca.pem"), serverName: "localhost", cert: file("client.pem"), key: file("client.key") });
    expect((await d.hello({ device: "thermo-tls", token: gw.token("thermo-tls") })).op).toBe("welcome");
    d.close();
  });

  test("devices without a certificate, or with one from another CA, never reach hello", async () => {
    for (const extra of [{}, { cert: file("rogue.pem"), key: file("rogue.key") }]) {
      let welcomed = false;
      try {
        const d = await TestDevice.connect(gw.port, "127.0.0.1", { ca: file("ca.pem"), serverName: "localhost", ...extra });
        d.send({ op: "hello", v: 1, device: "thermo-tls", token: gw.token("thermo-tls") });
        welcomed = (await d.next(() => true, 1500).catch(() => null))?.op === "welcome";
        d.close();
      } catch {
        welcomed = false;
      }
      expect(welcomed).toBe(false);
    }
  });
});
