import { expect, test } from "bun:test";
import { hostFor, LoadUsageError, parseLoadArgs } from "./options.ts";

const load = (args: string[]) => {
  const c = parseLoadArgs(args);
  if (c.kind !== "load") throw new Error(`expected load, got ${c.kind}`);
  return c.options;
};

test("processes default to one per 16000 devices", () => {
  expect(load(["--devices", "200000", "--auth", "none"]).processes).toBe(13);
  expect(load(["--devices", "100", "--auth", "none"]).processes).toBe(1);
});

test("too many sockets per process is refused with the --processes that would work", () => {
  expect(() => load(["--devices", "200000", "--processes", "5", "--auth", "none"])).toThrow(/use --processes 12 or more/);
});

test("token auth without a site secret says where to find one", () => {
  expect(() => load(["--devices", "10"])).toThrow(/pass --data <gateway data dir>/);
});

test("--ramp sets the connect rate and conflicts with --connect-rate", () => {
  expect(load(["--devices", "1000", "--ramp", "10", "--auth", "none"]).connectRate).toBe(100);
  expect(() => load(["--ramp", "10", "--connect-rate", "5", "--auth", "none"])).toThrow(LoadUsageError);
});

test("a bad number names the flag and the expected range", () => {
  expect(() => load(["--devices", "lots", "--auth", "none"])).toThrow('Invalid --devices "lots": expected an integer from 1 to 10000000');
});

test("unknown flags are refused", () => {
  expect(() => parseLoadArgs(["--devcies", "3"])).toThrow(/Unknown option '--devcies'/);
});

test("--backend parses the back-end simulator's options", () => {
  const c = parseLoadArgs(["--backend", "--cmd-rate", "50", "--prefix", "x.", "--no-reply"]);
  expect(c).toMatchObject({ kind: "backend", options: { cmdRate: 50, prefix: "x.", reply: false, cmdTopic: "door.unlock" } });
});

test("destination addresses carry across octets and stay in 127/8", () => {
  expect(hostFor("127.0.0.1", 0)).toBe("127.0.0.1");
  expect(hostFor("127.0.0.250", 10)).toBe("127.0.1.4");
  expect(() => hostFor("127.255.255.250", 10)).toThrow(/leaves 127.0.0.0\/8/);
});
