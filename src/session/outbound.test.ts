import { describe, expect, test } from "bun:test";
import { Outbound } from "./outbound.ts";

/** A socket that takes at most `budget` bytes until `open(n)` is called again. */
class StingySocket {
  received: number[] = [];
  budget = 0;
  write(data: Uint8Array): number {
    const n = Math.min(this.budget, data.length);
    for (let i = 0; i < n; i++) this.received.push(data[i]!);
    this.budget -= n;
    return n;
  }
}

const bytes = (from: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (from + i) % 256);

describe("Outbound", () => {
  test("writes straight through when the socket takes everything", () => {
    const s = new StingySocket();
    s.budget = 1000;
    const out = new Outbound(s, 100);
    expect(out.write(bytes(0, 10))).toBe(true);
    expect(out.queued).toBe(0);
    expect(s.received.length).toBe(10);
  });

  test("keeps the rest of a partial write and flushes it on drain, in order", () => {
    const s = new StingySocket();
    s.budget = 3;
    const out = new Outbound(s, 1000);
    out.write(bytes(0, 10));
    out.write(bytes(10, 10));
    expect(out.queued).toBe(17);
    s.budget = 5;
    expect(out.flush()).toBe(false);
    s.budget = 1000;
    expect(out.flush()).toBe(true);
    expect(s.received).toEqual([...bytes(0, 20)]);
    expect(out.queued).toBe(0);
  });

  test("never reorders: new data queues behind old data even if the socket has room again", () => {
    const s = new StingySocket();
    const out = new Outbound(s, 1000);
    out.write(bytes(0, 4)); // nothing taken
    s.budget = 1000;
    out.write(bytes(4, 4)); // must not jump the queue
    expect(s.received).toEqual([]);
    out.flush();
    expect(s.received).toEqual([...bytes(0, 8)]);
  });

  test("refuses data past maxBytes so the caller can close a slow consumer", () => {
    const s = new StingySocket();
    const out = new Outbound(s, 16);
    expect(out.write(bytes(0, 10))).toBe(true);
    expect(out.write(bytes(10, 10))).toBe(false);
    expect(out.queued).toBe(10);
  });

  test("random partial writes deliver every byte exactly once, in order", () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const s = new StingySocket();
    const out = new Outbound(s, 1 << 20);
    let sent = 0;
    for (let i = 0; i < 500; i++) {
      s.budget = Math.floor(rnd() * 40);
      const len = 1 + Math.floor(rnd() * 30);
      out.write(bytes(sent, len));
      sent += len;
      s.budget = Math.floor(rnd() * 40);
      out.flush();
    }
    s.budget = 1 << 20;
    out.flush();
    expect(s.received).toEqual([...bytes(0, sent)]);
  });
});
