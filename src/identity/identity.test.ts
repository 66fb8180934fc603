import { expect, test } from "bun:test";
import { v5 as uuidv5, validate, version } from "uuid";
import { connectionId, deviceUuid } from "./identity.ts";

test("deviceUuid is the RFC 9562 v5 UUID the uuid package computes, for many names and namespaces", () => {
  const namespaces = ["6ba7b810-9dad-11d1-80b4-00c04fd430c8", crypto.randomUUID(), crypto.randomUUID()];
  const names = ["thermo-00042", "", "lock-9#1000", "é-ünïcode-名前", "x".repeat(300), ...Array.from({ length: 200 }, (_, i) => `dev-${i}-${Math.random()}`)];
  for (const ns of namespaces) for (const n of names) expect(deviceUuid(ns, n)).toBe(uuidv5(n, ns));
});

test("connection ids are fresh v4 UUIDs", () => {
  const a = connectionId();
  expect(validate(a) && version(a)).toBe(4);
  expect(connectionId()).not.toBe(a);
});
