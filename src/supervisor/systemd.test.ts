import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { memoryLogger } from "../log/logger.ts";
import { NotifyReceiver, python } from "../../tests/helpers/notify-receiver.ts";
import { sockaddrUn, openNotifySocket } from "./notify-socket.ts";
import { ServiceManager, silentWorkers, statusLine } from "./systemd.ts";
import type { WorkerInfo } from "./supervisor.ts";

const worker = (id: number, o: Partial<WorkerInfo> = {}): WorkerInfo => ({ id, pid: 100 + id, restarts: 0, startedAt: 0, up: true, ready: true, lastPongAt: 1000, ...o });

describe("sockaddrUn", () => {
  test("a path is NUL-terminated after the AF_UNIX family", () => {
    const a = sockaddrUn("/run/x");
    expect([...a.slice(0, 2)]).toEqual([1, 0]);
    expect(new TextDecoder().decode(a.slice(2))).toBe("/run/x\0");
  });

  test("an abstract name starts with a NUL byte and has no terminator", () => {
    const a = sockaddrUn("@sd/notify");
    expect([...a.slice(2)]).toEqual([0, ...new TextEncoder().encode("sd/notify")]);
  });

  test("anything else, or a path too long, is refused with the reason", () => {
    expect(() => sockaddrUn("relative/path")).toThrow(/neither an absolute path nor an abstract socket name/);
    expect(() => sockaddrUn("/" + "x".repeat(120))).toThrow(/longer than the 108 bytes/);
  });
});

describe("silentWorkers", () => {
  test("is null while every worker answered within the window", () => {
    expect(silentWorkers([worker(0), worker(1, { lastPongAt: 0, startedAt: 1500 })], 2000, 1000)).toBeNull();
  });

  test("names a worker that stopped answering and one that is not running", () => {
    const why = silentWorkers([worker(0, { lastPongAt: 500 }), worker(1, { up: false }), worker(2)], 2000, 1000);
    expect(why).toBe("worker 0 (no answer for 1500 ms), worker 1 (not running) did not answer the heartbeat within 1000 ms");
  });
});

describe("statusLine", () => {
  test("counts devices over running workers and says how the broker link is", () => {
    expect(statusLine([{ up: true, connections: 3, broker: "up" }, { up: true, connections: 1, broker: "up" }])).toBe("4 devices connected on 2 of 2 workers; broker link up");
    expect(statusLine([{ up: true, connections: 1, broker: "down" }, { up: false, connections: null, broker: null }])).toBe(
      "1 device connected on 1 of 2 workers; broker link down (messages kept in the outbox)",
    );
    expect(statusLine([{ up: true, connections: 0, broker: "up" }, { up: true, connections: 0, broker: "connecting" }])).toBe("0 devices connected on 2 of 2 workers; broker link up on 1 of 2 workers");
  });
});

describe.skipIf(!python())("ServiceManager over a real datagram socket", () => {
  let rx: NotifyReceiver;
  beforeAll(async () => {
    rx = await NotifyReceiver.start();
  });
  afterAll(async () => {
    await rx.stop();
  });

  test("openNotifySocket delivers one datagram per send", async () => {
    const s = openNotifySocket(rx.path);
    s.send("STATUS=hello\nX=1");
    s.close();
    await rx.until((d) => d.includes("STATUS=hello\nX=1"));
    expect(() => s.send("again")).toThrow(/closed/);
  });

  test("sending to a socket nobody binds fails with the errno, once in the log", () => {
    const log = memoryLogger();
    const sm = new ServiceManager({ env: { NOTIFY_SOCKET: rx.dir + "/nobody.sock" }, pid: 1, log, unhealthy: () => null, status: async () => "" });
    sm.notify("READY=1");
    sm.notify("READY=1");
    expect(log.lines.filter((l) => l.level === "warn").map((l) => (l.err as { message: string }).message)).toEqual([expect.stringMatching(/ENOENT|ECONNREFUSED/)]);
    sm.dispose();
  });

  test("without NOTIFY_SOCKET it is inert", () => {
    const sm = new ServiceManager({ env: {}, pid: 1, log: memoryLogger(), unhealthy: () => null, status: async () => "" });
    expect(sm.active).toBe(false);
    expect(sm.watchdogMs).toBe(0);
  });

  test("the watchdog is off when WATCHDOG_PID names another process", () => {
    const sm = new ServiceManager({ env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: "2000000", WATCHDOG_PID: "2" }, pid: 1, log: memoryLogger(), unhealthy: () => null, status: async () => "" });
    expect(sm.watchdogMs).toBe(0);
    sm.dispose();
    const on = new ServiceManager({ env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: "2000000", WATCHDOG_PID: "1" }, pid: 1, log: memoryLogger(), unhealthy: () => null, status: async () => "" });
    expect(on.watchdogMs).toBe(1000);
    on.dispose();
  });

  test("a WatchdogSec shorter than the supervisor's busy grace plus a restart is warned about", () => {
    const warned = (usec: string) => {
      const log = memoryLogger();
      new ServiceManager({ env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: usec }, pid: 1, log, unhealthy: () => null, status: async () => "", supervisorGraceMs: 60_000 }).dispose();
      return log.lines.filter((l) => l.level === "warn").map((l) => String(l.msg));
    };
    expect(warned("30000000")).toEqual([expect.stringMatching(/^WatchdogSec=30s is shorter than workers.busy_timeout_s plus a restart \(70 s\)/)]);
    expect(warned("90000000")).toEqual([]);
  });

  test("READY with status, keep-alives only while healthy, RELOADING then READY, STOPPING", async () => {
    let why: string | null = null;
    const log = memoryLogger();
    const sm = new ServiceManager({ env: { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: "100000" }, pid: 42, log, unhealthy: () => why, status: async () => "7 devices connected" });
    await sm.ready();
    await rx.until((d) => d.includes("READY=1\nSTATUS=7 devices connected\nMAINPID=42"));
    await rx.until((d) => d.filter((x) => x === "WATCHDOG=1").length >= 2);
    why = "worker 1 (no answer for 900 ms) did not answer";
    await rx.until((d) => d.includes("STATUS=Unhealthy: worker 1 (no answer for 900 ms) did not answer"));
    const fed = rx.with("WATCHDOG=1").length;
    await Bun.sleep(300); // three keep-alive periods while unhealthy
    expect(rx.with("WATCHDOG=1").length).toBe(fed);
    expect(log.lines.some((l) => l.level === "warn" && String(l.msg).startsWith("Not feeding the systemd watchdog: worker 1"))).toBe(true);
    why = null;
    await rx.until((d) => d.filter((x) => x === "WATCHDOG=1").length > fed);
    sm.reloading();
    await sm.reloaded();
    const reloadAt = (d: string[]) => d.findIndex((x) => x.startsWith("RELOADING=1\n"));
    await rx.until((d) => reloadAt(d) >= 0 && d.slice(reloadAt(d) + 1).some((x) => x === "READY=1\nSTATUS=7 devices connected"));
    expect(rx.datagrams[reloadAt(rx.datagrams)]).toMatch(/^RELOADING=1\nSTATUS=Reloading settings\nMONOTONIC_USEC=\d+$/);
    sm.stopping("SIGTERM");
    await rx.until((d) => d.includes("STOPPING=1\nSTATUS=Stopping: SIGTERM"));
    const after = rx.with("WATCHDOG=1").length;
    await Bun.sleep(250);
    expect(rx.with("WATCHDOG=1").length).toBe(after);
    sm.dispose();
  });
});
