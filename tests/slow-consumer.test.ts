/** A device that stops reading is closed as a slow consumer instead of growing gateway memory. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { Database } from "bun:sqlite";
import { storedCommands } from "./helpers/store-files.ts";
import { join } from "node:path";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestBackend } from "./helpers/backend.ts";

let gw: GatewayProcess;
let backend: TestBackend;

beforeAll(async () => {
  gw = await startGateway({ gatewayId: "slow", args: ["--workers", "1", "--device-max-outbound-bytes", "200000"] });
  backend = await new TestBackend(gw.prefix).start();
});

afterAll(async () => {
  await gw.stop();
  await backend.stop([gw.gatewayId]);
  removeDir(gw.dir);
});

test("a device that stops reading is closed with slow_consumer once its output queue is full", async () => {
  const sock = connect({ host: "127.0.0.1", port: gw.port });
  await new Promise<void>((r) => sock.once("connect", () => r()));
  let buf = "";
  const welcome = await new Promise<any>((resolve) => {
    const onData = (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf("\n");
      if (i >= 0) {
        sock.off("data", onData);
        resolve(JSON.parse(buf.slice(0, i)));
      }
    };
    sock.on("data", onData);
    sock.write(JSON.stringify({ op: "hello", v: 1, device: "lazy-reader", token: gw.token("lazy-reader") }) + "\n");
  });
  expect(welcome.op).toBe("welcome");
  sock.pause(); // stop reading: kernel buffers fill, then the gateway's queue
  const closed = new Promise<void>((r) => sock.once("close", () => r()));
  const big = { blob: "x".repeat(50_000) };
  for (let i = 0; i < 400; i++) await backend.command(gw.gatewayId, welcome.id, big, { messageId: `big-${i}` });
  // Keep draining a trickle so the close is observed.
  setTimeout(() => sock.resume(), 3000);
  await closed;
  await Bun.sleep(200);
  const db = new Database(join(gw.dir, "owsla.db"), { readonly: true });
  const row = db.query("SELECT close_reason, connected FROM devices WHERE id = ?").get(welcome.id) as any;
  const pending = storedCommands(gw.dir, welcome.id);
  db.close();
  expect(row.close_reason).toBe("slow_consumer");
  expect(row.connected).toBe(0);
  // Nothing is lost: un-acked commands stay in the inbox for the next connection.
  expect(pending).toBe(400);
}, 30_000);
