/**
 * The MQTT brokers the `mqtt` benchmark compares the gateway with, each started privately for
 * the phase and removed afterwards: Mosquitto (Debian package) with a generated config on its
 * own port, and a RabbitMQ node of its own (own node name, ports, data and log directories,
 * enabled_plugins file with rabbitmq_mqtt) — the shared node on 5672 is never touched.
 */
import type { Subprocess } from "bun";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A broker started for a phase. */
export interface Peer {
  /** The broker's main process (its RSS and CPU are measured, descendants included). */
  pid: number;
  mqttPort: number;
  /** How it was started, for the report. */
  command: string;
  config: string;
  version: string;
  stop(): Promise<void>;
}

/** Waits until something accepts connections on 127.0.0.1:`port`. */
async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, open(s) { s.end(); } } }).then(() => true, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} does not accept connections on port ${port} after ${timeoutMs} ms`);
    await Bun.sleep(200);
  }
}

/** The first line a command prints (a version banner), or "?". */
function firstLine(argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return (r.stdout.toString() || r.stderr.toString()).split("\n")[0]?.trim() || "?";
}

/**
 * Mosquitto on `port` (all addresses, so devices can use many 127.x destinations): anonymous,
 * no connection limit, no persistence, TCP_NODELAY (without it replies wait ~40 ms for Nagle
 * and delayed ACKs; measured here), errors and warnings on stderr.
 */
export async function startMosquitto(port: number): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), "owsla-bench-mosquitto-"));
  const config = [`listener ${port} 0.0.0.0`, "allow_anonymous true", "max_connections -1", "persistence false", "set_tcp_nodelay true", "log_dest stderr", "log_type error", "log_type warning"].join("\n");
  const file = join(dir, "mosquitto.conf");
  writeFileSync(file, config + "\n");
  const p: Subprocess = Bun.spawn(["mosquitto", "-c", file], { stdin: "ignore", stdout: "inherit", stderr: "inherit" });
  try {
    await waitForPort(port, 10_000, "Mosquitto");
  } catch (e) {
    p.kill("SIGKILL");
    throw e;
  }
  return {
    pid: p.pid,
    mqttPort: port,
    command: `mosquitto -c ${file}`,
    config,
    version: firstLine(["mosquitto", "-h"]),
    async stop() {
      p.kill("SIGTERM");
      await Promise.race([p.exited, Bun.sleep(10_000)]);
      if (p.exitCode === null) p.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How long a private RabbitMQ node gets to stop before it is killed, in ms. */
const RABBIT_STOP_MS = 30_000;

/** Ports of the private RabbitMQ node (all below the ephemeral range). */
export interface RabbitPorts {
  amqp: number;
  dist: number;
  mqtt: number;
}

/**
 * A RabbitMQ node of its own with the MQTT plugin, run as the `rabbitmq` user with the hard
 * descriptor limit (20000; the default soft limit ends in `emfile` at a few thousand MQTT
 * connections, seen here). Anonymous MQTT logins map to guest; TCP_NODELAY and a 4096 backlog
 * on the MQTT listener.
 */
export async function startRabbitMq(ports: RabbitPorts): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), "owsla-bench-rabbitmq-"));
  const host = firstLine(["hostname", "-s"]);
  const node = `owslabench${ports.amqp}@${host}`;
  const config = [
    `listeners.tcp.default = ${ports.amqp}`,
    `mqtt.listeners.tcp.default = ${ports.mqtt}`,
    "mqtt.allow_anonymous = true",
    "mqtt.default_user = guest",
    "mqtt.default_pass = guest",
    "loopback_users = none",
    "mqtt.tcp_listen_options.backlog = 4096",
    "mqtt.tcp_listen_options.nodelay = true",
  ].join("\n");
  writeFileSync(join(dir, "rabbitmq.conf"), config + "\n");
  writeFileSync(join(dir, "enabled_plugins"), "[rabbitmq_mqtt].\n");
  const uid = Number(firstLine(["id", "-u", "rabbitmq"]));
  const gid = Number(firstLine(["id", "-g", "rabbitmq"]));
  mkdirSync(join(dir, "mnesia"));
  mkdirSync(join(dir, "log"));
  for (const f of ["", "rabbitmq.conf", "enabled_plugins", "mnesia", "log"]) chownSync(join(dir, f), uid, gid);
  const env = {
    ...process.env,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_PORT: String(ports.amqp),
    RABBITMQ_DIST_PORT: String(ports.dist),
    RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(dir, "log"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
    RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq"),
    RABBITMQ_PID_FILE: join(dir, "pid"),
    RABBITMQ_CONF_ENV_FILE: join(dir, "no-env.conf"),
  };
  const argv = ["su", "rabbitmq", "-s", "/bin/sh", "-c", "ulimit -n $(ulimit -Hn); exec /usr/lib/rabbitmq/bin/rabbitmq-server"];
  const p: Subprocess = Bun.spawn(argv, { env, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const ctl = (...args: string[]) => Bun.spawnSync(["rabbitmqctl", "-n", node, ...args], { env, stdout: "pipe", stderr: "pipe" });
  /**
   * `rabbitmqctl stop`, but at most {@link RABBIT_STOP_MS}: a node that was driven into overload
   * (15k MQTT clients, gigabytes of backlog) took minutes to stop here; then its beam is killed.
   */
  const stop = async () => {
    const ctlStop = Bun.spawn(["rabbitmqctl", "-n", node, "stop"], { env, stdout: "ignore", stderr: "ignore" });
    await Promise.race([Promise.all([ctlStop.exited, p.exited]), Bun.sleep(RABBIT_STOP_MS)]);
    if (p.exitCode === null) {
      const pid = Number(existsSync(join(dir, "pid")) ? readFileSync(join(dir, "pid"), "utf8").trim() : 0);
      if (pid > 0) Bun.spawnSync(["kill", "-9", String(pid)]);
      p.kill("SIGKILL");
      await Promise.race([p.exited, Bun.sleep(5000)]);
    }
    if (ctlStop.exitCode === null) ctlStop.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // await_startup gives up at once while the node is not registered yet: wait for its pid file first.
    for (let t = 0; !existsSync(join(dir, "pid")) && t < 600 && p.exitCode === null; t++) await Bun.sleep(100);
    const up = ctl("await_startup", "--timeout", "120");
    if (up.exitCode !== 0) throw new Error(`The private RabbitMQ node ${node} did not start: ${up.stderr.toString().slice(0, 500)}`);
    await waitForPort(ports.mqtt, 30_000, "RabbitMQ's MQTT listener");
  } catch (e) {
    await stop();
    throw e;
  }
  const pid = Number(readFileSync(join(dir, "pid"), "utf8").trim());
  const envText = ["RABBITMQ_NODENAME", "RABBITMQ_NODE_PORT", "RABBITMQ_DIST_PORT", "RABBITMQ_MNESIA_BASE", "RABBITMQ_LOG_BASE", "RABBITMQ_ENABLED_PLUGINS_FILE", "RABBITMQ_CONFIG_FILE"]
    .map((k) => `${k}=${env[k as keyof typeof env]}`)
    .join(" ");
  return {
    pid,
    mqttPort: ports.mqtt,
    command: `${envText} su rabbitmq -s /bin/sh -c 'ulimit -n $(ulimit -Hn); exec /usr/lib/rabbitmq/bin/rabbitmq-server'`,
    config,
    version: `RabbitMQ ${ctl("version").stdout.toString().trim() || "?"} (rabbitmq_mqtt: MQTT 3.1.1 only)`,
    stop,
  };
}
