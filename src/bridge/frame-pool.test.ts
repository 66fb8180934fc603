import { expect, test } from "bun:test";
import { FRAME_POOL_IDLE, FRAME_POOL_MAX, trimFramePool } from "./link.ts";

test("trimFramePool keeps at most FRAME_POOL_MAX of amqp-client's reusable frame buffers", () => {
  const channel = { connection: { bufferPool: Array.from({ length: 1000 }, () => new ArrayBuffer(8)) } };
  trimFramePool(channel);
  expect(channel.connection.bufferPool.length).toBe(FRAME_POOL_MAX);
  const small = { connection: { bufferPool: [new ArrayBuffer(8)] } };
  trimFramePool(small);
  expect(small.connection.bufferPool.length).toBe(1);
  expect(() => trimFramePool(null)).not.toThrow();
  expect(() => trimFramePool({})).not.toThrow();
});

test("trimFramePool keeps as many as asked (the publisher asks for fewer while idle), never more than FRAME_POOL_MAX", () => {
  const pool = () => ({ connection: { bufferPool: Array.from({ length: 100 }, () => new ArrayBuffer(8)) } });
  const idle = pool();
  trimFramePool(idle, FRAME_POOL_IDLE);
  expect(idle.connection.bufferPool.length).toBe(FRAME_POOL_IDLE);
  const busy = pool();
  trimFramePool(busy, 1000);
  expect(busy.connection.bufferPool.length).toBe(FRAME_POOL_MAX);
});
