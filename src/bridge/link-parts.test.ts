import { describe, expect, test } from "bun:test";
import { ReconnectBackoff, STABLE_LINK_MS } from "./backoff.ts";
import { classifyFailure } from "./link-errors.ts";
import { rewriteStartOk } from "./external-login.ts";
import { BrokerLink } from "./link.ts";
import { topology } from "./topology.ts";
import { createLogger } from "../log/logger.ts";
import { nodeLabel, scrubSecrets, splitUrlList, startNode } from "../config/url-list.ts";

describe("reconnect backoff", () => {
  test("failures climb the curve up to the cap; a connection that drops at once does not reset it", () => {
    let now = 0;
    const b = new ReconnectBackoff(100, 1000, () => now, () => 0.999);
    const delays = [b.next(), b.next(), b.next(), b.next(), b.next()];
    expect(delays).toEqual([100, 199, 399, 799, 999]);
    b.up();
    now += 50; // closed by the broker right after opening
    expect(b.next()).toBe(999);
  });

  test("a link that stayed up for the stable period starts over at the shortest delay", () => {
    let now = 0;
    const b = new ReconnectBackoff(100, 1000, () => now, () => 0.999);
    for (let i = 0; i < 5; i++) b.next();
    b.up();
    now += STABLE_LINK_MS;
    expect(b.next()).toBe(100);
  });
});

describe("link failure kinds", () => {
  test("broker refusals, network errors and TLS errors are told apart", () => {
    expect(classifyFailure(new Error("connection closed: ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. (403)"))).toBe("auth_refused");
    expect(classifyFailure(new Error("connection closed: NOT_ALLOWED - vhost nope not found (530)"))).toBe("vhost_missing");
    expect(classifyFailure(new Error("channel 1 closed: ACCESS_REFUSED - access to exchange 'owsla.up' in vhost '/' refused for user 'x' (403)"))).toBe("permission_denied");
    expect(classifyFailure(new Error("connect ECONNREFUSED 127.0.0.1:5999"))).toBe("unreachable");
    expect(classifyFailure(new Error("self signed certificate in certificate chain"))).toBe("tls");
    expect(classifyFailure(new Error("connection closed: CONNECTION_FORCED - broker forced connection closure with reason 'shutdown' (320)"))).toBe("closed_by_broker");
    expect(classifyFailure(new Error("channel 2 closed: PRECONDITION_FAILED - inequivalent arg 'x-queue-type' (406)"))).toBe("topology_conflict");
    expect(classifyFailure(new Error("Message rejected"))).toBe("nacked");
  });
});

describe("broker URL lists", () => {
  test("a list is split only before a new amqp:// or amqps:// scheme", () => {
    expect(splitUrlList("amqp://a:b@h1:5672, amqps://a:b@h2/v ,amqp://h3")).toEqual(["amqp://a:b@h1:5672", "amqps://a:b@h2/v", "amqp://h3"]);
    expect(splitUrlList("amqp://a:p,w@h1")).toEqual(["amqp://a:p,w@h1"]);
  });

  test("node labels carry host and port only", () => {
    expect(nodeLabel("amqp://u:secret@mq-1")).toBe("mq-1:5672");
    expect(nodeLabel("amqps://u:secret@mq-2:5999/v")).toBe("mq-2:5999");
  });

  test("passwords echoed by the broker are scrubbed, raw and percent-decoded", () => {
    const url = "amqp://guest:guest@h/,amqp://guest:s%40cret@h2";
    const echoed = "NOT_ALLOWED - vhost ,amqp://guest:s@cret@h2 not found (530)";
    const out = scrubSecrets(echoed, [url]);
    expect(out).not.toContain("s@cret");
    expect(out).toContain("not found");
  });
});

describe("EXTERNAL login", () => {
  /** A start-ok frame as amqp-client 4.1.1 writes it. */
  function startOk(table: Uint8Array, mech: string, response: string, locale: string): Uint8Array {
    const enc = new TextEncoder();
    const m = enc.encode(mech);
    const r = enc.encode(response);
    const l = enc.encode(locale);
    const payload = 4 + 4 + table.length + 1 + m.length + 4 + r.length + 1 + l.length;
    const out = new Uint8Array(7 + payload + 1);
    const v = new DataView(out.buffer);
    out[0] = 1;
    v.setUint32(3, payload);
    v.setUint16(7, 10);
    v.setUint16(9, 11);
    let o = 11;
    v.setUint32(o, table.length);
    out.set(table, (o += 4));
    o += table.length;
    out[o++] = m.length;
    out.set(m, o);
    o += m.length;
    v.setUint32(o, r.length);
    out.set(r, (o += 4));
    o += r.length;
    out[o++] = l.length;
    out.set(l, o);
    out[out.length - 1] = 0xce;
    return out;
  }

  test("start-ok is rewritten to mechanism EXTERNAL with an empty response; the password is gone", () => {
    const table = new Uint8Array([1, 2, 3, 4, 5]);
    const out = rewriteStartOk(startOk(table, "PLAIN", "\0guest\0hunter2", "en_US"))!;
    expect(out).not.toBeNull();
    const text = new TextDecoder().decode(out);
    expect(text).toContain("EXTERNAL");
    expect(text).not.toContain("hunter2");
    expect(out.at(-1)).toBe(0xce);
    const v = new DataView(out.buffer);
    expect(v.getUint32(3)).toBe(out.length - 8);
    expect([...out.subarray(15, 20)]).toEqual([1, 2, 3, 4, 5]);
  });

  test("other frames pass untouched", () => {
    expect(rewriteStartOk(new Uint8Array([65, 77, 81, 80, 0, 0, 9, 1]))).toBeNull();
    const tuneOk = new Uint8Array(20);
    tuneOk[0] = 1;
    new DataView(tuneOk.buffer).setUint16(7, 10);
    new DataView(tuneOk.buffer).setUint16(9, 31);
    expect(rewriteStartOk(tuneOk)).toBeNull();
  });
});

describe("publish failures", () => {
  test("a broker nack resets the link (re-send on a fresh connection); a closed channel does not", () => {
    const link = new BrokerLink({
      url: "amqp://u:p@mq-1,amqp://u:p@mq-2",
      topology: topology("", "gw"),
      heartbeatS: 10,
      reconnectMinMs: 100,
      reconnectMaxMs: 1000,
      prefetch: 10,
      name: "test",
      log: createLogger({ level: "error" }),
    });
    expect(link.nodes).toEqual(["mq-1:5672", "mq-2:5672"]);
    const resets: string[] = [];
    link.reset = (why: string) => void resets.push(why);
    link.state = "up";
    link.publishFailed(new Error("channel 1 closed: connection lost"));
    expect(resets).toEqual([]);
    link.publishFailed(new Error("Message rejected"));
    expect(resets.length).toBe(1);
  });
});

describe("start node", () => {
  test("links of different gateways and workers spread over the nodes; one link always starts at the same node", () => {
    const counts = [0, 0, 0];
    for (let g = 1; g <= 60; g++) for (let w = 0; w < 2; w++) counts[startNode(`owsla gw-${String(g).padStart(2, "0")} worker ${w}`, 3)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(20); // 120 links, 40 per node if even
    expect(startNode("owsla gw-07 worker 1", 3)).toBe(startNode("owsla gw-07 worker 1", 3));
    expect(startNode("anything", 1)).toBe(0);
  });
});
