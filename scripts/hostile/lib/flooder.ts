/**
 * A child process of the connection-flood scenario: opens connections as fast as it can from
 * its source addresses (at most `window` in flight), sends `ping` on each, classifies the first
 * answer (pong = accepted, error = refused with that code), and closes with a reset (no
 * TIME_WAIT left behind). Counts per source address and per second.
 *
 * Driven over IPC (JSON): `{t:"go", ms}` → `{t:"done", ...}`; `{t:"exit"}`.
 *
 * Usage (spawned with IPC): bun flooder.ts <json {host, port, addresses: string[], window,
 *   connectTimeoutMs}>
 */
import net from "node:net";

interface Args {
  host: string;
  port: number;
  addresses: string[];
  window: number;
  connectTimeoutMs: number;
}

const a = JSON.parse(process.argv[2]!) as Args;
const send = (m: unknown) => process.send!(m);
const PING = new TextEncoder().encode('{"op":"ping"}\n');

interface PerAddress {
  attempts: number;
  accepted: number;
  codes: Record<string, number>;
  connectFailed: number;
  noAnswer: number;
  /** Failed connects by error code. */
  connectErrors: Record<string, number>;
  /** Connects the kernel dropped (no SYN-ACK within connectTimeoutMs). */
  dropped: number;
  /** Accepted connections per second of the run (index = second). */
  acceptedPerSecond: number[];
}

/**
 * One attempt: resolves with "accepted", an error code, "connect_failed", "dropped" (no
 * answer to the SYN within `connectTimeoutMs`: the gateway had the kernel drop it; the
 * half-open socket is abandoned at once, as a flooder would, instead of waiting out the
 * kernel's SYN retries) or "no_answer". node:net, because Bun.connect cannot abort a connect.
 */
function attempt(local: string): Promise<string> {
  return new Promise((resolve) => {
    let settled = false;
    let buf = "";
    let connected = false;
    const sock = net.connect({ host: a.host, port: a.port, localAddress: local });
    const done = (outcome: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Connected: a reset, so no TIME_WAIT is left behind to exhaust the source ports. Still
      // connecting: destroy (Bun's resetAndDestroy keeps a connecting socket's descriptor).
      if (connected) sock.resetAndDestroy();
      else sock.destroy();
      resolve(outcome);
    };
    // When the timer fires, the connect may have completed with its event still queued behind
    // a busy loop (thousands of connects at once): look once more after the next I/O poll.
    let timer = setTimeout(() => {
      timer = setTimeout(() => {
        if (!connected) done("dropped");
      }, 1);
    }, a.connectTimeoutMs);
    sock.on("connect", () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(() => done("no_answer"), 3000);
      sock.write(PING);
    });
    sock.on("data", (d: Buffer) => {
      buf += d.toString("utf8");
      const i = buf.indexOf("\n");
      if (i < 0) return;
      try {
        const f = JSON.parse(buf.slice(0, i));
        done(f.op === "pong" ? "accepted" : f.op === "error" ? String(f.code) : `op:${f.op}`);
      } catch {
        done("unparsable");
      }
    });
    sock.on("error", (e: NodeJS.ErrnoException) => done(connected ? `socket_error:${e.code}` : `connect_failed:${e.code}`));
    sock.on("close", () => done("closed_without_answer"));
  });
}

async function flood(ms: number): Promise<Record<string, unknown>> {
  const per: Record<string, PerAddress> = {};
  for (const addr of a.addresses) per[addr] = { attempts: 0, accepted: 0, codes: {}, connectFailed: 0, connectErrors: {}, noAnswer: 0, dropped: 0, acceptedPerSecond: [] };
  const t0 = performance.now();
  const end = t0 + ms;
  let k = 0;
  const lanes = Array.from({ length: a.window }, async () => {
    while (performance.now() < end) {
      const addr = a.addresses[k++ % a.addresses.length]!;
      const p = per[addr]!;
      p.attempts++;
      const outcome = await attempt(addr);
      const sec = Math.floor((performance.now() - t0) / 1000);
      if (outcome === "accepted") {
        p.accepted++;
        p.acceptedPerSecond[sec] = (p.acceptedPerSecond[sec] ?? 0) + 1;
      } else if (outcome.startsWith("connect_failed")) {
        p.connectFailed++;
        p.connectErrors[outcome] = (p.connectErrors[outcome] ?? 0) + 1;
      }
      else if (outcome === "no_answer") p.noAnswer++;
      else if (outcome === "dropped") p.dropped++;
      else p.codes[outcome] = (p.codes[outcome] ?? 0) + 1;
    }
  });
  await Promise.all(lanes);
  for (const p of Object.values(per)) p.acceptedPerSecond = Array.from(p.acceptedPerSecond, (x) => x ?? 0);
  return { t: "done", ms: Math.round(performance.now() - t0), perAddress: per };
}

process.on("message", async (m: any) => {
  if (m.t === "go") send(await flood(m.ms));
  else if (m.t === "exit") process.exit(0);
});
process.on("disconnect", () => process.exit(0));
send({ t: "ready" });
