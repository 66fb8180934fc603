/**
 * One load-generator process of scripts/bench-welcomes.ts: holds up to a few thousand device
 * connections to one destination address, driven over IPC by the bench.
 *
 * Messages from the bench: `{t:"go"}` connects every device (at most `window` handshakes in
 * flight), each sends hello with a valid token and waits for welcome; `{t:"close"}` closes them
 * all; `{t:"exit"}`. Replies: `ready`, `done` (per-device welcome times and error counts),
 * `closed`. A device refused with `server_busy`, `rate_limited` or `shutting_down` retries after
 * `retry_after` with exponential backoff and jitter; a failed or dropped connection retries
 * after 200 ms with the same backoff.
 *
 * Usage (spawned by the bench, with IPC):
 *   bun scripts/bench-welcomes-client.ts <host> <port> <first-index> <count> <window> [secret-file]
 * Without a secret file the token is a dummy (for the baseline server).
 */
import type { Socket } from "bun";
import { loadOrCreateSecret, mintToken } from "../src/auth/token.ts";

const [host = "127.0.0.1", portArg = "0", firstArg = "0", countArg = "0", windowArg = "0", secretFile] = process.argv.slice(2);
const port = Number(portArg);
const first = Number(firstArg);
const count = Number(countArg);
/** Handshakes in flight at most; 0 = all at once. */
const window = Number(windowArg) || Number.POSITIVE_INFINITY;
/** Attempts per device before it counts as failed. */
const MAX_ATTEMPTS = 30;
/** Retry delay after a failed or dropped connection (doubled per attempt), in ms. */
const RETRY_BASE_MS = 200;
/** Longest retry delay, in ms. */
const RETRY_MAX_MS = 8000;

const now = () => performance.timeOrigin + performance.now();
const send = (m: unknown) => process.send!(m);

interface Dev {
  hello: string;
  socket: Socket<undefined> | null;
  buf: string;
  /** Attempt number; events of an older attempt are ignored. */
  attempts: number;
  /** A handshake of this device is in flight. */
  busy: boolean;
  startedAt: number;
  welcomedAt: number;
}

const secret = secretFile ? loadOrCreateSecret(secretFile) : null;
const devs: Dev[] = Array.from({ length: count }, (_, i) => {
  const hw = `bench-${first + i}`;
  const token = secret ? mintToken(secret, hw) : "x";
  const hello = JSON.stringify({ op: "hello", v: 1, device: hw, token }) + "\n";
  return { hello, socket: null, buf: "", attempts: 0, busy: false, startedAt: 0, welcomedAt: 0 };
});

let errors: Record<string, number> = {};
let retries = 0;
let failed = 0;
let inflight = 0;
let queue: Dev[] = [];
let left = 0;

function pump(): void {
  while (inflight < window && queue.length > 0) start(queue.shift()!);
}

function start(d: Dev): void {
  const attempt = ++d.attempts;
  d.busy = true;
  d.buf = "";
  d.startedAt ||= now();
  inflight++;
  const mine = () => d.busy && d.attempts === attempt;
  Bun.connect({
    hostname: host,
    port,
    socket: {
      open: (s) => {
        if (!mine()) return void s.end();
        d.socket = s;
        s.write(d.hello);
      },
      data: (_s, chunk) => void (mine() && onLine(d, chunk)),
      close: () => void (mine() && gone(d, "closed_before_welcome")),
      error: () => void (mine() && gone(d, "socket_error")),
      connectError: () => {},
    },
  }).catch(() => mine() && gone(d, "connect_failed"));
}

/** The handshake of `d` ended (welcome, refusal or failure): frees its slot. */
function release(d: Dev): void {
  d.busy = false;
  inflight--;
}

function onLine(d: Dev, chunk: Buffer): void {
  d.buf += chunk.toString("utf8");
  const i = d.buf.indexOf("\n");
  if (i < 0) return;
  const f = JSON.parse(d.buf.slice(0, i));
  release(d);
  if (f.op === "welcome") {
    d.welcomedAt = now();
    return finishOne();
  }
  const code = f.op === "error" ? String(f.code) : `unexpected_${f.op}`;
  errors[code] = (errors[code] ?? 0) + 1;
  closeSocket(d);
  if (code === "server_busy" || code === "rate_limited" || code === "shutting_down") retry(d, typeof f.retry_after === "number" ? f.retry_after : 1000);
  else fail();
}

function gone(d: Dev, kind: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  release(d);
  closeSocket(d);
  retry(d, RETRY_BASE_MS);
}

function closeSocket(d: Dev): void {
  const s = d.socket;
  d.socket = null;
  try {
    s?.end();
  } catch {}
}

function retry(d: Dev, baseMs: number): void {
  if (d.attempts >= MAX_ATTEMPTS) return fail();
  retries++;
  const delay = Math.min(RETRY_MAX_MS, baseMs * 2 ** Math.min(d.attempts - 1, 6)) * (0.5 + Math.random() / 2);
  setTimeout(() => {
    queue.push(d);
    pump();
  }, delay);
  pump();
}

function fail(): void {
  failed++;
  finishOne();
}

function finishOne(): void {
  pump();
  if (--left > 0) return;
  const ok = devs.filter((d) => d.welcomedAt > 0);
  send({
    t: "done",
    welcomed: ok.length,
    failed,
    retries,
    errors,
    welcomedAt: ok.map((d) => d.welcomedAt),
    latencyMs: ok.map((d) => d.welcomedAt - d.startedAt),
  });
}

process.on("message", (m: { t: string }) => {
  if (m.t === "go") {
    errors = {};
    retries = 0;
    failed = 0;
    left = devs.length;
    for (const d of devs) Object.assign(d, { attempts: 0, busy: false, startedAt: 0, welcomedAt: 0, buf: "" });
    queue = [...devs];
    pump();
  } else if (m.t === "close") {
    for (const d of devs) closeSocket(d);
    setTimeout(() => send({ t: "closed" }), 200);
  } else if (m.t === "exit") {
    process.exit(0);
  }
});
send({ t: "ready", count });
