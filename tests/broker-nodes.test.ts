/**
 * Several broker URLs: the link uses one node and, when it is lost, moves to the next with the
 * capped, jittered backoff; the log and /metrics name the node in use, never the password. Two
 * cuttable TCP proxies in front of the shared broker stand in for two cluster nodes (the real
 * cluster, with node kills, is tests/cluster-failover.test.ts).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BrokerProxy } from "./helpers/proxy.ts";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";

let a: BrokerProxy;
let b: BrokerProxy;
let gw: GatewayProcess;
let backend: TestBackend;
let apiPort = 0;
let apiToken = "";

beforeAll(async () => {
  a = new BrokerProxy().up();
  b = new BrokerProxy().up();
  // The list as an operator would type it, with a password that must not show anywhere.
  const urls = `amqp://guest:guest@127.0.0.1:${a.port}, amqp://guest:guest@127.0.0.1:${b.port}`;
  gw = await startGateway({ gatewayId: "nodes", args: ["--workers", "1", "--broker", urls, "--broker-heartbeat-s", "2", "--broker-reconnect-max-ms", "500"] });
  const line = gw.json().findLast((l) => l.msg === "Control API listening");
  apiPort = Number(new URL(line!.url).port);
  apiToken = readFileSync(join(gw.dir, "api.token"), "utf8").trim();
  backend = await new TestBackend(gw.prefix).start();
});

afterAll(async () => {
  a.up();
  b.up();
  await gw.stop();
  await backend.stop([gw.gatewayId]);
  a.down();
  b.down();
  removeDir(gw.dir);
});

async function nodeGauges(): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/metrics`, { headers: { authorization: `Bearer ${apiToken}` } });
  const text = await res.text();
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    // One series per worker: owsla_broker_node{node="host:port",worker="0"} 1
    const x = /^owsla_broker_node\{[^}]*node="([^"]+)"[^}]*\} (\d+)/.exec(line);
    if (x) m.set(x[1]!, Math.max(m.get(x[1]!) ?? 0, Number(x[2])));
  }
  return m;
}

async function until<T>(what: string, fn: () => Promise<T | null> | T | null, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== null && v !== undefined) return v;
    await Bun.sleep(100);
  }
  throw new Error(`Timed out waiting for ${what}`);
}

test("the link uses one node, moves to the next when it is lost, and says which in the log and /metrics", async () => {
  // Which node a link starts on depends on its name (links of a site spread over the nodes).
  const first = await nodeGauges();
  const [used, other] = first.get(`127.0.0.1:${a.port}`) === 1 ? [a, b] : [b, a];
  expect(first.get(`127.0.0.1:${used.port}`)).toBe(1);
  expect(first.get(`127.0.0.1:${other.port}`)).toBe(0);

  used.down();
  await until("the link on the other node", async () => ((await nodeGauges()).get(`127.0.0.1:${other.port}`) === 1 ? true : null));
  const ups = gw.json().filter((l) => l.msg === "Broker link up" && l.worker === 0);
  expect(ups.at(-1)!.node).toBe(`127.0.0.1:${other.port}`);
  const down = gw.json().find((l) => l.msg?.startsWith("Broker link down") && l.worker === 0);
  expect(down!.next_node).toBe(`127.0.0.1:${other.port}`);

  // Traffic flows through the second node.
  const { dev, welcome } = await gw.device("nodes-sensor");
  dev.send({ op: "pub", topic: "t", body: { via: "b" }, ref: "r1" });
  expect((await dev.op("ack")).ref).toBe("r1");
  await backend.wait((r) => r.headers.device_id === welcome.id && r.body.via === "b"); // "b": the other node
  await backend.command(gw.gatewayId, welcome.id, { go: 1 }, { messageId: "via-b" });
  expect((await dev.op("cmd")).id).toBe("via-b");
  dev.close();

  // Passwords appear nowhere in the log.
  expect(gw.logs.join("\n")).not.toMatch(/guest:guest/);
});
