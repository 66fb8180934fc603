/**
 * A private RabbitMQ node for failure tests (stop_app, SIGKILL, resource alarms).
 *
 * The machine's shared node (rabbit@<hostname>, port 5672) is used by other test runs at the
 * same time and must never be stopped or reconfigured; every broker failure is staged on a node
 * of our own instead: its own node name, AMQP and distribution ports, mnesia/log directories,
 * Erlang cookie (HOME) and config file, no plugins. The node runs as the calling user (root
 * here) through /usr/lib/rabbitmq/bin, so the Debian wrapper does not switch to the
 * `rabbitmq` user and our files stay private.
 *
 * The node boots with `load_definitions`: the `<prefix>owsla.up` exchange and a durable
 * back-end queue bound to it with `#` (plus the guest user) exist whenever the node accepts
 * connections, even after `reset` or a wiped data directory. So a test can wipe the broker
 * during an outage without losing the gateway's re-sent messages to a race with the back-end's
 * own redeclaration, while everything else the gateway needs (its queue, `owsla.down`,
 * `owsla.dead`) must be redeclared by the gateway itself.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./gateway.ts";

const RABBIT_BIN = existsSync("/usr/lib/rabbitmq/bin/rabbitmq-server") ? "/usr/lib/rabbitmq/bin" : "";

/** Whether this machine can run a private RabbitMQ node. */
export function privateBrokerAvailable(): boolean {
  const bin = RABBIT_BIN ? join(RABBIT_BIN, "rabbitmq-server") : Bun.which("rabbitmq-server");
  return !!bin && existsSync(bin);
}

/** RabbitMQ's `rabbit_password_hashing_sha256` hash of `password`, as definitions expect it. */
export function rabbitPasswordHash(password: string): string {
  const salt = randomBytes(4);
  const digest = createHash("sha256").update(Buffer.concat([salt, Buffer.from(password, "utf8")])).digest();
  return Buffer.concat([salt, digest]).toString("base64");
}

/** Options for {@link PrivateBroker.start}. */
export interface PrivateBrokerOptions {
  /** Short tag used in the node name and directory. */
  tag?: string;
  /** Name prefix of the topology the definitions pre-create (the gateway's --broker-prefix). */
  prefix?: string;
  /** Name of the durable back-end queue bound to `<prefix>owsla.up` with `#`. */
  backendQueue?: string;
  /** AMQP port (default: a free one). */
  port?: number;
  /** How long to wait for the node to boot, in ms. */
  startTimeoutMs?: number;
  /** Plugins to enable (default none). */
  plugins?: string[];
  /** Extra lines for rabbitmq.conf (TLS listeners, auth mechanisms). */
  config?: string[];
  /** Extra users (with full permissions on "/"); a certificate user needs no real password. */
  users?: string[];
  /** Erlang cookie shared by the nodes of one cluster (default: a random one). */
  cookie?: string;
  /**
   * Boot with the definitions file (default true). Cluster nodes boot without: a quorum queue
   * declared before the cluster forms would have a single member.
   */
  definitions?: boolean;
}

/** Result of a command-line call. */
export interface CmdResult {
  code: number;
  out: string;
}

/** A RabbitMQ node of our own. */
export class PrivateBroker {
  readonly node: string;
  readonly port: number;
  readonly distPort: number;
  readonly base: string;
  readonly prefix: string;
  readonly backendQueue: string;
  private readonly env: Record<string, string>;
  private stopped = false;

  private readonly users: string[];

  private constructor(opts: Required<Pick<PrivateBrokerOptions, "tag" | "prefix" | "backendQueue">> & PrivateBrokerOptions & { port: number }) {
    const id = `${opts.tag}-${process.pid}-${randomBytes(3).toString("hex")}`;
    this.node = `chaos-${id}@localhost`;
    this.port = opts.port;
    this.distPort = freeDistPort(opts.port);
    this.base = join(tmpdir(), `owsla-rmq-${id}`);
    this.prefix = opts.prefix;
    this.backendQueue = opts.backendQueue;
    this.users = opts.users ?? [];
    const home = join(this.base, "home");
    mkdirSync(home, { recursive: true });
    // Our own Erlang cookie: the CLI and the node find it through HOME.
    writeFileSync(join(home, ".erlang.cookie"), opts.cookie ?? randomBytes(20).toString("hex"), { mode: 0o400 });
    writeFileSync(join(this.base, "enabled_plugins"), `[${(opts.plugins ?? []).join(",")}].\n`);
    writeFileSync(join(this.base, "definitions.json"), JSON.stringify(this.definitions(), null, 1));
    writeFileSync(
      join(this.base, "rabbitmq.conf"),
      [
        `listeners.tcp.default = ${this.port}`,
        // The real-packet-drop variant reaches the node through a veth address.
        "loopback_users = none",
        ...(opts.definitions === false ? [] : [`load_definitions = ${join(this.base, "definitions.json")}`]),
        "disk_free_limit.absolute = 1MB",
        "vm_memory_high_watermark.relative = 0.4",
        "log.console = false",
        "log.file.level = info",
        ...(opts.config ?? []),
        "",
      ].join("\n"),
    );
    this.env = {
      ...(process.env as Record<string, string>),
      HOME: home,
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: join(this.base, "mnesia"),
      RABBITMQ_LOG_BASE: join(this.base, "log"),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.base, "enabled_plugins"),
      RABBITMQ_CONFIG_FILE: join(this.base, "rabbitmq.conf"),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(this.base, "advanced.config"),
      RABBITMQ_CONF_ENV_FILE: join(this.base, "rabbitmq-env.conf"),
      RABBITMQ_PID_FILE: join(this.base, "rabbit.pid"),
    };
    writeFileSync(join(this.base, "rabbitmq-env.conf"), "");
    writeFileSync(join(this.base, "advanced.config"), "[].\n");
    writeFileSync(join(this.base, "node"), this.node + "\n");
  }

  /** Creates the node's files, boots it and waits until it accepts AMQP connections. */
  static async start(opts: PrivateBrokerOptions = {}): Promise<PrivateBroker> {
    const tag = opts.tag ?? "chaos";
    const b = new PrivateBroker({
      ...opts,
      tag,
      prefix: opts.prefix ?? "chaos.",
      backendQueue: opts.backendQueue ?? `${opts.prefix ?? "chaos."}backend`,
      port: opts.port ?? freePort(),
    });
    registerForCleanup(b);
    await b.boot(opts.startTimeoutMs);
    return b;
  }

  /** AMQP URL of this node (optionally through another host, e.g. a veth address). */
  url(host = "127.0.0.1", port = this.port): string {
    return `amqp://guest:guest@${host}:${port}`;
  }

  private definitions(): unknown {
    return {
      rabbit_version: "3.10.8",
      users: ["guest", ...this.users].map((name) => ({ name, password_hash: rabbitPasswordHash(name === "guest" ? "guest" : randomBytes(16).toString("hex")), hashing_algorithm: "rabbit_password_hashing_sha256", tags: ["administrator"] })),
      vhosts: [{ name: "/" }],
      permissions: ["guest", ...this.users].map((user) => ({ user, vhost: "/", configure: ".*", write: ".*", read: ".*" })),
      exchanges: [{ name: `${this.prefix}owsla.up`, vhost: "/", type: "topic", durable: true, auto_delete: false, internal: false, arguments: {} }],
      queues: [{ name: this.backendQueue, vhost: "/", durable: true, auto_delete: false, arguments: {} }],
      bindings: [{ source: `${this.prefix}owsla.up`, vhost: "/", destination: this.backendQueue, destination_type: "queue", routing_key: "#", arguments: {} }],
    };
  }

  private bin(name: string): string {
    return RABBIT_BIN ? join(RABBIT_BIN, name) : name;
  }

  /** Runs `rabbitmqctl -n <node> ...args`. */
  async ctl(args: string[], timeoutMs = 60_000): Promise<CmdResult> {
    const p = Bun.spawn([this.bin("rabbitmqctl"), "-n", this.node, ...args], { env: this.env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    const code = await p.exited;
    clearTimeout(timer);
    return { code, out: (out + err).trim() };
  }

  /** Like {@link ctl} but throws on a non-zero exit. */
  async ctlOk(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.ctl(args, timeoutMs);
    if (r.code !== 0) throw new Error(`rabbitmqctl -n ${this.node} ${args.join(" ")} failed (${r.code}): ${r.out.slice(-800)}`);
    return r.out;
  }

  /** Boots the node (`rabbitmq-server -detached`) and waits for `await_startup`. */
  async boot(timeoutMs = 90_000): Promise<void> {
    const p = Bun.spawn([this.bin("rabbitmq-server"), "-detached"], { env: this.env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    const code = await p.exited;
    if (code !== 0) throw new Error(`rabbitmq-server -detached failed (${code}): ${out}${err}`);
    await this.awaitStartup(timeoutMs);
  }

  /** Waits until the node (and its app) runs, then until the AMQP port accepts connections. */
  async awaitStartup(timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: CmdResult = { code: -1, out: "" };
    while (Date.now() < deadline) {
      last = await this.ctl(["await_startup", "--timeout", String(Math.max(5, Math.ceil((deadline - Date.now()) / 1000)))], timeoutMs);
      if (last.code === 0) break;
      await Bun.sleep(500);
    }
    if (last.code !== 0) throw new Error(`Private broker ${this.node} did not start within ${timeoutMs} ms: ${last.out.slice(-800)}\n${this.logTail()}`);
    while (Date.now() < deadline) {
      if (await portOpen(this.port)) return;
      await Bun.sleep(100);
    }
    throw new Error(`Private broker ${this.node} started but port ${this.port} does not accept connections`);
  }

  /** OS process id of the node's Erlang VM (null when it is not running). */
  pid(): number | null {
    try {
      const pid = Number(readFileSync(this.env.RABBITMQ_PID_FILE!, "utf8").trim());
      if (pid > 0 && alive(pid)) return pid;
    } catch {}
    return null;
  }

  /** `rabbitmqctl stop_app`: closes every client connection, keeps the VM and durable data. */
  async stopApp(): Promise<void> {
    await this.ctlOk(["stop_app"]);
  }

  /** `rabbitmqctl start_app`, then waits until AMQP connections are accepted. */
  async startApp(): Promise<void> {
    await this.ctlOk(["start_app"]);
    await this.awaitStartup();
  }

  /** `rabbitmqctl reset` (app must be stopped): deletes every exchange, queue and message. */
  async reset(): Promise<void> {
    await this.ctlOk(["reset"]);
  }

  /** SIGKILL of the node's VM (an abrupt crash: sockets reset, nothing flushed). */
  async sigkill(): Promise<void> {
    const pid = this.pid();
    if (!pid) throw new Error(`Private broker ${this.node} is not running`);
    process.kill(pid, "SIGKILL");
    for (let i = 0; i < 200 && alive(pid); i++) await Bun.sleep(25);
    // Its epmd registration goes with the VM; give epmd a moment before the name is reused.
    await Bun.sleep(300);
  }

  /** Sets the memory high watermark (0.0001 raises a memory alarm at once; 0.4 clears it). */
  async setMemoryWatermark(fraction: number): Promise<void> {
    await this.ctlOk(["set_vm_memory_high_watermark", String(fraction)]);
  }

  /** Names of the exchanges on the node. */
  async exchanges(): Promise<string[]> {
    const out = await this.ctlOk(["list_exchanges", "name", "--no-table-headers", "--quiet"]);
    return out.split("\n").map((l) => l.trim()).filter(Boolean);
  }

  /** Queues on the node with their message counts. */
  async queues(): Promise<Map<string, number>> {
    const out = await this.ctlOk(["list_queues", "name", "messages", "--no-table-headers", "--quiet"]);
    const m = new Map<string, number>();
    for (const line of out.split("\n")) {
      const [name, n] = line.trim().split(/\s+/);
      if (name) m.set(name, Number(n ?? 0));
    }
    return m;
  }

  /** The last lines of the node's log (for error messages). */
  logTail(lines = 30): string {
    try {
      const dir = this.env.RABBITMQ_LOG_BASE!;
      const f = join(dir, `${this.node}.log`);
      return readFileSync(f, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** Stops the node for good (clean stop, SIGKILL as a fallback) and deletes its files. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    cleanupList.delete(this);
    const pid = this.pid();
    if (pid) {
      await this.ctl(["stop"], 30_000).catch(() => undefined);
      for (let i = 0; i < 100 && alive(pid); i++) await Bun.sleep(50);
      if (alive(pid)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
    }
    rmSync(this.base, { recursive: true, force: true });
  }

  /** Synchronous best-effort kill (for process exit handlers). */
  killNow(): void {
    const pid = this.pid();
    if (pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    try {
      rmSync(this.base, { recursive: true, force: true });
    } catch {}
  }
}

const cleanupList = new Set<PrivateBroker>();
let exitHooked = false;

/** Kills our nodes if the process exits without stopping them (a failed test, Ctrl-C). */
function registerForCleanup(b: PrivateBroker): void {
  cleanupList.add(b);
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const x of cleanupList) x.killNow();
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      for (const x of cleanupList) x.killNow();
      process.exit(130);
    });
  }
}

/** A free port for Erlang distribution (not adjacent to the AMQP port, to avoid 2xxxx clashes). */
function freeDistPort(avoid: number): number {
  for (;;) {
    const p = freePort();
    if (p !== avoid) return p;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export async function portOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: host, port, socket: { data() {}, error() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}
