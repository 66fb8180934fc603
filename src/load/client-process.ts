/**
 * A client process of `owsla load` (`owsla load --child client`): runs one {@link Fleet} as
 * the coordinator says (start, go, msgs, stop) and reports its counters every second.
 */
import { connectToCoordinator } from "./child-link.ts";
import { Fleet } from "./fleet.ts";
import type { FromClient, ToClient } from "./ipc.ts";

/** Interval of `tick` reports, in ms. */
const TICK_REPORT_MS = 1000;
/** Time given to closing sockets before the process exits, in ms. */
const CLOSE_GRACE_MS = 300;

/** Runs the client role until the coordinator stops it; resolves with the exit code. */
export function runClientProcess(): Promise<number> {
  let fleet: Fleet | null = null;
  let report: ReturnType<typeof setInterval> | null = null;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));

  const finish = (code: number) => {
    if (report) clearInterval(report);
    fleet?.stop();
    setTimeout(() => resolveExit(code), CLOSE_GRACE_MS);
  };

  const link = connectToCoordinator<ToClient, FromClient>(
    (m) => {
      try {
        switch (m.t) {
          case "start":
            fleet = new Fleet(m.spec);
            link.send({ t: "ready" });
            return;
          case "go":
            fleet?.go();
            report = setInterval(() => fleet && link.send({ t: "tick", c: fleet.snapshot(), allWelcomedAt: fleet.allWelcomedAt }), TICK_REPORT_MS);
            return;
          case "msgs":
            fleet?.startMessages();
            return;
          case "stop":
            if (fleet) link.send({ t: "final", f: fleet.final() });
            finish(0);
            return;
        }
      } catch (e) {
        link.send({ t: "fatal", message: (e as Error).stack ?? String(e) });
        finish(1);
      }
    },
    () => finish(0),
  );
  process.on("uncaughtException", (e) => {
    link.send({ t: "fatal", message: e.stack ?? String(e) });
    finish(1);
  });
  return exited;
}
