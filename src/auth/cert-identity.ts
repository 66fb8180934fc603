/**
 * Device identity from a TLS client certificate (`auth.mode = "cert"`): the names a verified
 * certificate carries (subject CN and subjectAltName DNS, URI and email entries), and whether
 * one of them is the hardware id a hello claims.
 */

/** The part of a Bun TLS socket read here. */
export interface PeerCertSource {
  readonly authorized?: boolean;
  getPeerCertificate?(): { subject?: Record<string, string | string[]>; subjectaltname?: string } | null | undefined;
}

/** SAN entry kinds that can name a hardware id. */
const SAN_KINDS = ["DNS", "URI", "email"];

/**
 * Splits an OpenSSL-style subjectAltName string (`DNS:a, URI:urn:x, DNS:"b, c"`) into entries;
 * a value holding a comma or a quote is quoted and escaped JSON-style.
 */
export function parseSubjectAltName(text: string): { kind: string; value: string }[] {
  const out: { kind: string; value: string }[] = [];
  const re = /\s*([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text))) {
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        // Keep it quoted: it then names nothing, which is the safe outcome.
      }
    }
    out.push({ kind: m[1]!.trim(), value });
  }
  return out;
}

/**
 * The names of a verified peer certificate: CN values first, then DNS, URI and email SANs.
 * Null when the socket has no verified certificate (plain TCP, no client certificate, or one
 * that failed verification).
 */
export function certificateNames(socket: PeerCertSource): string[] | null {
  if (socket.authorized !== true || typeof socket.getPeerCertificate !== "function") return null;
  let cert;
  try {
    cert = socket.getPeerCertificate();
  } catch {
    return null;
  }
  if (!cert || !cert.subject) return null;
  const cn = cert.subject.CN;
  const names = cn === undefined ? [] : Array.isArray(cn) ? [...cn] : [cn];
  for (const e of parseSubjectAltName(cert.subjectaltname ?? "")) if (SAN_KINDS.includes(e.kind)) names.push(e.value);
  return names;
}

/** Whether `names` (from {@link certificateNames}) include `hardwareId`, compared exactly. */
export function certificateNamesDevice(names: readonly string[] | null, hardwareId: string): boolean {
  return names !== null && names.includes(hardwareId);
}
