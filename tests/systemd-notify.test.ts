/**
 * systemd integration without systemd: a real gateway started with NOTIFY_SOCKET pointing at a
 * fake notification socket (tests/helpers/notify-receiver.ts) and WATCHDOG_USEC set, as systemd
 * would start a Type=notify service with WatchdogSec. Checks READY after every worker listens,
 * STATUS lines, keep-alives only while every worker answers, RELOADING/READY around SIGHUP, and
 * STOPPING.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { NotifyReceiver, python } from "./helpers/notify-receiver.ts";
import { removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";

describe.skipIf(!python())("systemd notifications (fake NOTIFY_SOCKET)", () => {
  let rx: NotifyReceiver;
  let gw: GatewayProcess;

  beforeAll(async () => {
    rx = await NotifyReceiver.start();
    gw = await startGateway({
      gatewayId: "sd",
      // Pings every 100 ms, a hang only after 60 s: a stopped worker is "not answering" for the
      // watchdog long before the supervisor would kill it.
      args: ["--workers", "2", "--workers-heartbeat-ms", "100", "--workers-hang-timeout-ms", "60000"],
      env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: "400000" },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    if (gw) removeDir(gw.dir);
    await rx?.stop();
  });

  test("READY=1 comes once, from the supervisor, after every worker listens, with a status line", async () => {
    await rx.until((d) => d.some((x) => x.startsWith("READY=1\n")));
    const ready = rx.with("READY=1");
    expect(ready).toHaveLength(1);
    expect(ready[0]).toContain(`MAINPID=${gw.proc.pid}`);
    // Ready means listening: the broker link may still be coming up (messages wait in the outbox).
    expect(ready[0]).toMatch(/STATUS=0 devices connected on 2 of 2 workers; broker link (up|down)/);
    const readyLog = gw.logs.findIndex((l) => l.includes("Gateway ready: all workers listening"));
    expect(readyLog).toBeGreaterThan(-1);
    // After every worker listens: both workers logged "listening" (device and MQTT ports bound)
    // no later than READY=1 arrived (one system clock; log times have millisecond resolution).
    const readyAt = rx.receivedAt[rx.datagrams.findIndex((d) => d.startsWith("READY=1\n"))]!;
    const listening = gw.json().filter((l) => l.msg === "Worker listening for devices");
    expect(listening.map((l) => l.worker).sort()).toEqual([0, 1]);
    for (const l of listening) expect(Date.parse(l.t)).toBeLessThanOrEqual(readyAt);
    // Workers never talk to systemd: nothing but the supervisor's datagrams arrive.
    expect(rx.datagrams.every((d) => /^(READY|WATCHDOG|STATUS|RELOADING|STOPPING)=/.test(d))).toBe(true);
  });

  test("WATCHDOG=1 keeps coming while every worker answers, stops while one does not, and resumes", async () => {
    await rx.until((d) => d.filter((x) => x === "WATCHDOG=1").length >= 3);
    const [pid] = gw.workerPids();
    process.kill(pid!, "SIGSTOP");
    try {
      await rx.until((d) => d.some((x) => x.startsWith("STATUS=Unhealthy: worker ")));
      const fed = rx.with("WATCHDOG=1").length;
      await Bun.sleep(1000); // five keep-alive periods with a worker that does not answer
      expect(rx.with("WATCHDOG=1").length).toBe(fed);
      expect(gw.logs.some((l) => l.includes("Not feeding the systemd watchdog: worker"))).toBe(true);
    } finally {
      process.kill(pid!, "SIGCONT");
    }
    const before = rx.with("WATCHDOG=1").length;
    await rx.until((d) => d.filter((x) => x === "WATCHDOG=1").length > before);
    expect(gw.logs.some((l) => l.includes("Every worker answers again; feeding the systemd watchdog again"))).toBe(true);
  });

  test("STATUS counts connected devices", async () => {
    const { dev } = await gw.device("sd-status");
    gw.proc.kill("SIGHUP"); // a reload sends a fresh status at once
    await rx.until((d) => d.some((x) => x.startsWith("READY=1\nSTATUS=1 device connected on 2 of 2 workers; broker link up")));
    dev.close();
  });

  test("SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1; every worker applies the reload", async () => {
    const start = rx.datagrams.length;
    gw.proc.kill("SIGHUP");
    await rx.until((d) => {
      const i = d.findIndex((x, n) => n >= start && x.startsWith("RELOADING=1\n"));
      return i >= 0 && d.slice(i + 1).some((x) => x.startsWith("READY=1\n"));
    });
    expect(rx.datagrams.slice(start).find((x) => x.startsWith("RELOADING=1\n"))).toMatch(/MONOTONIC_USEC=\d+/);
    const applied = () => gw.json().filter((l) => l.msg === "Reloaded settings applied").length;
    for (let i = 0; i < 100 && applied() < 4; i++) await Bun.sleep(50);
    expect(applied()).toBe(4); // two reloads so far, two workers
    expect(gw.proc.exitCode).toBeNull();
  });

  test("SIGTERM: STOPPING=1, and the gateway exits 0", async () => {
    expect(await gw.stop()).toBe(0);
    await rx.until((d) => d.some((x) => x.startsWith("STOPPING=1\n")));
  });
});
