import { expect, test } from "bun:test";
import { corkSocketForTick } from "./amqp-tuning.ts";

/** A socket that records cork depth and how many flushes (uncork to depth 0) happened. */
function fakeSocket() {
  const s = {
    depth: 0,
    flushes: 0,
    cork() {
      s.depth++;
    },
    uncork() {
      s.depth--;
      if (s.depth === 0) s.flushes++;
    },
  };
  return s;
}

test("writes of one turn share one cork, released once at the end of the turn", async () => {
  const s = fakeSocket();
  for (let i = 0; i < 500; i++) corkSocketForTick(s);
  expect([s.depth, s.flushes]).toEqual([1, 0]);
  await new Promise((r) => setImmediate(r));
  expect([s.depth, s.flushes]).toEqual([0, 1]);
  corkSocketForTick(s);
  expect(s.depth).toBe(1);
  await new Promise((r) => setImmediate(r));
  expect([s.depth, s.flushes]).toEqual([0, 2]);
});
