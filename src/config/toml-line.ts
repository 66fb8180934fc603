/**
 * Where a TOML parse error is. `Bun.TOML.parse` throws a message without a position, so the
 * line is found by parsing prefixes: the error is on the line after the longest prefix of whole
 * lines that still parses (for a multi-line array or string, the line it starts on).
 */

/** The 1-based line of the first TOML syntax error in `text`, or null when it parses. */
export function tomlErrorLine(text: string, parse: (t: string) => unknown = (t) => Bun.TOML.parse(t)): number | null {
  const ok = (t: string) => {
    try {
      parse(t);
      return true;
    } catch {
      return false;
    }
  };
  if (ok(text)) return null;
  const lines = text.split("\n");
  for (let k = lines.length - 1; k > 0; k--) {
    if (ok(lines.slice(0, k).join("\n") + "\n")) return k + 1;
  }
  return 1;
}
