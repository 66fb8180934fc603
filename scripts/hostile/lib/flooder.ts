/**
 * A child process of the connection-flood scenario: opens connections as fast as it can from
 * its source addresses (at most `window` in flight), sends `ping` on each, classifies the first
 * answer (pong = accepted, error = refused with that code), and closes with a reset (no
 * TIME_WAIT left behind). Counts per source address and per second.
 *
 * Driven over IPC (JSON): `{t:"go", ms}` → `{t:"done", ...}`; `{t:"exit"}`.
 *
 * Usage (spawned with IPC): bun flooder.ts <json {host, port, addresses: string[], window}>
 */
import type { Socket } from "bun";

interface Args {
  host: string;
  port: number;
  addresses: string[];
  window: number;
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
  /** Accepted connections per second of the run (index = second). */
  acceptedPerSecond: number[];
}

type State = { done: (outcome: string) => void; buf: string };

/** One attempt: resolves with "accepted", an error code, "connect_failed" or "no_answer". */
function attempt(local: string): Promise<string> {
  return new Promise((resolve) => {
    let settled = false;
    let sock: Socket<State> | null = null;
    const done = (outcome: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock?.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(() => done("no_answer"), 3000);
    Bun.connect<State>({
      hostname: a.host,
      port: a.port,
      ...({ localAddress: local } as object),
      data: { done, buf: "" },
      socket: {
        open(s) {
          s.write(PING);
        },
        data(s, d) {
          s.data.buf += d.toString("utf8");
          const i = s.data.buf.indexOf("\n");
          if (i < 0) return;
          try {
            const f = JSON.parse(s.data.buf.slice(0, i));
            s.data.done(f.op === "pong" ? "accepted" : f.op === "error" ? String(f.code) : `op:${f.op}`);
          } catch {
            s.data.done("unparsable");
          }
        },
        close(s) {
          s.data.done("closed_without_answer");
        },
        error(s) {
          s.data.done("socket_error");
        },
      },
    }).then(
      (s) => {
        sock = s;
        if (settled) s.terminate();
      },
      () => done("connect_failed"),
    );
  });
}

async function flood(ms: number): Promise<Record<string, unknown>> {
  const per: Record<string, PerAddress> = {};
  for (const addr of a.addresses) per[addr] = { attempts: 0, accepted: 0, codes: {}, connectFailed: 0, noAnswer: 0, acceptedPerSecond: [] };
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
      } else if (outcome === "connect_failed") p.connectFailed++;
      else if (outcome === "no_answer") p.noAnswer++;
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
