/**
 * MQTT over TLS (`mqtt.tls_port`) with the device TLS settings: certificate identity
 * (auth.mode cert: the client certificate must name the client id), the CRL, and no plain MQTT
 * port while device TLS is on. Certificates are made by `openssl`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectAsync } from "mqtt";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { HAVE_OPENSSL, TestPki } from "./helpers/pki.ts";

const pki = new TestPki();

beforeAll(() => {
  if (!HAVE_OPENSSL) return;
  pki.makeCa("owsla-mqtt-tls-ca");
  pki.issue("server", "localhost", "IP:127.0.0.1,DNS:localhost");
  pki.issue("dev", "mqtt-cert-dev");
  pki.issue("revoked", "mqtt-cert-revoked");
  pki.revoke("revoked");
});

afterAll(() => pki.remove());

describe.skipIf(!HAVE_OPENSSL)("MQTT over TLS with certificate identity", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      gatewayId: "mqtt-tls",
      waitBroker: false,
      args: [
        "--workers", "1", "--auth-mode", "cert", "--auth-ban-failures", "0",
        "--device-tls-cert", pki.path("server.pem"), "--device-tls-key", pki.path("server.key"),
        "--device-tls-client-ca", pki.path("ca.pem"), "--device-tls-crl", pki.path("crl.pem"),
      ],
    });
  });
  afterAll(async () => {
    await gw.stop();
    removeDir(gw.dir);
  });

  /** Connects over TLS with client certificate `name` as `clientId`; resolves with the outcome. */
  async function connectAs(name: string, clientId: string): Promise<string> {
    try {
      const c = await connectAsync(`mqtts://127.0.0.1:${gw.mqttTlsPort}`, {
        clientId, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000,
        ca: pki.file("ca.pem"), cert: pki.file(`${name}.pem`), key: pki.file(`${name}.key`), servername: "localhost",
      });
      await c.endAsync();
      return "connected";
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      return typeof code === "number" ? `refused 0x${code.toString(16)}` : "failed";
    }
  }

  test("a certificate naming the client id connects without a password", async () => {
    expect(await connectAs("dev", "mqtt-cert-dev")).toBe("connected");
  });

  test("a certificate naming another hardware id is refused with 0x87 Not authorized", async () => {
    expect(await connectAs("dev", "someone-else")).toBe("refused 0x87");
  });

  test("a revoked certificate never gets a CONNACK", async () => {
    expect(await connectAs("revoked", "mqtt-cert-revoked")).toBe("failed");
  });

  test("no plain MQTT while device TLS is on", async () => {
    const plain = await Bun.connect({ hostname: "127.0.0.1", port: gw.mqttPort, socket: { data() {} } }).then(
      (s) => (s.end(), "open"),
      () => "refused",
    );
    expect(plain).toBe("refused");
  });
});
