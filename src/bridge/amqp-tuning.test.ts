import { expect, test } from "bun:test";
import { CORK_MAX_WRITES, corkSocketForTick } from "./amqp-tuning.ts";

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

test("writes of one turn share a cork that is released at the end of the turn", async () => {
  const s = fakeSocket();
  for (let i = 0; i < 5; i++) corkSocketForTick(s);
  expect([s.depth, s.flushes]).toEqual([1, 0]);
  await new Promise((r) => setImmediate(r));
  expect([s.depth, s.flushes]).toEqual([0, 1]);
});

test(`a long turn flushes every ${CORK_MAX_WRITES} writes instead of holding all of them`, async () => {
  const s = fakeSocket();
  for (let i = 0; i < CORK_MAX_WRITES * 3 + 1; i++) corkSocketForTick(s);
  expect(s.flushes).toBe(3);
  expect(s.depth).toBe(1);
  await new Promise((r) => setImmediate(r));
  expect([s.depth, s.flushes]).toEqual([0, 4]);
});
