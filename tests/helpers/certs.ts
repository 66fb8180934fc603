/** Test certificates made with `openssl`: a CA, server and client certificates signed by it. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Paths of a generated CA and the certificates it signed. */
export interface CertSet {
  dir: string;
  ca: string;
  caKey: string;
  /** `issue(name, cn, san?)` writes `<name>.pem` and `<name>.key` signed by this CA. */
  issue(name: string, cn: string, san?: string): { cert: string; key: string };
}

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

/** A fresh CA (CN `caName`) in a new temporary directory. */
export function makeCa(caName = "Owsla Test CA"): CertSet {
  const dir = mkdtempSync(join(tmpdir(), "owsla-certs-"));
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${caName}`, "-keyout", "ca.key", "-out", "ca.pem"], dir);
  return {
    dir,
    ca: join(dir, "ca.pem"),
    caKey: join(dir, "ca.key"),
    issue(name, cn, san) {
      openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-keyout", `${name}.key`, "-out", `${name}.csr`], dir);
      const ext = join(dir, `${name}.ext`);
      writeFileSync(ext, [san ? `subjectAltName=${san}` : "", "basicConstraints=CA:FALSE", ""].join("\n"));
      openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", `${name}.pem`, "-extfile", ext], dir);
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    },
  };
}
