/**
 * journald priorities: when stdout is the journal stream (JOURNAL_STREAM names its device and
 * inode, as systemd sets it), every line of the supervisor and its workers starts with its
 * syslog priority, so `journalctl -p warning` shows warnings and errors only. Here stdout and
 * stderr are a file, and JOURNAL_STREAM names that file.
 */
import { afterAll, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BROKER_URL, freePort, owslaCommand } from "./helpers/gateway.ts";

const dir = mkdtempSync(join(tmpdir(), "owsla-journal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs owsla with stdout and stderr going to one file; JOURNAL_STREAM names it (or another file). */
function spawnToFile(args: string[], name: string, journalIsOther = false) {
  const out = join(dir, `${name}.log`);
  writeFileSync(out, "");
  const other = join(dir, `${name}.other`);
  writeFileSync(other, "");
  const st = statSync(journalIsOther ? other : out, { bigint: true });
  // One open file (O_APPEND) for both, as the journal is one stream.
  const fd = openSync(out, "a");
  const proc = Bun.spawn([...owslaCommand(), ...args], {
    stdout: fd,
    stderr: fd,
    stdin: "ignore",
    env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
  });
  closeSync(fd);
  return { proc, lines: () => readFileSync(out, "utf8").split("\n").filter(Boolean) };
}

const PRIORITY: Record<string, string> = { error: "<3>", warn: "<4>", info: "<6>", debug: "<7>" };

test("supervisor and worker lines carry their priority when stdout is the journal", async () => {
  const data = join(dir, "data");
  const { proc, lines } = spawnToFile(["serve", "--data", data, "--port", String(freePort()), "--api-port", "0", "--mqtt-port", "0", "--workers", "2", "--broker", BROKER_URL, "--log-format", "json", "--broker-url", "amqp://guest:guest@127.0.0.1:1"], "serve");
  for (let i = 0; i < 400 && !lines().some((l) => l.includes("Gateway ready")); i++) await Bun.sleep(25);
  // Broker port 1 refuses: the workers warn about the broker link.
  for (let i = 0; i < 400 && !lines().some((l) => l.startsWith("<4>")); i++) await Bun.sleep(25);
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
  const json = lines().filter((l) => /^<\d>\{/.test(l));
  expect(json.length).toBeGreaterThan(5);
  for (const l of json) {
    const rec = JSON.parse(l.slice(3));
    expect(l.slice(0, 3)).toBe(PRIORITY[rec.level]!);
  }
  const workers = json.map((l) => JSON.parse(l.slice(3))).filter((r) => r.worker === 0 || r.worker === 1);
  expect(workers.length).toBeGreaterThan(0);
  expect(json.some((l) => l.startsWith("<4>"))).toBe(true);
  // Every line has a priority, the API token notice written before the logger exists included.
  expect(lines().filter((l) => !/^<\d>/.test(l))).toEqual([]);
  expect(lines().filter((l) => l.startsWith("<6>") && l.includes("generated the control API token"))).toHaveLength(1);
});

test("a start-up error and a config error are <3> lines", async () => {
  const holder = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
  try {
    const taken = spawnToFile(["serve", "--data", join(dir, "d2"), "--port", String(holder.port), "--api-port", "0", "--mqtt-port", "0", "--log-format", "json"], "taken");
    expect(await taken.proc.exited).toBe(3);
    expect(taken.lines().filter((l) => l.startsWith("<3>"))).toHaveLength(1);
  } finally {
    holder.stop(true);
  }
  const bad = spawnToFile(["serve", "--device-port", "nope"], "bad");
  expect(await bad.proc.exited).toBe(2);
  expect(bad.lines()[0]).toMatch(/^<3>.*device.port/);
});

test("no prefix when JOURNAL_STREAM names another file (stdout is not the journal)", async () => {
  const bad = spawnToFile(["serve", "--device-port", "nope"], "plain", true);
  expect(await bad.proc.exited).toBe(2);
  expect(bad.lines()[0]).not.toMatch(/^<\d>/);
  expect(bad.lines()[0]).toContain("device.port");
});
