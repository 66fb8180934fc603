/**
 * The kernel drop list on a real listening socket: connections from a dropped address get no
 * answer at all (not even a refusal), others are served, and emptying the list serves it again.
 */
import { afterAll, expect, test } from "bun:test";
import net from "node:net";
import { dropProgram, ipv4Number, MAX_DROPPED_ADDRESSES, openSynFilter, type SynFilter } from "./syn-filter.ts";

const served = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(s) {
      s.write("hello\n");
    },
    data() {},
  },
});
afterAll(() => served.stop(true));
const fd = (served as unknown as { fd: number }).fd;

/** "served" when the listener answered, "no answer" when the connect got nothing in `ms`. */
function connectFrom(local: string, ms = 400): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port: served.port, localAddress: local });
    let connected = false;
    s.on("connect", () => (connected = true));
    const timer = setTimeout(() => {
      s.destroy();
      resolve(connected ? "connected, no data" : "no answer");
    }, ms);
    s.on("data", () => {
      clearTimeout(timer);
      s.destroy();
      resolve("served");
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      resolve(`error ${(e as NodeJS.ErrnoException).code}`);
    });
  });
}

function filter(): SynFilter {
  const f = openSynFilter();
  if (typeof f === "string") throw new Error(f);
  return f;
}

test("the C library loads on this machine (x64 glibc)", () => {
  expect(openSynFilter()).not.toBeTypeOf("string");
});

test("a dropped address gets no answer; other addresses are served", async () => {
  const f = filter();
  f.apply(fd, [ipv4Number("127.57.0.1")!, ipv4Number("127.57.0.3")!]);
  expect(await connectFrom("127.57.0.1")).toBe("no answer");
  expect(await connectFrom("127.57.0.3")).toBe("no answer");
  expect(await connectFrom("127.57.0.2")).toBe("served");
  f.apply(fd, []);
  expect(await connectFrom("127.57.0.1")).toBe("served");
  // Detaching twice is not an error.
  f.apply(fd, []);
});

test("a full list still serves everyone not on it", async () => {
  const f = filter();
  const list = Array.from({ length: MAX_DROPPED_ADDRESSES }, (_, i) => ipv4Number(`127.58.${i >> 8}.${(i & 255) + 1}`)!);
  f.apply(fd, list);
  expect(await connectFrom("127.58.0.1")).toBe("no answer");
  expect(await connectFrom(`127.58.0.${MAX_DROPPED_ADDRESSES}`)).toBe("no answer");
  expect(await connectFrom("127.58.1.1")).toBe("served");
  f.apply(fd, []);
});

test("a bad descriptor is a clear error", () => {
  expect(() => filter().apply(999_999, [ipv4Number("127.57.0.1")!])).toThrow("setsockopt(SO_ATTACH_FILTER) on fd 999999 failed with errno EBADF (9)");
});

test("programs take 1 to MAX_DROPPED_ADDRESSES addresses", () => {
  expect(dropProgram([1]).length).toBe(7 * 8);
  expect(() => dropProgram([])).toThrow();
  expect(() => dropProgram(Array.from({ length: MAX_DROPPED_ADDRESSES + 1 }, (_, i) => i))).toThrow(/1 to 200 addresses/);
});
