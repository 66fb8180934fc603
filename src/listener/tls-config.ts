/**
 * The device listener's TLS settings: PEM files named in the config, read once at start, and
 * how they become Bun `tls` options (client CA, CRL, lowest protocol version).
 */
import { readFileSync } from "node:fs";
import type { Config } from "../config/types.ts";

/** Lowest TLS version a device may use. */
export type TlsMinVersion = "1.2" | "1.3";

/** PEM contents and options for a TLS device listener. */
export interface TlsFiles {
  cert: string;
  key: string;
  /** When set, devices must present a client certificate signed by this CA. */
  clientCa?: string;
  /** Certificate revocation list(s) of the client CA (PEM); a listed certificate is refused. */
  crl?: string;
  /** Lowest TLS version accepted; default "1.2" (Bun never accepts 1.0 or 1.1). */
  minVersion?: TlsMinVersion;
}

/** OpenSSL/BoringSSL `SSL_OP_NO_TLSv1_2`: refuse TLS 1.2 (what `minVersion` "1.3" sets). */
export const SSL_OP_NO_TLSV1_2 = 0x08000000;

/** Reads the device listener's TLS files named in the config (none when tls_cert is empty). */
export function readTlsFiles(config: Config): TlsFiles | undefined {
  const { tls_cert, tls_key, tls_client_ca, tls_crl, tls_min_version } = config.device;
  if (!tls_cert && !tls_key && !tls_client_ca && !tls_crl) return undefined;
  if (!tls_cert || !tls_key) throw new Error("Invalid config: device.tls_cert and device.tls_key must be set together (PEM files)");
  if (tls_crl && !tls_client_ca) throw new Error("Invalid config: device.tls_crl needs device.tls_client_ca (the CA whose certificates it revokes)");
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (e) {
      throw new Error(`Cannot read ${key} ${path}: ${(e as Error).message}; check the path and that the gateway's user may read it`);
    }
  };
  const crl = tls_crl ? read("device.tls_crl", tls_crl) : undefined;
  if (crl !== undefined && !crl.includes("-----BEGIN X509 CRL-----")) {
    throw new Error(`Invalid device.tls_crl ${tls_crl}: no "BEGIN X509 CRL" block; give the CRL in PEM form (openssl crl -inform DER -in file.crl -out file.pem)`);
  }
  return {
    cert: read("device.tls_cert", tls_cert),
    key: read("device.tls_key", tls_key),
    clientCa: tls_client_ca ? read("device.tls_client_ca", tls_client_ca) : undefined,
    crl,
    minVersion: tls_min_version,
  };
}

/** The `tls` option of `Bun.listen` for `files`. */
export function bunTlsOptions(files: TlsFiles): Record<string, unknown> {
  return {
    cert: files.cert,
    key: files.key,
    ...(files.clientCa ? { ca: files.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    ...(files.clientCa && files.crl ? { crl: files.crl } : {}),
    ...(files.minVersion === "1.3" ? { secureOptions: SSL_OP_NO_TLSV1_2 } : {}),
  };
}
