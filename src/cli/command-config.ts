/**
 * The shared start of the commands that read the configuration but do not run the gateway
 * (`token`, `backup`, `config check`): resolve it, answer `--help`, check the positional
 * argument count. Exit codes: 0 for help, 2 for a usage or configuration error.
 */
import { ConfigError, loadConfig, type LoadResult } from "../config/load.ts";

/** Where a command writes. */
export interface CommandIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Standard output and error of the process. */
export const PROCESS_IO: CommandIo = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

/**
 * Loads the configuration from `argv` and the environment for a command with `usage` taking
 * exactly `positionals` positional arguments. Returns the result, or the exit code when the
 * command is done (help printed: 0; error printed: 2).
 */
export function loadCommandConfig(argv: string[], usage: string, positionals: number, io: CommandIo): LoadResult | number {
  let loaded: LoadResult;
  try {
    loaded = loadConfig(argv, process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    io.err(`${e.message}\n${usage}\n`);
    return 2;
  }
  if (loaded.help) {
    io.out(usage + "\n");
    return 0;
  }
  if (loaded.positionals.length !== positionals) {
    const what = loaded.positionals.length > positionals ? `Unexpected argument "${loaded.positionals[positionals]}".` : "Missing an argument.";
    io.err(`${what}\n${usage}\n`);
    return 2;
  }
  return loaded;
}
