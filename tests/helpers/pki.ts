/**
 * A throw-away certificate authority for TLS tests, made with the `openssl` program: a CA, and
 * certificates it signs (EC P-256, valid 2 days), in a temporary directory.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether the `openssl` program is there (TLS tests are skipped without it). */
export const HAVE_OPENSSL = Bun.which("openssl") !== null;

const EC = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

/** A test CA in its own directory. */
export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), "owsla-pki-"));

  /** Runs a shell command in the directory; throws with its stderr on failure. */
  sh(cmd: string): void {
    const r = Bun.spawnSync(["bash", "-c", cmd], { cwd: this.dir, stderr: "pipe" });
    if (!r.success) throw new Error(`${cmd}: ${r.stderr}`);
  }

  /** Path of file `name` in the directory. */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** Contents of file `name`. */
  file(name: string): string {
    return readFileSync(this.path(name), "utf8");
  }

  /** Makes the CA (`ca.pem`, `ca.key`) with subject CN `cn`. */
  makeCa(cn: string): void {
    this.sh(`openssl req -x509 ${EC} -days 2 -subj "/CN=${cn}" -keyout ca.key -out ca.pem`);
  }

  /** Issues `<name>.pem` and `<name>.key` with subject CN `cn`, signed by the CA, with optional subjectAltName `san`. */
  issue(name: string, cn: string, san?: string): void {
    this.sh(`openssl req ${EC} -subj "/CN=${cn}" -keyout ${name}.key -out ${name}.csr`);
    if (san) this.sh(`printf 'subjectAltName=${san}' > ${name}.ext`);
    this.sh(`openssl x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 ${san ? `-extfile ${name}.ext` : ""} -out ${name}.pem`);
  }

  /** A self-signed certificate `<name>.pem`/`<name>.key` that no CA here signed. */
  selfSigned(name: string, cn: string): void {
    this.sh(`openssl req -x509 ${EC} -days 2 -subj "/CN=${cn}" -keyout ${name}.key -out ${name}.pem`);
  }

  /** Revokes the certificates `names` (adding to earlier revocations) and writes the CA's CRL to `crl.pem`. */
  revoke(...names: string[]): void {
    this.sh(
      "[ -f ca.cnf ] || { mkdir -p db && touch db/index.txt && echo 01 > db/crlnumber && " +
        "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=db/index.txt\\ncrlnumber=db/crlnumber\\ndefault_md=sha256\\ndefault_crl_days=2\\n' > ca.cnf; }",
    );
    for (const n of names) this.sh(`openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -revoke ${n}.pem`);
    this.sh("openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -gencrl -out crl.pem");
  }

  /** Removes the directory. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
