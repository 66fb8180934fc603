import { expect, test } from "bun:test";
import { judge, type LivenessState } from "./liveness.ts";

const limits = { heartbeatMs: 1000, hangTimeoutMs: 5000, busyTimeoutMs: 60_000 };
const worker = (lastPongAt: number): LivenessState => ({ pid: 1, startedAt: 0, lastPongAt, cpuMark: null, deafMs: 0 });

test("a worker that answers is ok, and its CPU is not read", () => {
  let probes = 0;
  expect(judge(worker(10_000), 10_500, limits, () => (probes++, { ticks: 0, state: "S" })).kind).toBe("ok");
  expect(probes).toBe(0);
});

test("silent and using CPU is busy until busyTimeoutMs, then hung", () => {
  const w = worker(0);
  let ticks = 100;
  const probe = () => ({ ticks: (ticks += 5), state: "S" });
  expect(judge(w, 2000, limits, probe).kind).toBe("ok"); // marks the CPU at the start of the silence
  expect(judge(w, 6000, limits, probe).kind).toBe("busy");
  expect(judge(w, 59_000, limits, probe).kind).toBe("busy");
  const v = judge(w, 61_000, limits, probe);
  expect(v).toMatchObject({ kind: "hung", busy: true });
});

test("silent with no CPU used and sleeping or stopped is hung at hangTimeoutMs", () => {
  for (const state of ["S", "T"]) {
    const w = worker(0);
    const probe = () => ({ ticks: 100, state });
    judge(w, 2000, limits, probe);
    expect(judge(w, 6000, limits, probe)).toMatchObject({ kind: "hung", busy: false, state });
  }
});

test("running (starved of CPU) or waiting for the disk counts as busy", () => {
  for (const state of ["R", "D"]) {
    const w = worker(0);
    const probe = () => ({ ticks: 100, state });
    judge(w, 2000, limits, probe);
    expect(judge(w, 6000, limits, probe).kind).toBe("busy");
  }
});

test("time the supervisor was deaf is not silence", () => {
  const w = worker(0);
  w.deafMs = 8000;
  expect(judge(w, 9000, limits, () => ({ ticks: 0, state: "S" })).kind).toBe("ok");
});
