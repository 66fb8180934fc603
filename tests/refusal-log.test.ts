/**
 * Failed hellos and bad frames reach the log (they used to show only in /metrics), at most one
 * line per minute per source address and kind, without the token or the bytes the device sent.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { GatewayProcess, removeDir, startGateway } from "./helpers/gateway.ts";
import { TestDevice } from "./helpers/device.ts";

let gw: GatewayProcess;

beforeAll(async () => {
  // One worker: the limit is per worker process, so every attempt meets the same one.
  gw = await startGateway({ gatewayId: "refusal-log", args: ["--workers", "1", "--auth-ban-failures", "0"] });
});

afterAll(async () => {
  await gw.stop();
  removeDir(gw.dir);
});

/** Log lines with `msg` from `remote`, once the gateway had time to write them. */
async function linesFrom(msg: string, remote: string, atLeast: number): Promise<Record<string, any>[]> {
  let got: Record<string, any>[] = [];
  for (let i = 0; i < 100; i++) {
    got = gw.json().filter((l) => l.msg === msg && l.remote === remote);
    if (got.length >= atLeast) break;
    await Bun.sleep(50);
  }
  return got;
}

test("failed hellos are logged at info once per address per minute, naming the hardware id and why, never the token", async () => {
  const badToken = "Wrong-token-that-must-not-be-logged-00000000";
  for (const from of ["127.0.0.21", "127.0.0.21", "127.0.0.21", "127.0.0.22"]) {
    const d = await TestDevice.connect(gw.port, "127.0.0.1", undefined, from);
    d.send({ op: "hello", v: 1, device: "log-victim", token: badToken });
    expect((await d.op("error")).code).toBe("unauthorized");
    await d.waitClosed();
  }
  const a = await linesFrom("Device refused at hello", "127.0.0.21", 1);
  const b = await linesFrom("Device refused at hello", "127.0.0.22", 1);
  expect(a.length).toBe(1);
  expect(b.length).toBe(1);
  expect(a[0]).toMatchObject({ level: "info", hardware_id: "log-victim" });
  expect(String(a[0]!.why)).toContain("token does not match");
  expect(gw.logs.join("\n").includes(badToken)).toBe(false);
});

test("bad frames are logged at info once per address per minute, without what the device sent", async () => {
  const from = "127.0.0.23";
  for (let i = 0; i < 3; i++) {
    const d = await TestDevice.connect(gw.port, "127.0.0.1", undefined, from);
    d.send("this is not json \u001b[2J\n");
    expect((await d.op("error")).code).toBe("bad_frame");
    await d.waitClosed();
  }
  const d = await TestDevice.connect(gw.port, "127.0.0.1", undefined, from);
  await d.hello({ device: "log-ok", token: gw.token("log-ok") });
  d.send({ op: "hello", v: 1, device: "log-ok", token: "x".repeat(600) });
  expect((await d.op("error")).code).toBe("bad_frame");
  d.close();
  const lines = await linesFrom("Bad frame from a device", from, 1);
  await Bun.sleep(200);
  expect((await linesFrom("Bad frame from a device", from, 1)).length).toBe(1);
  expect(lines[0]).toMatchObject({ level: "info", code: "bad_frame" });
  expect(gw.logs.join("\n").includes("\u001b")).toBe(false);
});
