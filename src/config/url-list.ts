/**
 * Lists of broker URLs. `broker.url` holds one or more AMQP URLs: a TOML array, or one string
 * with the URLs separated by commas (environment, flags). A comma is also a legal character
 * inside a URL (a password, a vhost), and the AMQP URL parser accepts `amqp://h/,amqp://x` as
 * one URL with a strange vhost, so a list is split only where a comma is followed by a new
 * `amqp://` or `amqps://` scheme. A password containing `,amqp://` must be percent-encoded.
 */

const SEPARATOR = /\s*,\s*(?=amqps?:\/\/)/i;

/** The URLs of a comma-separated list, in order; blanks are dropped. */
export function splitUrlList(list: string): string[] {
  return list
    .trim()
    .split(SEPARATOR)
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
}

/** `host:port` of an AMQP URL (the default port filled in), for logs and metric labels; never the credentials. */
export function nodeLabel(url: string): string {
  try {
    const u = new URL(url);
    const port = u.port || (u.protocol === "amqps:" ? "5671" : "5672");
    return `${u.hostname}:${port}`;
  } catch {
    return "invalid-url";
  }
}

/**
 * `text` with every password (and user:password pair) of `urls` replaced by `***`. Broker
 * errors echo parts of the URL (a "vhost not found" error echoes the vhost, which is the rest
 * of a mistyped list, password included), so anything the broker says about a URL goes
 * through here before it is logged.
 */
export function scrubSecrets(text: string, urls: readonly string[]): string {
  let out = text;
  for (const url of urls) {
    for (const secret of passwords(url)) if (secret.length > 0) out = out.split(secret).join("***");
  }
  return out;
}

function passwords(url: string): string[] {
  const found: string[] = [];
  let decoded = url;
  try {
    decoded = decodeURIComponent(url);
  } catch {
    // Not valid percent-encoding: the raw form is all there is.
  }
  // Every `user:password@` in the text, however many URLs were glued together, also those
  // that only appear once decoded (a vhost `,amqp:%2F%2Fu:pw@h` is echoed decoded).
  for (const m of `${url} ${decoded}`.matchAll(/\/\/[^/@\s]*?:([^@\s]*)@/g)) {
    const p = m[1]!;
    found.push(p);
    try {
      const decoded = decodeURIComponent(p);
      if (decoded !== p) found.push(decoded);
    } catch {
      // Not valid percent-encoding: the raw form is enough.
    }
  }
  return found;
}

/**
 * Index of the node a link tries first: picked from its connection name (gateway id and
 * worker), so the links of a site spread over the nodes instead of all landing on the first
 * URL (measured: with every gateway on node 1, that node did 3.7x the CPU of the others).
 */
export function startNode(name: string, nodes: number): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return nodes > 0 ? h % nodes : 0;
}
