import { describe, expect, test } from "bun:test";
import { SessionStore, emptySession } from "./sessions.ts";

describe("persistent MQTT sessions", () => {
  test("a kept session is taken once, within its expiry", () => {
    const store = new SessionStore();
    const s = emptySession();
    s.subscriptions.push("cmd/#");
    store.keep("dev", s, 60, 1000);
    expect(store.size).toBe(1);
    expect(store.take("dev", 2000)).toBe(s);
    expect(store.take("dev", 2000)).toBeNull();
  });

  test("an expired session is not returned", () => {
    const store = new SessionStore();
    store.keep("dev", emptySession(), 1, 1000);
    expect(store.take("dev", 2001)).toBeNull();
  });

  test("expiry 0 keeps nothing", () => {
    const store = new SessionStore();
    store.keep("dev", emptySession(), 0, 1000);
    expect(store.size).toBe(0);
  });
});
