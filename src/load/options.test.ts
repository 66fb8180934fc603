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

test("--mqtt targets the MQTT port (default 1883), MQTT 5, the gateway", () => {
  const o = load(["--mqtt", "--auth", "none", "--port", "7000"]);
  expect(o.mqtt).toEqual({ version: 5, broker: false });
  expect(o.port).toBe(1883);
  expect(load(["--mqtt", "--auth", "none", "--mqtt-port", "11883", "--mqtt-version", "3.1.1"])).toMatchObject({ port: 11883, mqtt: { version: 4 } });
  expect(load(["--auth", "none"]).mqtt).toBeNull();
});

test("--mqtt-broker defaults to anonymous devices and answers over MQTT on the broker", () => {
  const o = load(["--mqtt", "--mqtt-broker", "--mqtt-port", "18831", "--with-backend", "--host-base", "127.9.0.1"]);
  expect(o.auth).toBe("none");
  expect(o.backend?.mqtt).toEqual({ host: "127.9.0.1", port: 18831, version: 5 });
  expect(load(["--mqtt", "--auth", "none", "--with-backend"]).backend?.mqtt).toBeNull();
});

test("MQTT flags without --mqtt, a bad version, tokens or commands on a plain broker are refused", () => {
  expect(() => load(["--mqtt-port", "1883", "--auth", "none"])).toThrow("--mqtt-port needs --mqtt");
  expect(() => load(["--mqtt", "--mqtt-version", "4", "--auth", "none"])).toThrow('Invalid --mqtt-version "4": expected 5 or 3.1.1');
  expect(() => load(["--mqtt", "--mqtt-broker", "--auth", "token", "--data", "/tmp"])).toThrow(/anonymous broker/);
  expect(() => load(["--mqtt", "--mqtt-broker", "--with-backend", "--cmd-rate", "5"])).toThrow(/--cmd-rate is not supported with --mqtt-broker/);
});
