import { expect, test } from "bun:test";
import { calibratedClock, welcomeClock, welcomeClockIsKernel } from "./welcome-clock.ts";

test("on Linux the welcome clock is the kernel's monotonic clock: never goes back, finer than a millisecond", () => {
  expect(welcomeClockIsKernel).toBe(true);
  let last = welcomeClock();
  let finer = 0;
  for (let i = 0; i < 10_000; i++) {
    const t = welcomeClock();
    expect(t).toBeGreaterThanOrEqual(last);
    if (t > last && t - last < 0.1) finer++;
    last = t;
  }
  expect(finer).toBeGreaterThan(100);
});

test("the calibrated fallback stays within the current Date.now() millisecond", () => {
  for (let i = 0; i < 10_000; i++) {
    const a = Date.now();
    const t = calibratedClock();
    const b = Date.now();
    expect(t).toBeGreaterThanOrEqual(a);
    expect(t).toBeLessThan(b + 1);
  }
});

test("two processes ping-ponging stamps always see the other's stamp as older", async () => {
  // Each process calibrates on its own; a stamp taken after receiving the other's must be
  // later, even though a round trip over a pipe takes only tens of microseconds.
  const child = Bun.spawn(
    [process.execPath, "-e", `import { welcomeClock } from ${JSON.stringify(import.meta.dir + "/welcome-clock.ts")};
for await (const line of console) process.stdout.write(welcomeClock() + "\\n");`],
    { stdin: "pipe", stdout: "pipe" },
  );
  const reader = child.stdout.getReader();
  const inversions: string[] = [];
  try {
    for (let i = 0; i < 1000; i++) {
      const mine = welcomeClock();
      child.stdin.write(`${i}\n`);
      child.stdin.flush();
      const { value } = await reader.read();
      const theirs = Number(new TextDecoder().decode(value).trim());
      const back = welcomeClock();
      if (!(theirs > mine)) inversions.push(`round ${i}: sent at ${mine}, child stamped ${theirs}`);
      if (!(back > theirs)) inversions.push(`round ${i}: child stamped ${theirs}, reply read at ${back}`);
    }
  } finally {
    child.kill();
  }
  expect(inversions).toEqual([]);
});
