/**
 * The dashboard (GET /) in a real browser: headless Chromium loads it from a running gateway
 * (`serve --workers 2`) with the API token in the URL fragment, and the rendered DOM must show
 * the live numbers: connection count, workers up, broker links up, known devices, and the
 * device list with the hardware ids. The search box is driven over the DevTools protocol.
 *
 * Needs /usr/bin/chromium (Debian package `chromium`; another path in OWSLA_TEST_CHROMIUM);
 * without it every test is skipped and "SKIPPED" is printed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestDevice } from "./helpers/device.ts";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";
import { waitFor } from "./helpers/util.ts";

const CHROMIUM = process.env.OWSLA_TEST_CHROMIUM ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.log(`SKIPPED tests/dashboard.test.ts: ${CHROMIUM} not found (apt-get install -y chromium)`);

const CHROME_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** Ids of the cards whose text the tests read. */
const CARD_IDS = ["gateway", "version", "updated", "error", "connections", "accept-rate", "up-rate", "down-rate", "broker", "outbox", "inbox", "workers", "restarts", "known"];

let gw: GatewayProcess;
let apiBase = "";
let apiToken = "";
const devices: TestDevice[] = [];
const scratch: string[] = [];

function tmp(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `owsla-dash-${tag}-`));
  scratch.push(d);
  return d;
}

async function stats(): Promise<any> {
  const r = await fetch(`${apiBase}/api/v1/stats`, { headers: { authorization: `Bearer ${apiToken}` } });
  return await r.json();
}

/** Waits until the API reports `n` connections and `n` connected device rows. */
async function settle(n: number): Promise<void> {
  await waitFor(`${n} connections`, async () => {
    const s = await stats();
    const r = await fetch(`${apiBase}/api/v1/devices?connected=true`, { headers: { authorization: `Bearer ${apiToken}` } });
    return s.connections === n && (await r.json()).devices.length === n;
  });
}

/** The dashboard URL carrying the token in the fragment (never sent to the server). */
function dashboardUrl(): string {
  return `${apiBase}/#token=${encodeURIComponent(apiToken)}`;
}

/** Runs headless Chromium with --dump-dom on the dashboard; returns the serialised DOM. */
async function dumpDom(): Promise<string> {
  const proc = Bun.spawn(
    [CHROMIUM, ...CHROME_FLAGS, `--user-data-dir=${tmp("profile")}`, "--virtual-time-budget=8000", "--dump-dom", dashboardUrl()],
    { stdout: "pipe", stderr: "pipe", stdin: "ignore" },
  );
  const timer = setTimeout(() => proc.kill("SIGKILL"), 25_000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0 || !out.includes("</html>")) throw new Error(`chromium --dump-dom exited ${code}:\n${err.slice(-2000)}`);
  return out;
}

/** Text content of the elements with the given ids (descendants included). */
async function textsById(html: string, ids: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let rw = new HTMLRewriter();
  for (const id of ids) {
    out[id] = "";
    rw = rw.on(`#${id}`, { text: (t) => void (out[id] += t.text) });
  }
  await rw.transform(new Response(html)).text();
  for (const id of ids) out[id] = out[id]!.trim();
  return out;
}

/** Rows of a table body as arrays of cell texts. */
async function rows(html: string, tbodyId: string): Promise<string[][]> {
  const result: string[][] = [];
  let row: string[] | null = null;
  await new HTMLRewriter()
    .on(`#${tbodyId} tr`, { element: () => void result.push((row = [])) })
    .on(`#${tbodyId} td`, { element: () => void row?.push("") })
    .on(`#${tbodyId} td`, { text: (t) => void (row && row.length && (row[row.length - 1] += t.text)) })
    .transform(new Response(html))
    .text();
  return result.map((r) => r.map((c) => c.trim()));
}

/** A minimal DevTools-protocol client over the browser's WebSocket. */
class Cdp {
  private id = 0;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      const p = m.id !== undefined ? this.pending.get(m.id) : undefined;
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(`CDP ${m.error.message}`));
      else p.resolve(m.result);
    };
  }

  static async open(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`Cannot open ${url}`));
    });
    return new Cdp(ws);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    const id = ++this.id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  /** Evaluates `expression` (may return a promise) in the page; returns its JSON value. */
  async eval(sessionId: string, expression: string): Promise<any> {
    const r = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, sessionId);
    if (r.exceptionDetails) throw new Error(`Page script failed: ${JSON.stringify(r.exceptionDetails).slice(0, 500)}`);
    return r.result.value;
  }

  close(): void {
    this.ws.close();
  }
}

/** Page-side helper: resolves once `cond()` is true (checked every 50 ms), rejects after `ms`. */
const POLL = `(cond, ms) => new Promise((res, rej) => { const t0 = Date.now(); (function tick() {
  let v; try { v = cond(); } catch (e) {}
  if (v) return res(v); if (Date.now() - t0 > ms) return rej(new Error("condition not met: " + cond)); setTimeout(tick, 50); })(); })`;

/** Deletes the broker queues and exchanges a test gateway declared (its prefix is unique). */
async function cleanBroker(g: GatewayProcess): Promise<void> {
  const backend = await new TestBackend(g.prefix).start().catch(() => null);
  if (!backend) return;
  await backend.stop([g.gatewayId]);
}

beforeAll(async () => {
  if (!HAVE_CHROMIUM) return;
  gw = await startGateway({ gatewayId: "dash-gw", args: ["--workers", "2"] });
  const line = gw.json().findLast((l) => l.msg === "Control API listening");
  apiBase = String(line!.url).replace(/\/$/, "");
  apiToken = readFileSync(join(gw.dir, "api.token"), "utf8").trim();
  for (const hw of ["dash-lamp-1", "dash-lamp-2", "dash-sensor-9"]) devices.push((await gw.device(hw)).dev);
  await settle(3);
});

afterAll(async () => {
  for (const d of devices) if (!d.closed) d.close();
  if (gw) {
    await gw.kill();
    await cleanBroker(gw);
    removeDir(gw.dir);
  }
  for (const d of scratch) removeDir(d);
});

describe.skipIf(!HAVE_CHROMIUM)("dashboard in headless Chromium", () => {
  test("GET / is a self-contained page: no external scripts, styles or fonts", async () => {
    const r = await fetch(`${apiBase}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/html");
    const html = await r.text();
    expect(html).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)=["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(\s*["']?(https?:)?\/\//i);
    expect(html).not.toContain(apiToken);
  });

  test("shows the live connection count, workers 2/2, broker 2/2 up and the device list", async () => {
    const dom = await dumpDom();
    const t = await textsById(dom, CARD_IDS);
    const s = await stats();
    expect(t.error).toBe("");
    expect(t.updated).not.toBe("never");
    expect(t.gateway).toBe("dash-gw");
    expect(t.version).toBe(s.version);
    expect(t.connections).toBe("3");
    expect(t.workers).toBe("2/2");
    expect(t.broker).toBe("2/2 up");
    expect(t.known).toBe("3");
    expect(t.restarts).toBe("0");
    expect(t.outbox).toBe("0");
    expect(t.inbox).toBe("0");
    // With 8 s of virtual time the page refreshed more than once, so rates are numbers.
    for (const id of ["accept-rate", "up-rate", "down-rate"]) expect([id, t[id]]).toEqual([id, expect.stringMatching(/^\d+(\.\d+)?$/)]);

    const devRows = await rows(dom, "devices");
    expect(devRows.map((r) => r[0]).sort()).toEqual(["dash-lamp-1", "dash-lamp-2", "dash-sensor-9"]);
    for (const r of devRows) expect(r[2]).toBe("yes");

    const workerRows = await rows(dom, "worker-rows");
    expect(workerRows.map((r) => Number(r[1])).sort()).toEqual(gw.workerPids().sort());
    expect(workerRows.reduce((n, r) => n + Number(r[3]), 0)).toBe(3);
    for (const r of workerRows) expect(r[4]).toBe("up");
  }, 30_000);

  test("the numbers follow the gateway: one more device, one closed", async () => {
    devices.push((await gw.device("dash-extra-4")).dev);
    devices[0]!.send({ op: "bye" });
    await devices[0]!.waitClosed();
    await settle(3);
    const extra = (await gw.device("dash-extra-5")).dev;
    devices.push(extra);
    await settle(4);
    const dom = await dumpDom();
    const t = await textsById(dom, CARD_IDS);
    expect(t.connections).toBe("4");
    expect(t.known).toBe("5");
    const devRows = await rows(dom, "devices");
    expect(devRows.map((r) => r[0]).sort()).toEqual(["dash-extra-4", "dash-extra-5", "dash-lamp-1", "dash-lamp-2", "dash-sensor-9"]);
    expect(devRows.find((r) => r[0] === "dash-lamp-1")!.slice(2)).toEqual(["no", "–", expect.any(String), "bye", "–"]);
  }, 30_000);

  test("the search box filters the device list", async () => {
    const proc = Bun.spawn([CHROMIUM, ...CHROME_FLAGS, `--user-data-dir=${tmp("cdp")}`, "--remote-debugging-port=0", "about:blank"], {
      stdout: "ignore",
      stderr: "pipe",
      stdin: "ignore",
    });
    let cdp: Cdp | null = null;
    try {
      // Chromium prints "DevTools listening on ws://..." on stderr.
      const wsUrl = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("Chromium printed no DevTools URL within 15 s")), 15_000);
        void (async () => {
          let buf = "";
          for await (const chunk of proc.stderr) {
            buf += new TextDecoder().decode(chunk);
            const m = /DevTools listening on (ws:\/\/\S+)/.exec(buf);
            if (m) {
              clearTimeout(timer);
              return resolve(m[1]!);
            }
          }
        })();
      });
      cdp = await Cdp.open(wsUrl);
      const { targetId } = await cdp.send("Target.createTarget", { url: dashboardUrl() });
      const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
      const listed = `() => [...document.querySelectorAll("#devices tr")].map((tr) => tr.cells[0].textContent)`;
      // The new tab may still be replacing its initial about:blank document: retry until it is the dashboard.
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await cdp.eval(sessionId, `(${POLL})(() => document.getElementById("connections").textContent === "4" && document.querySelectorAll("#devices tr").length === 5, 2000)`);
          break;
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await Bun.sleep(100);
        }
      }
      expect(await cdp.eval(sessionId, `location.hash`)).toBe(""); // the token left the address bar

      await cdp.eval(sessionId, `(() => { const s = document.getElementById("search"); s.value = "sensor"; s.dispatchEvent(new Event("input")); })()`);
      await cdp.eval(sessionId, `(${POLL})(() => (${listed})().join() === "dash-sensor-9", 5000)`);

      // By part of the UUID too.
      const r = await fetch(`${apiBase}/api/v1/devices?hardware_id=dash-lamp-2`, { headers: { authorization: `Bearer ${apiToken}` } });
      const lampId: string = (await r.json()).devices[0].id;
      await cdp.eval(sessionId, `(() => { const s = document.getElementById("search"); s.value = "${lampId.slice(0, 13)}"; s.dispatchEvent(new Event("input")); })()`);
      await cdp.eval(sessionId, `(${POLL})(() => (${listed})().join() === "dash-lamp-2", 5000)`);

      await cdp.eval(sessionId, `(() => { const s = document.getElementById("search"); s.value = "lamp"; s.dispatchEvent(new Event("input")); })()`);
      await cdp.eval(sessionId, `(${POLL})(() => (${listed})().sort().join() === "dash-lamp-1,dash-lamp-2", 5000)`);

      await cdp.eval(sessionId, `(() => { const s = document.getElementById("search"); s.value = "zzz-nothing"; s.dispatchEvent(new Event("input")); })()`);
      await cdp.eval(sessionId, `(${POLL})(() => document.getElementById("devices").textContent.includes("No devices match"), 5000)`);

      // Clearing the box shows everything again, and the periodic refresh keeps the filter.
      await cdp.eval(sessionId, `(() => { const s = document.getElementById("search"); s.value = ""; s.dispatchEvent(new Event("input")); })()`);
      await cdp.eval(sessionId, `(${POLL})(() => (${listed})().length === 5, 5000)`);
    } finally {
      cdp?.close();
      proc.kill("SIGKILL");
      await proc.exited;
    }
  }, 30_000);
});
