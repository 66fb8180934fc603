import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Mesh, meshDir } from "./mesh.ts";
import { createLogger } from "../log/logger.ts";

const cleanup: (() => void)[] = [];
afterEach(() => cleanup.splice(0).forEach((f) => f()));

interface Node {
  mesh: Mesh;
  got: [from: number, msg: Record<string, unknown>][];
  ups: number[];
  downs: number[];
}

function node(dir: string, self: number, count: number): Node {
  const n: Node = { mesh: null as unknown as Mesh, got: [], ups: [], downs: [] };
  n.mesh = new Mesh({
    self,
    count,
    dir,
    log: createLogger({ level: "error" }),
    onMessage: (from, msg) => n.got.push([from, msg]),
    onPeerUp: (p) => n.ups.push(p),
    onPeerDown: (p) => n.downs.push(p),
  });
  n.mesh.start();
  cleanup.push(() => n.mesh.close());
  return n;
}

async function until(what: string, fn: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "owsla-mesh-"));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe("worker mesh", () => {
  test("every worker reaches every other over unix sockets, messages arrive in order", async () => {
    const dir = tempDir();
    const nodes = [0, 1, 2].map((i) => node(dir, i, 3));
    await until("all links up", () => nodes.every((n, i) => [0, 1, 2].every((p) => p === i || n.mesh.up(p))));
    for (let k = 0; k < 1000; k++) expect(nodes[2]!.mesh.send(0, { t: "x", k })).toBe(true);
    nodes[0]!.mesh.send(1, { t: "hello", s: "é\n" });
    await until("1000 messages", () => nodes[0]!.got.length === 1000);
    expect(nodes[0]!.got.map(([from, m]) => [from, m.k])).toEqual(Array.from({ length: 1000 }, (_, k) => [2, k]));
    await until("one message", () => nodes[1]!.got.length === 1);
    expect(nodes[1]!.got[0]).toEqual([0, { t: "hello", s: "é\n" }]);
  });

  test("a restarted worker is reconnected and both sides hear about it", async () => {
    const dir = tempDir();
    const a = node(dir, 0, 2);
    let b = node(dir, 1, 2);
    await until("link up", () => a.mesh.up(1) && b.mesh.up(0));
    b.mesh.close();
    await until("a sees b down", () => a.downs.includes(1));
    expect(a.mesh.send(1, { t: "lost" })).toBe(false);
    b = node(dir, 1, 2);
    await until("link up again", () => a.mesh.up(1) && b.mesh.up(0));
    expect(a.ups.filter((p) => p === 1).length).toBe(2);
    a.mesh.send(1, { t: "again" });
    await until("message after restart", () => b.got.length === 1);
    expect(b.got[0]![1]).toEqual({ t: "again" });
  });

  test("the socket directory path stays short whatever the data directory", () => {
    const d = meshDir("/" + "very-long-directory-name/".repeat(20), "gw");
    expect(join(d, "w999.sock").length).toBeLessThan(100);
    expect(meshDir("./data", "gw")).toBe(meshDir(join(process.cwd(), "data"), "gw"));
  });
});
