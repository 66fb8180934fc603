/**
 * Runs the back-end simulator standalone (`owsla load --backend`: progress on stderr, JSON
 * summary on stdout) or as a child of the coordinator (`owsla load --with-backend`).
 */
import { BackendSim } from "./backend.ts";
import { MqttBackendSim } from "./mqtt-backend.ts";
import { connectToCoordinator } from "./child-link.ts";
import type { FromBackend, ToBackend } from "./ipc.ts";
import type { BackendOptions } from "./options.ts";
import { backendProgressLine, backendSummary } from "./report.ts";

/** The simulator `opts` asks for: AMQP (the gateway's broker) or MQTT (a plain MQTT broker). */
function newSim(opts: BackendOptions): BackendSim | MqttBackendSim {
  return opts.mqtt ? new MqttBackendSim(opts) : new BackendSim(opts);
}

/** `owsla load --backend`: runs for the configured duration or until SIGINT/SIGTERM. */
export async function runBackendStandalone(opts: BackendOptions): Promise<number> {
  const sim = newSim(opts);
  await sim.start();
  sim.startCommands();
  const t0 = performance.now();
  let prev = { ...sim.snapshot(), errors: {} };
  const progress = setInterval(() => {
    const c = sim.snapshot();
    if (!opts.quiet) process.stderr.write(backendProgressLine((performance.now() - t0) / 1000, c, prev) + "\n");
    prev = { ...c, errors: { ...c.errors } };
  }, 1000);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, opts.durationS * 1000);
    const stop = () => {
      clearTimeout(timer);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  clearInterval(progress);
  const final = sim.final();
  await sim.stop();
  process.stdout.write(JSON.stringify(backendSummary(final, (performance.now() - t0) / 1000), null, 2) + "\n");
  return 0;
}

/** `owsla load --child backend`: driven by the coordinator over IPC. */
export function runBackendChild(): Promise<number> {
  let sim: BackendSim | MqttBackendSim | null = null;
  let report: ReturnType<typeof setInterval> | null = null;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  const finish = async (code: number) => {
    if (report) clearInterval(report);
    await sim?.stop();
    resolveExit(code);
  };
  const link = connectToCoordinator<ToBackend, FromBackend>(
    (m) => {
      switch (m.t) {
        case "start":
          sim = newSim(m.options);
          sim.start().then(
            () => {
              link.send({ t: "ready" });
              report = setInterval(() => sim && link.send({ t: "tick", c: sim.snapshot() }), 1000);
            },
            (e: Error) => {
              link.send({ t: "fatal", message: e.message });
              void finish(1);
            },
          );
          return;
        case "cmds":
          sim?.startCommands();
          return;
        case "stop":
          if (sim) link.send({ t: "final", f: sim.final() });
          void finish(0);
          return;
      }
    },
    () => void finish(0),
  );
  return exited;
}
