import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { memoryLogger } from "../log/logger.ts";
import { startSupervisor, type Supervisor, type SupervisorOptions } from "./supervisor.ts";

const WORKER = new URL("./fixtures/worker.ts", import.meta.url).pathname;
const SUPERVISE = new URL("./fixtures/supervise.ts", import.meta.url).pathname;

/** Alive and not a zombie (a reparented orphan may wait for a reaper that never comes in a container). */
function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    const state = readFileSync(stat, "utf8").split(") ")[1]?.[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 2000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
  return Date.now() - t0;
}

const fixture = (id: number, mode = "normal", afterMs = 100) => [
  process.execPath,
  WORKER,
  "--worker-id",
  String(id),
  "--mode",
  mode,
  "--after-ms",
  String(afterMs),
];

let running: Supervisor[] = [];
afterEach(async () => {
  await Promise.all(running.map((s) => s.stop("test cleanup")));
  running = [];
});

function start(over: Partial<SupervisorOptions> = {}) {
  const log = memoryLogger();
  const sup = startSupervisor({
    count: 3,
    command: (id) => fixture(id),
    maxRestarts: 10,
    periodMs: 5000,
    heartbeatMs: 50,
    hangTimeoutMs: 2000,
    shutdownDeadlineMs: 1000,
    log,
    ...over,
  });
  running.push(sup);
  return { sup, log };
}

describe("supervisor", () => {
  test("starts N workers that report ready and answer pings", async () => {
    const got: [number, unknown][] = [];
    const { sup } = start({ onMessage: (id, msg) => got.push([id, msg]) });
    await sup.whenAllReady();
    const ws = sup.workers();
    expect(ws.map((w) => w.id)).toEqual([0, 1, 2]);
    expect(ws.every((w) => w.up && w.ready && w.pid > 0 && w.restarts === 0)).toBe(true);
    expect(new Set(ws.map((w) => w.pid)).size).toBe(3);
    await until("a pong from every worker", () => sup.workers().every((w) => w.lastPongAt > 0));
    // Protocol messages (ready, pong) are not passed to onMessage.
    expect(got).toEqual([]);
  });

  test("send reaches one worker, broadcast reaches all, replies arrive through onMessage", async () => {
    const got: [number, unknown][] = [];
    const { sup } = start({ onMessage: (id, msg) => got.push([id, msg]) });
    await sup.whenAllReady();
    expect(sup.send(1, { t: "echo", x: "one" })).toBe(true);
    expect(sup.send(7, { t: "echo", x: "nobody" })).toBe(false);
    await until("the echo", () => got.length === 1);
    expect(got[0]).toEqual([1, { t: "echoed", x: "one", worker: 1 }]);
    sup.broadcast({ t: "echo", x: "all" });
    await until("three echoes", () => got.length === 4);
    expect(got.slice(1).map(([id]) => id).sort()).toEqual([0, 1, 2]);
  });

  test("a SIGKILLed worker is restarted with the same id and a new pid within 1 s; others are untouched", async () => {
    const exits: [number, number | null, string | null][] = [];
    const { sup, log } = start({ onWorkerExit: (id, code, signal) => exits.push([id, code, signal]) });
    await sup.whenAllReady();
    const before = sup.workers().map((w) => w.pid);
    process.kill(before[1]!, "SIGKILL");
    const ms = await until("worker 1 back up", () => {
      const w = sup.workers()[1]!;
      return w.up && w.ready && w.pid !== before[1];
    });
    expect(ms).toBeLessThan(1000);
    const after = sup.workers();
    expect(after[1]!.restarts).toBe(1);
    expect(after[0]!.pid).toBe(before[0]!);
    expect(after[2]!.pid).toBe(before[2]!);
    expect(after[0]!.restarts + after[2]!.restarts).toBe(0);
    expect(exits).toEqual([[1, null, "SIGKILL"]]);
    expect(log.lines.some((l) => l.msg === "Worker exited; restarting it" && l.worker === 1)).toBe(true);
  });

  test("a worker that stops answering pings is killed and restarted", async () => {
    const spawns = [0, 0];
    const { sup, log } = start({
      count: 2,
      heartbeatMs: 50,
      hangTimeoutMs: 300,
      // Only the first process of worker 0 hangs.
      command: (id) => fixture(id, id === 0 && spawns[id]++ === 0 ? "hang" : "normal", 150),
    });
    await sup.whenAllReady();
    const before = sup.workers().map((w) => w.pid);
    await until("worker 0 restarted", () => sup.workers()[0]!.restarts === 1 && sup.workers()[0]!.ready, 3000);
    expect(sup.workers()[0]!.pid).not.toBe(before[0]!);
    expect(sup.workers()[1]!.pid).toBe(before[1]!);
    expect(alive(before[0]!)).toBe(false);
    const hung = log.lines.find((l) => String(l.msg).startsWith("Worker hung"));
    expect(hung).toMatchObject({ level: "error", worker: 0, pid: before[0]! });
  });

  test("a busy worker (late pongs, CPU time growing) is not killed within busyTimeoutMs", async () => {
    const { sup, log } = start({
      count: 1,
      heartbeatMs: 50,
      hangTimeoutMs: 300,
      busyTimeoutMs: 10_000,
      command: (id) => fixture(id, "busy", 50),
    });
    await sup.whenAllReady();
    const pid = sup.workers()[0]!.pid;
    await Bun.sleep(2500);
    expect(sup.workers()[0]!.restarts).toBe(0);
    expect(sup.workers()[0]!.pid).toBe(pid);
    expect(alive(pid)).toBe(true);
    expect(log.lines.some((l) => String(l.msg).startsWith("Worker busy") && l.worker === 0)).toBe(true);
    expect(log.lines.some((l) => String(l.msg).startsWith("Worker hung"))).toBe(false);
  });

  test("time the supervisor's own loop was stalled does not count as worker silence", async () => {
    const { sup, log } = start({ count: 2, heartbeatMs: 50, hangTimeoutMs: 300, command: (id) => fixture(id, "normal", 50) });
    await sup.whenAllReady();
    const pids = sup.workers().map((w) => w.pid);
    const until = Date.now() + 1500;
    while (Date.now() < until); // the supervisor (this process) hears nothing for 1.5 s
    await Bun.sleep(600);
    expect(sup.workers().map((w) => w.pid)).toEqual(pids);
    expect(sup.workers().every((w) => w.restarts === 0)).toBe(true);
    expect(log.lines.some((l) => String(l.msg).startsWith("Worker hung"))).toBe(false);
    expect(log.lines.some((l) => String(l.msg).startsWith("Supervisor event loop was stalled"))).toBe(true);
  });

  test("a worker spinning forever is killed as hung once silent for busyTimeoutMs", async () => {
    const spawns = [0];
    const { sup, log } = start({
      count: 1,
      heartbeatMs: 50,
      hangTimeoutMs: 300,
      busyTimeoutMs: 1000,
      command: (id) => fixture(id, spawns[id]!++ === 0 ? "hang" : "normal", 150),
    });
    await sup.whenAllReady();
    const before = sup.workers()[0]!.pid;
    await until("worker 0 restarted", () => sup.workers()[0]!.restarts === 1 && sup.workers()[0]!.ready, 5000);
    expect(alive(before)).toBe(false);
    const hung = log.lines.find((l) => String(l.msg).startsWith("Worker hung"));
    expect(hung).toMatchObject({ level: "error", worker: 0, pid: before });
    expect(Number(hung!.silentMs)).toBeGreaterThanOrEqual(1000);
  });

  test("a crash loop beyond restart intensity stops everything and done resolves with code 1", async () => {
    const pids = new Set<number>();
    const { sup, log } = start({
      count: 2,
      maxRestarts: 3,
      periodMs: 10_000,
      command: (id) => fixture(id, id === 1 ? "crash" : "normal", 30),
      onWorkerExit: () => sup.workers().forEach((w) => pids.add(w.pid)),
    });
    const ready = sup.whenAllReady().catch((e: Error) => e);
    const { code, reason } = await sup.done;
    expect(code).toBe(1);
    expect(reason).toContain("worker 1");
    expect(reason).toContain("4 restarts within 10 s");
    const line = log.lines.find((l) => String(l.msg).startsWith("Restart intensity exceeded"));
    expect(line).toMatchObject({ level: "error", worker: 1, restarts: 4, maxRestarts: 3 });
    expect(sup.workers().every((w) => !w.up)).toBe(true);
    for (const w of sup.workers()) pids.add(w.pid);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    // Worker 1 never stays up long enough for all to be ready at once, or does and then crashes.
    const r = await ready;
    if (r instanceof Error) expect(r.message).toContain("Supervisor stopped before all workers were ready");
  });

  test("stop() ends all workers gracefully and done resolves with code 0", async () => {
    const exits: [number, number | null, string | null][] = [];
    const { sup } = start({ onWorkerExit: (id, code, signal) => exits.push([id, code, signal]) });
    await sup.whenAllReady();
    const pids = sup.workers().map((w) => w.pid);
    const t0 = Date.now();
    await sup.stop("test");
    expect(Date.now() - t0).toBeLessThan(1000); // well before the SIGKILL deadline
    expect(await sup.done).toEqual({ code: 0, reason: "test" });
    expect(exits.sort()).toEqual([
      [0, 0, null],
      [1, 0, null],
      [2, 0, null],
    ]);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(sup.workers().every((w) => !w.up)).toBe(true);
    await sup.stop("again"); // idempotent
  });

  test("stop() SIGKILLs a worker that ignores shutdown after the deadline", async () => {
    const exits: [number, number | null, string | null][] = [];
    const { sup, log } = start({
      count: 2,
      shutdownDeadlineMs: 300,
      command: (id) => fixture(id, id === 0 ? "stubborn" : "normal"),
      onWorkerExit: (id, code, signal) => exits.push([id, code, signal]),
    });
    await sup.whenAllReady();
    const t0 = Date.now();
    await sup.stop("test");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(exits.sort()).toEqual([
      [0, null, "SIGKILL"],
      [1, 0, null],
    ]);
    expect((await sup.done).code).toBe(0);
    expect(log.lines.some((l) => l.worker === 0 && String(l.msg).includes("shutdown deadline"))).toBe(true);
  });

  test("workers exit when their supervisor process is killed", async () => {
    const proc = Bun.spawn([process.execPath, SUPERVISE, "--count", "2"], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = proc.stdout.getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`Supervisor fixture ended early: ${text}`);
        text += new TextDecoder().decode(value);
      }
      const { pids } = JSON.parse(text) as { pids: number[] };
      expect(pids.length).toBe(2);
      expect(pids.every(alive)).toBe(true);
      proc.kill("SIGKILL");
      await proc.exited;
      await until("orphaned workers to exit", () => !pids.some(alive), 3000);
    } finally {
      proc.kill("SIGKILL");
    }
  });

  test("invalid options are a clear error", () => {
    const base = { count: 1, command: () => ["true"], maxRestarts: 1, periodMs: 1000, heartbeatMs: 100, hangTimeoutMs: 1000, shutdownDeadlineMs: 100, log: memoryLogger() };
    expect(() => startSupervisor({ ...base, count: 0 })).toThrow("count 0 must be an integer of at least 1");
    expect(() => startSupervisor({ ...base, hangTimeoutMs: 50 })).toThrow("hangTimeoutMs 50 must exceed heartbeatMs 100");
  });

  test("an exception in onMessage or onWorkerExit does not take the supervisor down", async () => {
    const { sup, log } = start({
      count: 1,
      onMessage: () => {
        throw new Error("boom in onMessage");
      },
      onWorkerExit: () => {
        throw new Error("boom in onWorkerExit");
      },
    });
    await sup.whenAllReady();
    sup.send(0, { t: "echo", x: 1 });
    await until("the logged exception", () => log.lines.some((l) => String(l.msg).includes("in onMessage")));
    const pid = sup.workers()[0]!.pid;
    process.kill(pid, "SIGKILL");
    await until("restart", () => sup.workers()[0]!.ready && sup.workers()[0]!.pid !== pid);
    expect(log.lines.some((l) => String(l.msg).includes("in onWorkerExit"))).toBe(true);
  });
});
