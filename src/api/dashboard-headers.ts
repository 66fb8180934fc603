/**
 * Security headers of the dashboard page: a Content-Security-Policy that allows only the page's
 * own inline script and style (by their SHA-256) and requests to the same origin, and
 * X-Frame-Options against framing (clickjacking).
 *
 * @module
 */
import { createHash } from "node:crypto";

/** `'sha256-…'` source expressions of every inline `<tag>` block in `html`, exactly as browsers hash them. */
export function inlineHashes(html: string, tag: "script" | "style"): string[] {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g");
  return [...html.matchAll(re)].map((m) => `'sha256-${createHash("sha256").update(m[1]!, "utf8").digest("base64")}'`);
}

/** The response headers for the dashboard page `html`. */
export function dashboardHeaders(html: string): Record<string, string> {
  const csp = [
    "default-src 'none'",
    `script-src ${inlineHashes(html, "script").join(" ")}`,
    `style-src ${inlineHashes(html, "style").join(" ")}`,
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return {
    "Content-Security-Policy": csp,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
  };
}
