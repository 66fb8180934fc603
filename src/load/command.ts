/**
 * `owsla load`: the load-testing command (device simulator, back-end simulator, and the
 * internal child roles). main.ts dispatches `load` here; the sources also run this file
 * directly for child processes (`bun src/load/command.ts --child client`).
 */
import { runBackendChild, runBackendStandalone } from "./backend-process.ts";
import { runClientProcess } from "./client-process.ts";
import { runCoordinator } from "./coordinator.ts";
import { LOAD_USAGE, LoadUsageError, parseLoadArgs } from "./options.ts";

/** Runs `owsla load` with the arguments after `load`; returns the exit code. */
export async function runLoadCommand(argv: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseLoadArgs(argv);
  } catch (e) {
    if (!(e instanceof LoadUsageError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
  try {
    switch (cmd.kind) {
      case "help":
        process.stdout.write(LOAD_USAGE + "\n");
        return 0;
      case "child":
        return cmd.role === "client" ? await runClientProcess() : await runBackendChild();
      case "backend":
        return await runBackendStandalone(cmd.options);
      case "load": {
        const summary = await runCoordinator(cmd.options);
        process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
        return summary.problems.some((p) => /failed|exited/.test(p)) ? 1 : 0;
      }
    }
  } catch (e) {
    if (e instanceof LoadUsageError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    process.stderr.write(`owsla load failed: ${(e as Error).message}\n`);
    return 1;
  }
}

if (import.meta.main) {
  runLoadCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`owsla load failed: ${e.message}\n`);
      process.exit(1);
    },
  );
}
