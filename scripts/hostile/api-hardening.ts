/**
 * Admin API hardening and secrets in logs. Runs a gateway twice on one data directory, with a
 * broker URL carrying a distinctive password (first the real broker, which refuses that login;
 * then a closed port), at log level debug, and checks:
 *  - the control API listens on loopback by default (log line and `ss -ltnp`);
 *  - every route but the probes (/healthz, /readyz) and / needs the bearer token;
 *  - 10 wrong tokens from one address get that address 429 for further wrong tokens, while the
 *    right token still works from there (nobody can lock the operator out without the token);
 *  - request bodies are capped (413), by Content-Length and when streamed chunked, without the
 *    supervisor's memory growing by the streamed size;
 *  - after a mix of traffic (devices with valid and wrong tokens, pubs, API calls that register
 *    devices, re-issue and revoke tokens, send commands, kick), no log line of either run
 *    contains the site secret, the API token (except the one "generated the control API token
 *    (shown once" notice on first start), any device token, or a broker password.
 *
 * Usage: bun scripts/hostile/api-hardening.ts [--workers 2] [--stream-mb 8]
 * Prints one JSON object (see scripts/hostile/README.md); exit 0 when all checks pass.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir } from "../../tests/helpers/gateway.ts";
import { Checks, runCli, type ScenarioResult } from "./lib/cli.ts";
import { HostileGateway } from "./lib/gateway.ts";
import { rssKb } from "./lib/proc.ts";
import { RawConn } from "./lib/raw.ts";
import { mb } from "./lib/stats.ts";

/** Options of {@link run}. */
export const API_DEFAULTS = {
  workers: 2,
  /** MiB streamed (chunked) at a route, which must be cut at the body cap. */
  stream_mb: 8,
  /** Devices with valid tokens in the traffic mix. */
  devices: 6,
};
export type ApiOptions = typeof API_DEFAULTS;

const USAGE = `
Usage: bun scripts/hostile/api-hardening.ts [options]
Control API hardening and secrets-in-logs check of a running gateway; prints a JSON result.
  --workers N    gateway worker processes (default 2)
  --stream-mb N  MiB streamed chunked at the API, to be cut at the body cap (default 8)
  --devices N    devices in the traffic mix (default 6)
Exit 0 when every check passed, 1 when one failed, 2 when the run itself failed.`;

const NOTICE = "generated the control API token (shown once";

interface Reply {
  status: number;
  text: string;
  headers: Headers;
}

async function call(base: string, method: string, path: string, auth: string | null, body?: BodyInit, headers: Record<string, string> = {}): Promise<Reply> {
  const h: Record<string, string> = { ...headers };
  if (auth !== null) h.authorization = auth;
  if (body !== undefined && !h["content-type"]) h["content-type"] = "application/json";
  try {
    const res = await fetch(base + path, { method, headers: h, body, ...(body instanceof ReadableStream ? { duplex: "half" } : {}) } as RequestInit);
    return { status: res.status, text: await res.text(), headers: res.headers };
  } catch (e) {
    return { status: -1, text: (e as Error).message, headers: new Headers() };
  }
}

/** A random distinctive password (so a grep for it cannot match anything by chance). */
function distinctive(tag: string): string {
  return `${tag}-${crypto.randomUUID().replace(/-/g, "").slice(0, 20)}`;
}

/**
 * A raw HTTP/1.1 GET from source address `local` (fetch cannot choose it), so one test can act
 * as several client addresses. Returns the status and the Retry-After header.
 */
async function rawGet(base: string, path: string, auth: string, local: string): Promise<{ status: number; retryAfter: string | null }> {
  const u = new URL(base);
  let text = "";
  const done = Promise.withResolvers<void>();
  const sock = await Bun.connect({
    hostname: u.hostname,
    port: Number(u.port),
    ...({ localAddress: local } as object),
    socket: {
      data: (_s, d) => void (text += d.toString("latin1")),
      close: () => done.resolve(),
      error: () => done.resolve(),
    },
  });
  sock.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`);
  await Promise.race([done.promise, Bun.sleep(5000)]);
  sock.terminate();
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? -1);
  const retryAfter = /\r\nretry-after: *(\S+)/i.exec(text)?.[1] ?? null;
  return { status, retryAfter };
}

/** Listening sockets on `port` as `ss -ltnpH` prints them ("" when ss is missing). */
function listening(port: number): string {
  try {
    const r = Bun.spawnSync(["ss", "-ltnpH", `sport = :${port}`]);
    return r.stdout.toString().trim();
  } catch {
    return "";
  }
}

/** Local addresses of TCP sockets listening on `port`, from /proc/net/tcp and tcp6 (e.g. "127.0.0.1", "::"). */
function listeningAddresses(port: number): string[] {
  const out: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "0A") continue; // 0A = LISTEN
      const [hex, portHex] = f[1]!.split(":");
      if (parseInt(portHex!, 16) !== port) continue;
      if (hex!.length === 8) out.push([3, 2, 1, 0].map((i) => parseInt(hex!.slice(i * 2, i * 2 + 2), 16)).join("."));
      else out.push(/^0+$/.test(hex!) ? "::" : hex === "0000000000000000FFFF00000100007F" ? "::ffff:127.0.0.1" : `ipv6:${hex}`);
    }
  }
  return out;
}

/** Runs the scenario and returns its result. */
export async function run(o: ApiOptions, log: (m: string) => void = () => {}): Promise<ScenarioResult> {
  const checks = new Checks();
  const pw1 = distinctive("Pw1Refused");
  // Percent-encoded characters in the URL: the decoded form must not leak either.
  const pw2raw = distinctive("Pw2Closed");
  const pw2 = `${pw2raw}%21%40`;
  const pw2decoded = `${pw2raw}!@`;
  const secrets = new Map<string, string>(); // value -> what it is
  const addSecret = (v: string | undefined, what: string) => {
    if (v && v.length >= 8) secrets.set(v, what);
  };
  addSecret(pw1, "broker password (run 1)");
  addSecret(pw2, "broker password (run 2, encoded)");
  addSecret(pw2decoded, "broker password (run 2, decoded)");
  const allLogs: string[] = [];
  const t0 = performance.now();

  // ---- Run 1: fresh data dir, broker refuses the login. ----
  log("api-hardening: run 1 (broker login refused)");
  const gw = await HostileGateway.start({
    gatewayId: "apisec",
    waitBroker: false,
    args: ["--workers", String(o.workers), "--log-level", "debug", "--broker", `amqp://owsla:${pw1}@127.0.0.1:5672`],
  });
  const dir = gw.gw.dir;
  let run2: HostileGateway | null = null;
  const out: Record<string, unknown> = {};
  try {
    const base = gw.apiBase();
    const token = gw.apiToken();
    addSecret(token, "API token");
    const siteSecret = readFileSync(join(dir, "site.secret"), "utf8").trim();
    addSecret(siteSecret, "site secret (hex)");
    addSecret(Buffer.from(siteSecret, "hex").toString("base64"), "site secret (base64)");
    addSecret(Buffer.from(siteSecret, "hex").toString("base64url"), "site secret (base64url)");
    const bearer = `Bearer ${token}`;

    // Loopback only.
    const url = new URL(base);
    const ss = listening(Number(url.port));
    const supervisorPid = gw.gw.proc.pid;
    const addresses = listeningAddresses(Number(url.port));
    checks.check(
      "api_on_loopback",
      url.hostname === "127.0.0.1" && addresses.length > 0 && addresses.every((a) => a === "127.0.0.1"),
      `log url ${base}; listening on ${addresses.join(", ") || "nothing"} (/proc/net/tcp*); ss: ${ss.replace(/\s+/g, " ") || "unavailable"}`,
    );
    checks.check("api_owned_by_supervisor", ss === "" || ss.includes(`pid=${supervisorPid},`), `supervisor pid ${supervisorPid}${ss ? "" : " (ss unavailable, not checked)"}`);

    // Bearer token required.
    const unauth: Record<string, number> = {};
    for (const p of ["/metrics", "/api/v1/devices", "/api/v1/stats", "/api/v1/workers", "/api/v1/openapi.json"]) unauth[p] = (await call(base, "GET", p, null)).status;
    const healthz = (await call(base, "GET", "/healthz", null)).status;
    const readyz = (await call(base, "GET", "/readyz", null)).status;
    const withToken = (await call(base, "GET", "/metrics", bearer)).status;
    const basicAuth = (await call(base, "GET", "/metrics", `Basic ${btoa(`admin:${token}`)}`)).status;
    const lowercase = (await call(base, "GET", "/metrics", `bearer ${token}`)).status;
    checks.check("bearer_required", Object.values(unauth).every((s) => s === 401) && basicAuth === 401, `without token ${JSON.stringify(unauth)}; Basic auth ${basicAuth}`);
    checks.check("bearer_accepted", withToken === 200 && healthz === 200 && readyz === 200, `/metrics with token ${withToken}, probes /healthz ${healthz} and /readyz ${readyz} without, lowercase scheme ${lowercase}`);
    // These refusals count against 127.0.0.1 (6 so far, below the limit of 10); the rate limit
    // is checked from other source addresses at the end.

    // Body caps.
    const big = JSON.stringify({ hardware_id: "body-cap", label: "x".repeat(100 * 1024) });
    const byLength = await call(base, "POST", "/api/v1/devices", bearer, big);
    const justUnder = await call(base, "POST", "/api/v1/devices", bearer, JSON.stringify({ hardware_id: "body-ok", label: "y".repeat(200) }));
    const rssBefore = rssKb(supervisorPid);
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let streamed = 0;
    const total = o.stream_mb * 1024 * 1024;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (streamed >= total) return ctrl.close();
        streamed += chunk.length;
        ctrl.enqueue(chunk);
      },
    });
    const byStream = await call(base, "POST", "/api/v1/devices", bearer, stream);
    const rssAfter = rssKb(supervisorPid);
    checks.check("body_cap_content_length", byLength.status === 413, `100 KiB body: ${byLength.status} ${byLength.text.slice(0, 120)}`);
    checks.check("body_under_cap_accepted", justUnder.status === 201 || justUnder.status === 200, `small body: ${justUnder.status}`);
    checks.check("body_cap_chunked", byStream.status === 413, `${o.stream_mb} MiB chunked: ${byStream.status} ${byStream.text.slice(0, 120)}; supervisor VmRSS ${mb(rssBefore)} → ${mb(rssAfter)} MiB`);
    checks.check("body_cap_memory", rssAfter - rssBefore < 32 * 1024, `supervisor VmRSS grew ${mb(rssAfter - rssBefore)} MiB while ${o.stream_mb} MiB were streamed`);
    out.body_caps = { content_length_100k: byLength.status, chunked: byStream.status, chunked_mb: o.stream_mb, streamed_before_cut_mb: mb(streamed / 1024), supervisor_rss_mb: { before: mb(rssBefore), after: mb(rssAfter) } };

    // Traffic mix.
    log("api-hardening: traffic mix");
    const devices: RawConn[] = [];
    const ids: string[] = [];
    for (let i = 0; i < o.devices; i++) {
      const hw = `apisec-dev-${i}`;
      const t = gw.token(hw);
      addSecret(t, `device token of ${hw}`);
      const c = await RawConn.connect({ port: gw.port });
      c.write(JSON.stringify({ op: "hello", v: 1, device: hw, token: t }) + "\n");
      const w = await c.waitFrame((f) => f.op === "welcome" || f.op === "error", 5000);
      if (w?.op === "welcome") ids.push(w.id);
      c.write(JSON.stringify({ op: "pub", topic: "apisec.t", body: { token_like: "not-a-secret", i }, ref: `p${i}` }) + "\n");
      c.write('{"op":"ping"}\n');
      devices.push(c);
    }
    // Wrong tokens: another device's token, a truncated one, a token of a wrong generation.
    for (let i = 0; i < 3; i++) {
      const c = await RawConn.connect({ port: gw.port, localAddress: `127.71.0.${i + 1}` });
      const other = gw.token(`apisec-dev-${(i + 1) % o.devices}`);
      const wrong = [other, other.slice(0, -3), `2.${other}`][i]!;
      c.write(JSON.stringify({ op: "hello", v: 1, device: `apisec-dev-${i}`, token: wrong }) + "\n");
      await c.waitFrame((f) => f.op === "error", 3000);
      c.terminate();
    }
    const apiCalls: Record<string, number> = {};
    const record = (name: string, r: Reply) => (apiCalls[name] = r.status);
    record("GET devices", await call(base, "GET", "/api/v1/devices?limit=50", bearer));
    const reg = await call(base, "POST", "/api/v1/devices", bearer, JSON.stringify({ hardware_id: "apisec-registered", label: "registered" }));
    record("POST devices", reg);
    try {
      addSecret(JSON.parse(reg.text).token, "token of a registered device");
    } catch {}
    if (ids[0]) {
      record("GET device", await call(base, "GET", `/api/v1/devices/${ids[0]}`, bearer));
      record("POST command", await call(base, "POST", `/api/v1/devices/${ids[0]}/commands`, bearer, JSON.stringify({ topic: "apisec.cmd", body: { secret_word: "not-a-secret" } })));
      record("DELETE connection", await call(base, "DELETE", `/api/v1/devices/${ids[0]}/connection`, bearer));
    }
    if (ids[1]) {
      const re = await call(base, "POST", `/api/v1/devices/${ids[1]}/token`, bearer);
      record("POST token", re);
      try {
        addSecret(JSON.parse(re.text).token, "re-issued device token");
      } catch {}
      record("POST revoke", await call(base, "POST", `/api/v1/devices/${ids[1]}/revoke`, bearer));
    }
    record("GET stats", await call(base, "GET", "/api/v1/stats", bearer));
    record("GET workers", await call(base, "GET", "/api/v1/workers", bearer));
    record("GET readyz", await call(base, "GET", "/readyz", bearer));
    record("GET metrics", await call(base, "GET", "/metrics", bearer));
    record("GET dashboard", await call(base, "GET", "/", null));
    out.api_calls = apiCalls;
    for (const c of devices) c.terminate();

    // Wrong API tokens from one address: 10 are refused with 401, then the next wrong one gets
    // 429 from that address, while the right token works from it and from another address.
    const wrongTokens = [
      `${token}x`,
      token.slice(0, -1),
      token.slice(0, -1) + (token.endsWith("A") ? "B" : "A"),
      siteSecret,
      gw.token("apisec-dev-0"),
      "x".repeat(16),
      token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase(),
      `${token}${token}`,
      `"${token}"`,
      token.slice(1),
    ];
    const attackerAddr = "127.72.0.1";
    const wrongStatuses: number[] = [];
    for (const w of wrongTokens) wrongStatuses.push((await rawGet(base, "/api/v1/devices", `Bearer ${w}`, attackerAddr)).status);
    const eleventh = await rawGet(base, "/api/v1/devices", `Bearer ${token}0`, attackerAddr);
    const rightFromAttacker = await rawGet(base, "/api/v1/devices", bearer, attackerAddr);
    const otherAddr = await rawGet(base, "/api/v1/devices", bearer, "127.72.0.2");
    checks.check("wrong_tokens_refused", wrongStatuses.every((s) => s === 401), `statuses of 10 wrong tokens from ${attackerAddr}: ${wrongStatuses.join(",")}`);
    checks.check("rate_limited_after_10", eleventh.status === 429 && Number(eleventh.retryAfter) > 0, `11th wrong token from ${attackerAddr}: ${eleventh.status}, Retry-After ${eleventh.retryAfter}`);
    checks.check("right_token_never_limited", rightFromAttacker.status === 200, `right token from the limited ${attackerAddr}: ${rightFromAttacker.status}`);
    checks.check("other_address_unaffected", otherAddr.status === 200, `right token from 127.72.0.2: ${otherAddr.status}`);
    const healthzDuringBan = (await call(base, "GET", "/healthz", null)).status;
    out.rate_limit = { wrong_statuses: wrongStatuses, eleventh: eleventh.status, right_token_from_limited_address: rightFromAttacker.status, retry_after_s: eleventh.retryAfter, other_address: otherAddr.status, healthz_during_ban: healthzDuringBan };

    await gw.gw.stop();
    allLogs.push(...gw.gw.logs);

    // ---- Run 2: same data dir, broker port closed. ----
    log("api-hardening: run 2 (broker unreachable)");
    const closedPort = 1; // nothing listens on port 1
    run2 = await HostileGateway.start({
      gatewayId: "apisec",
      dir,
      waitBroker: false,
      args: ["--workers", String(o.workers), "--log-level", "debug", "--broker", `amqp://owsla:${pw2}@127.0.0.1:${closedPort}`, "--broker-reconnect-max-ms", "200"],
    });
    const base2 = run2.apiBase();
    const sameToken = run2.apiToken() === token;
    for (let i = 0; i < 3; i++) {
      const hw = `apisec-dev-${i + 2}`;
      const c = await RawConn.connect({ port: run2.port });
      c.write(JSON.stringify({ op: "hello", v: 1, device: hw, token: run2.token(hw) }) + "\n");
      await c.waitFrame((f) => f.op === "welcome" || f.op === "error", 5000);
      c.write(JSON.stringify({ op: "pub", topic: "apisec.t", body: i, ref: `q${i}` }) + "\n");
      await c.waitFrame((f) => f.ref === `q${i}`, 5000);
      c.terminate();
    }
    const m2 = await call(base2, "GET", "/metrics", bearer);
    await Bun.sleep(1500); // a few reconnect attempts with the closed port
    await run2.gw.stop();
    allLogs.push(...run2.gw.logs);
    checks.check("token_kept_across_restart", sameToken && m2.status === 200, `same token ${sameToken}, /metrics ${m2.status}`);

    // ---- Grep every line of both runs. ----
    const notices = allLogs.filter((l) => l.includes(NOTICE));
    const leaks: string[] = [];
    for (let i = 0; i < allLogs.length; i++) {
      const line = allLogs[i]!;
      for (const [value, what] of secrets) {
        if (!line.includes(value)) continue;
        // The notice prints the token on the next line, once, by design.
        const isNotice = what === "API token" && i > 0 && allLogs[i - 1]!.includes(NOTICE) && line.trim() === token;
        if (!isNotice) leaks.push(`${what} in: ${line.slice(0, 200)}`);
      }
    }
    const tokenLines = allLogs.filter((l) => l.includes(token)).length;
    checks.check("token_notice_once", notices.length === 1 && tokenLines === 1, `${notices.length} notice line(s), the API token appears on ${tokenLines} line(s)`);
    checks.check("no_secret_in_logs", leaks.length === 0, leaks.slice(0, 5).join(" | ") || `none of ${secrets.size} secrets in ${allLogs.length} log lines`);
    const brokerErrors = allLogs.filter((l) => /broker/i.test(l) && /"level":"(warn|error)"/.test(l)).length;
    checks.check("broker_failures_were_logged", brokerErrors > 0, `${brokerErrors} broker warn/error lines (the password paths were exercised)`);

    return {
      scenario: "api-hardening",
      ok: checks.ok,
      params: o,
      checks: checks.all,
      durations: { total_s: Math.round((performance.now() - t0) / 100) / 10 },
      held: 0,
      lost: 0,
      closed_with_code: {},
      api: { base, listening: ss.replace(/\s+/g, " ") },
      ...out,
      secrets_checked: [...secrets.values()],
      log_lines_checked: allLogs.length,
    };
  } finally {
    if (gw.gw.proc.exitCode === null) await gw.gw.stop();
    if (run2 && run2.gw.proc.exitCode === null) await run2.gw.stop();
    await gw.stop().catch(() => {});
    removeDir(dir);
  }
}

if (import.meta.main) await runCli(API_DEFAULTS, USAGE, run);
