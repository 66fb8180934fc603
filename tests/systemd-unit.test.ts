/** The shipped systemd unit is valid (systemd-analyze verify, when available) and has what installers rely on. */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./helpers/gateway.ts";

const unit = readFileSync(join(ROOT, "config/owsla.service"), "utf8");

test("the unit restarts on failure, raises the descriptor limit, runs as a dedicated user with state in /var/lib/owsla", () => {
  for (const line of ["Restart=on-failure", "RestartPreventExitStatus=2", "LimitNOFILE=1048576", "User=owsla", "StateDirectory=owsla", "NoNewPrivileges=yes", "ProtectSystem=strict"]) {
    expect(unit.split("\n")).toContain(line);
  }
  expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/owsla serve --config \/etc\/owsla\/owsla\.toml$/m);
});

test("the unit is Type=notify with a watchdog and a reload by SIGHUP to the main process", () => {
  for (const line of ["Type=notify", "NotifyAccess=main", "WatchdogSec=90s", "ExecReload=/bin/kill -HUP $MAINPID", "Environment=OWSLA_LOG_FORMAT=json"]) {
    expect(unit.split("\n")).toContain(line);
  }
});

const analyze = Bun.which("systemd-analyze");
test.skipIf(!analyze)("systemd-analyze verify accepts the unit", () => {
  const dir = mkdtempSync(join(tmpdir(), "owsla-unit-"));
  try {
    // verify checks that ExecStart exists and is executable: point it at a real executable.
    const path = join(dir, "owsla.service");
    writeFileSync(path, unit.replace("/usr/local/bin/owsla", process.execPath));
    const r = Bun.spawnSync([analyze!, "verify", path], { stderr: "pipe", stdout: "pipe" });
    const out = (r.stdout.toString() + r.stderr.toString()).split("\n").filter((l) => l.includes("owsla.service"));
    expect(out).toEqual([]);
    expect(r.exitCode).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
