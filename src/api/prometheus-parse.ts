/**
 * Reads Prometheus text exposition back, for tests and the tools that check a running gateway
 * (chaos and hostile suites). Not used by the gateway itself.
 *
 * @module
 */

/** Sample lines as `name{labels}` → value, exactly as written. Throws on a malformed line. */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`Malformed exposition line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * The gateway-wide value of every series: samples summed over the `worker` label (which is
 * dropped), like `sum without (worker) (...)` in PromQL. `owsla_connections` → total connections,
 * `owsla_closes_total{reason="bye"}` → closes for that reason on all workers.
 */
export function sumOverWorkers(samples: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [series, value] of samples) {
    const m = /^([^{]+)(?:\{(.*)\})?$/.exec(series)!;
    const labels = (m[2] ?? "")
      .split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/)
      .filter((l) => l !== "" && !l.startsWith("worker="));
    const key = labels.length ? `${m[1]}{${labels.join(",")}}` : m[1]!;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}
