/**
 * `auth.mode = "cert"` (issue 13.5): the device's client certificate (CN or a DNS/URI/email
 * SAN) must name the hardware id of its hello; a certificate on the CRL is refused; TLS below
 * `device.tls_min_version` is refused. Certificates are made by `openssl` here.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestDevice } from "./helpers/device.ts";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";

const pki = mkdtempSync(join(tmpdir(), "owsla-cert-id-"));
const sh = (cmd: string) => {
  const r = Bun.spawnSync(["bash", "-c", cmd], { cwd: pki, stderr: "pipe" });
  if (!r.success) throw new Error(`${cmd}: ${r.stderr}`);
};
const haveOpenssl = Bun.which("openssl") !== null;
const EC = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

/** Issues `<name>.pem`/`<name>.key` with subject CN `cn`, signed by the test CA, with optional SANs. */
function issue(name: string, cn: string, san?: string): void {
  sh(`openssl req ${EC} -subj "/CN=${cn}" -keyout ${name}.key -out ${name}.csr`);
  const ext = san ? `-extfile ${name}.ext` : "";
  if (san) sh(`printf 'subjectAltName=${san}' > ${name}.ext`);
  sh(`openssl x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 ${ext} -out ${name}.pem`);
}

beforeAll(() => {
  if (!haveOpenssl) return;
  sh(`openssl req -x509 ${EC} -days 2 -subj /CN=owsla-cert-test-ca -keyout ca.key -out ca.pem`);
  issue("server", "localhost", "IP:127.0.0.1,DNS:localhost");
  issue("cn-dev", "cert-dev-1");
  issue("san-dev", "label-not-an-id", "DNS:cert-dev-2,URI:urn:owsla:cert-dev-2b");
  issue("revoked-dev", "cert-dev-3");
  // A CRL listing revoked-dev, signed by the CA.
  sh(
    "mkdir -p db && touch db/index.txt && echo 01 > db/crlnumber && " +
      "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=db/index.txt\\ncrlnumber=db/crlnumber\\ndefault_md=sha256\\ndefault_crl_days=2\\n' > ca.cnf && " +
      "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -revoke revoked-dev.pem && " +
      "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -gencrl -out crl.pem",
  );
});

afterAll(() => rmSync(pki, { recursive: true, force: true }));

const file = (n: string) => readFileSync(join(pki, n), "utf8");

describe.skipIf(!haveOpenssl)("certificate identity (auth.mode cert)", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      gatewayId: "cert-id",
      waitBroker: false,
      args: [
        "--workers", "1", "--auth-mode", "cert", "--auth-ban-failures", "0",
        "--device-tls-cert", join(pki, "server.pem"), "--device-tls-key", join(pki, "server.key"),
        "--device-tls-client-ca", join(pki, "ca.pem"), "--device-tls-crl", join(pki, "crl.pem"),
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

  test("TLS 1.2 is refused when device.tls_min_version is 1.3; TLS 1.3 is served", async () => {
    const hello = JSON.stringify({ op: "hello", v: 1, device: "cert-dev-1" }) + "\n" + JSON.stringify({ op: "bye" }) + "\n";
    const run = async (version: string) => {
      const p = Bun.spawn(
        ["openssl", "s_client", "-connect", `127.0.0.1:${gw.port}`, version, "-CAfile", join(pki, "ca.pem"), "-cert", join(pki, "cn-dev.pem"), "-key", join(pki, "cn-dev.key"), "-quiet"],
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
