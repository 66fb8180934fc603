/**
 * A child process that holds idle connections for the slowloris and EMFILE scenarios: opens
 * `silent` sockets that never send anything and `drip` sockets that send one byte of an
 * unfinished hello every `dripMs`, with at most `window` connects in flight, and records when
 * and with which error code the gateway closed each one. Times are measured here, per socket,
 * from its connect.
 *
 * Driven over IPC (JSON): `{t:"open"}` → `{t:"opened", ...}`; `{t:"report"}` → `{t:"report", ...}`;
 * `{t:"close"}` closes all (→ `{t:"closed"}`); `{t:"exit"}`.
 *
 * Usage (spawned with IPC): bun holder.ts <json {host, port, silent, drip, dripMs, window, localAddress?}>
 */
import type { Socket } from "bun";

interface Args {
  host: string;
  port: number;
  silent: number;
  drip: number;
  dripMs: number;
  window: number;
  localAddress?: string;
  /** Stop opening after this long, ms (for EMFILE, where connects may hang). */
  openTimeoutMs?: number;
}

const a = JSON.parse(process.argv[2]!) as Args;
const send = (m: unknown) => process.send!(m);
const HELLO = new TextEncoder().encode('{"op":"hello","v":1,"device":"slowloris-never-finishes-this-hello","token":"' + "x".repeat(200));

interface Held {
  drip: boolean;
  socket: Socket<Held> | null;
  connectedAt: number;
  closedAt: number;
  code: string | null;
  dripped: number;
  buf: string;
}

const held: Held[] = [];
let openFailed = 0;
let opened = 0;

function connectOne(drip: boolean): Promise<void> {
  const h: Held = { drip, socket: null, connectedAt: 0, closedAt: 0, code: null, dripped: 0, buf: "" };
  return Bun.connect<Held>({
    hostname: a.host,
    port: a.port,
    ...(a.localAddress ? ({ localAddress: a.localAddress } as object) : {}),
    data: h,
    socket: {
      data(s, d) {
        const st = s.data;
        st.buf += d.toString("utf8");
        let i: number;
        while ((i = st.buf.indexOf("\n")) >= 0) {
          const line = st.buf.slice(0, i);
          st.buf = st.buf.slice(i + 1);
          try {
            const f = JSON.parse(line);
            if (f.op === "error" && st.code === null) st.code = String(f.code);
          } catch {
            st.code ??= "unparsable";
          }
        }
      },
      close(s) {
        if (!s.data.closedAt) s.data.closedAt = performance.now();
      },
      error(s) {
        if (!s.data.closedAt) s.data.closedAt = performance.now();
      },
    },
  }).then(
    (s) => {
      h.socket = s;
      h.connectedAt = performance.now();
      held.push(h);
      opened++;
    },
    () => {
      openFailed++;
    },
  );
}

async function openAll(): Promise<void> {
  const t0 = performance.now();
  const kinds: boolean[] = [...Array(a.silent).fill(false), ...Array(a.drip).fill(true)];
  // Interleave drip sockets among the silent ones.
  kinds.sort((x, y) => Number(x) - Number(y));
  let next = 0;
  const deadline = t0 + (a.openTimeoutMs ?? 120_000);
  const lanes = Array.from({ length: Math.max(1, a.window) }, async () => {
    while (next < kinds.length && performance.now() < deadline) {
      const drip = kinds[next++]!;
      await Promise.race([connectOne(drip), Bun.sleep(Math.max(0, deadline - performance.now()))]);
    }
  });
  await Promise.all(lanes);
  send({ t: "opened", opened, failed: openFailed, ms: Math.round(performance.now() - t0) });
}

// One byte per drip socket every dripMs, spread evenly over the interval.
let dripIndex = 0;
let dripTimer: Timer | null = null;
function startDrip(): void {
  const drips = () => held.filter((h) => h.drip);
  const tickMs = 20;
  dripTimer = setInterval(() => {
    const d = drips();
    if (d.length === 0) return;
    const perTick = Math.max(1, Math.ceil((d.length * tickMs) / a.dripMs));
    for (let k = 0; k < perTick; k++) {
      const h = d[dripIndex++ % d.length]!;
      if (h.closedAt || !h.socket) continue;
      if (h.socket.write(HELLO.subarray(h.dripped % HELLO.length, (h.dripped % HELLO.length) + 1)) > 0) h.dripped++;
    }
  }, tickMs);
}

function report(): Record<string, unknown> {
  const codes: Record<string, number> = {};
  const closeMs: number[] = [];
  let open = 0;
  let dripped = 0;
  for (const h of held) {
    dripped += h.dripped;
    if (!h.closedAt) {
      open++;
      continue;
    }
    const key = `${h.drip ? "drip" : "silent"}:${h.code ?? "none"}`;
    codes[key] = (codes[key] ?? 0) + 1;
    closeMs.push(Math.round(h.closedAt - h.connectedAt));
  }
  closeMs.sort((x, y) => x - y);
  return { t: "report", held: held.length, open, closed: held.length - open, openFailed, codes, dripped, closeMs: { min: closeMs[0] ?? null, p50: closeMs[Math.floor(closeMs.length / 2)] ?? null, max: closeMs.at(-1) ?? null } };
}

process.on("message", async (m: any) => {
  if (m.t === "open") {
    startDrip();
    await openAll();
  } else if (m.t === "report") send(report());
  else if (m.t === "close") {
    for (const h of held) h.socket?.terminate();
    await Bun.sleep(100);
    send({ t: "closed" });
  } else if (m.t === "exit") {
    if (dripTimer) clearInterval(dripTimer);
    for (const h of held) h.socket?.terminate();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
send({ t: "ready" });
