import { describe, expect, test } from "bun:test";
import { commandTopic, responseTopic, subscriptionAllowed, topicMatches, upstreamTopic } from "./topics.ts";

describe("upstream topics", () => {
  test("levels become the words of the line-protocol topic", () => {
    expect(upstreamTopic("telemetry/temp", 256)).toEqual({ ok: true, word: "telemetry.temp" });
    expect(upstreamTopic("a", 256)).toEqual({ ok: true, word: "a" });
    expect(upstreamTopic("A-b_9/x", 256)).toEqual({ ok: true, word: "A-b_9.x" });
  });

  test("$ topics, wildcards, empty levels, dots and other characters are invalid", () => {
    for (const t of ["$SYS/x", "$presence", "a/+/b", "a/#", "#", "+", "a//b", "/a", "a/", "", "a.b", "a b", "é", "a/b\u0000"]) {
      const r = upstreamTopic(t, 256);
      expect([t, r.ok ? "ok" : r.why]).toEqual([t, "invalid"]);
    }
  });

  test("cmd/ and reply/ are downstream-only: not authorized", () => {
    for (const t of ["cmd", "cmd/x", "reply/1"]) {
      const r = upstreamTopic(t, 256);
      expect(r.ok ? "ok" : r.why).toBe("not_authorized");
    }
    expect(upstreamTopic("cmdx/y", 256).ok).toBe(true);
  });

  test("longer than the limit (or the 128 characters a routing key allows) is invalid", () => {
    expect(upstreamTopic("a".repeat(20), 16).ok).toBe(false);
    expect(upstreamTopic("a".repeat(128), 256).ok).toBe(true);
    expect(upstreamTopic("a".repeat(129), 256).ok).toBe(false);
  });
});

describe("response topics", () => {
  test("must be a valid topic name under reply/", () => {
    expect(responseTopic("reply/42", 256).ok).toBe(true);
    expect(responseTopic("reply/a/b", 256).ok).toBe(true);
    for (const t of ["reply", "reply/+", "other/1", "$SYS/reply", "reply//x"]) expect([t, responseTopic(t, 256).ok]).toEqual([t, false]);
  });
});

describe("commands and subscriptions", () => {
  test("a command's AMQP topic becomes cmd/<levels>", () => {
    expect(commandTopic("cmd")).toBe("cmd/cmd");
    expect(commandTopic("set.temp")).toBe("cmd/set/temp");
  });

  test("only filters inside cmd/# and reply/# are allowed", () => {
    for (const f of ["cmd/#", "cmd/+", "cmd/set/+", "cmd", "reply/#", "reply/+/x"]) expect([f, subscriptionAllowed(f, 256)]).toEqual([f, true]);
    for (const f of ["#", "+/x", "telemetry/#", "$SYS/#", "cmd/#/x", "cmd/a+", "cmd//x", "cmdx/#", "c".repeat(300)]) expect([f, subscriptionAllowed(f, 256)]).toEqual([f, false]);
  });

  test("filters match topic names by MQTT's wildcard rules", () => {
    expect(topicMatches("cmd/#", "cmd/set/temp")).toBe(true);
    expect(topicMatches("cmd/#", "cmd")).toBe(true);
    expect(topicMatches("cmd/+", "cmd/set")).toBe(true);
    expect(topicMatches("cmd/+", "cmd/set/temp")).toBe(false);
    expect(topicMatches("cmd/set/temp", "cmd/set/temp")).toBe(true);
    expect(topicMatches("cmd/set", "cmd/set/temp")).toBe(false);
    expect(topicMatches("reply/+", "cmd/x")).toBe(false);
  });
});
