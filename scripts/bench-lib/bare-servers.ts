/**
 * The "bare Bun" baseline: N plain Bun TCP server processes sharing one port (reusePort),
 * each answering every line with a welcome-like line and keeping nothing per connection but
 * a line buffer. Their RSS and welcome rate are what the gateway is compared with.
 *
 * Usage: bun scripts/bench-lib/bare-servers.ts --port P [--processes 12]
 *          [--floor --broker URL --prefix P --gateway ID [--mqtt-port M]]
 * With --floor each process is the "contract floor" (floor-server.ts): the bare server plus
 * the broker work the AMQP contract requires.
 * Prints "listening" on stdout once every process listens; runs until SIGTERM/SIGINT, which it
 * passes on to its children. Its own pid plus its children are the baseline's processes.
 */
import { serveBareWelcomes } from "./bare-welcome.ts";
import { serveContractFloor } from "./floor-server.ts";
import type { Subprocess } from "bun";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 0) throw new Error(`Invalid --${name} ${process.argv[i + 1]}: expected a non-negative integer`);
  return v;
};

const str = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || process.argv[i + 1] === undefined) throw new Error(`--floor needs --${name}`);
  return process.argv[i + 1]!;
};
const port = arg("port", 0);
const floor = process.argv.includes("--floor");
const mqttPort = arg("mqtt-port", 0);
const floorArgs = floor ? ["--floor", "--broker", str("broker"), "--prefix", str("prefix"), "--gateway", str("gateway"), "--mqtt-port", String(mqttPort)] : [];
if (process.argv.includes("--serve")) {
  if (floor) await serveContractFloor(port, { broker: str("broker"), prefix: str("prefix"), gateway: str("gateway"), mqttPort });
  else serveBareWelcomes(port);
  process.send?.("listening");
  // Exit with the launcher.
  process.on("disconnect", () => process.exit(0));
} else {
  if (port === 0) throw new Error("Pass --port: the port every bare server process shares");
  const n = arg("processes", 12);
  const children: Subprocess[] = [];
  let listening = 0;
  const stop = () => {
    for (const c of children) c.kill("SIGTERM");
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  for (let i = 0; i < n; i++) {
    children.push(
      Bun.spawn([process.execPath, import.meta.path, "--serve", "--port", String(port), ...floorArgs], {
        stdin: "ignore",
        stdout: "inherit",
        stderr: "inherit",
        serialization: "json",
        ipc: () => {
          if (++listening === n) console.log("listening");
        },
      }),
    );
  }
  await new Promise(() => {});
}
