/**
 * MQTT clients nobody here wrote, behind one small interface for the interop suite
 * (tests/helpers/mqtt-interop-suite.ts): mosquitto_pub/mosquitto_sub (Debian mosquitto-clients),
 * Eclipse paho for Python (Debian python3-paho-mqtt, driven by tests/interop/paho-client.py) and
 * mqtt.js (npm `mqtt`, in process).
 */
import mqtt from "mqtt";
import { join } from "node:path";
import { ROOT } from "./gateway.ts";

/** MQTT protocol level: 4 = 3.1.1, 5 = 5.0. */
export type MqttVersion = 4 | 5;

/** Where and as whom a client connects. */
export interface MqttLogin {
  port: number;
  clientId: string;
  password: string;
  version: MqttVersion;
}

/** A message a client received. */
export interface MqttMessage {
  topic: string;
  payload: string;
  qos: number;
  /** MQTT 5 user properties (empty for 3.1.1 or when the client cannot show them). */
  userProperties: Record<string, string>;
}

/** What a subscribing session saw. */
export interface SubResult {
  /** CONNACK return code (3.1.1) or reason code (5); 0 = accepted. */
  connack: number;
  messages: MqttMessage[];
  /** The client's own output, for failure messages. */
  output: string;
}

/** A subscriber started by {@link MqttClientAdapter.subscribe}. */
export interface Subscriber {
  /** Resolves once `count` messages arrived (or the client gave up). */
  done: Promise<SubResult>;
}

/** One client implementation. */
export interface MqttClientAdapter {
  name: string;
  /** Null when the client can run here, else why not (the suite skips with this warning). */
  missing(): string | null;
  /**
   * Connects, publishes `payload` on `topic` at `qos`, waits for the end of the QoS flow
   * (PUBACK / PUBCOMP) and disconnects. Resolves with the CONNACK code and the client's output.
   */
  publish(login: MqttLogin, topic: string, qos: 0 | 1 | 2, payload: string): Promise<{ connack: number; output: string }>;
  /**
   * Connects (a persistent session when `persistent`: clean session 0 / clean start 0 with a
   * session expiry of 3600 s), subscribes to `cmd/#` at QoS 1 and waits for `count` messages;
   * `count` 0 = leave right after the SUBACK.
   */
  subscribe(login: MqttLogin, opts: { persistent: boolean; count: number; timeoutS?: number }): Subscriber;
}

/** Runs `argv`, collects stdout+stderr, resolves with the exit code. */
async function run(argv: string[], timeoutMs: number): Promise<{ code: number; stdout: string; output: string }> {
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, output: `$ ${argv.join(" ")}\nexit ${code}\n${stdout}${stderr}` };
}

/** Whether `argv` can be spawned and exits 0. */
function runs(argv: string[]): boolean {
  try {
    return Bun.spawnSync(argv, { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  } catch {
    return false;
  }
}

/** mosquitto_pub / mosquitto_sub: the exit code of a refused connection is the CONNACK code. */
export const mosquittoClients: MqttClientAdapter = {
  name: "mosquitto_pub/mosquitto_sub",
  missing() {
    // `--help` exits 1 on these tools; a missing binary throws.
    for (const bin of ["mosquitto_pub", "mosquitto_sub"]) {
      try {
        Bun.spawnSync([bin, "--help"], { stdout: "ignore", stderr: "ignore" });
      } catch {
        return `${bin} is not installed (Debian: apt-get install mosquitto-clients)`;
      }
    }
    return null;
  },
  async publish(l, topic, qos, payload) {
    const r = await run(["mosquitto_pub", ...mosquittoLogin(l), "-t", topic, "-q", String(qos), "-m", payload], 15_000);
    return { connack: r.code, output: r.output };
  },
  subscribe(l, o) {
    const timeoutS = o.timeoutS ?? 15;
    const args = ["mosquitto_sub", ...mosquittoLogin(l), "-t", "cmd/#", "-q", "1", "-F", "%j"];
    if (o.persistent) args.push("-c", ...(l.version === 5 ? ["-x", "3600"] : []));
    args.push(...(o.count === 0 ? ["-E"] : ["-C", String(o.count), "-W", String(timeoutS)]));
    const done = run(args, (timeoutS + 5) * 1000).then((r) => {
      const messages = r.stdout.split("\n").filter(Boolean).flatMap((line) => {
        try {
          const j = JSON.parse(line);
          return [{ topic: j.topic, payload: String(j.payload), qos: j.qos, userProperties: j.properties?.["user-properties"] ?? {} }];
        } catch {
          return [];
        }
      });
      // -W ends with exit 27 when the messages did not all arrive; the connection itself was accepted.
      return { connack: r.code === 27 ? 0 : r.code, messages, output: r.output };
    });
    return { done };
  },
};

function mosquittoLogin(l: MqttLogin): string[] {
  return ["-h", "127.0.0.1", "-p", String(l.port), "-i", l.clientId, "-u", "device", "-P", l.password, "-V", l.version === 5 ? "mqttv5" : "mqttv311", "-k", "30"];
}

/** The Debian python3 (paho is a Debian package, not in the pyenv python on PATH). */
const PYTHON = "/usr/bin/python3";
const PAHO_SCRIPT = join(ROOT, "tests/interop/paho-client.py");

/** Eclipse paho for Python 1.6 via tests/interop/paho-client.py (one JSON event per line). */
export const pahoClient: MqttClientAdapter = {
  name: "paho (python3-paho-mqtt)",
  missing() {
    return runs([PYTHON, "-c", "import paho.mqtt.client"]) ? null : `${PYTHON} cannot import paho.mqtt.client (Debian: apt-get install python3-paho-mqtt)`;
  },
  async publish(l, topic, qos, payload) {
    const r = await run([PYTHON, PAHO_SCRIPT, "pub", ...pahoLogin(l), "--topic", topic, "--qos", String(qos), "--payload", payload], 20_000);
    return { connack: pahoConnack(r.stdout), output: r.output };
  },
  subscribe(l, o) {
    const timeoutS = o.timeoutS ?? 15;
    const args = [PYTHON, PAHO_SCRIPT, "sub", ...pahoLogin(l), "--count", String(o.count), "--timeout", String(timeoutS)];
    if (o.persistent) args.push("--persistent");
    const done = run(args, (timeoutS + 5) * 1000).then((r) => {
      const messages = pahoEvents(r.stdout)
        .filter((e) => e.event === "message")
        .map((e) => ({ topic: e.topic, payload: e.payload, qos: e.qos, userProperties: e.user_properties ?? {} }));
      return { connack: pahoConnack(r.stdout), messages, output: r.output };
    });
    return { done };
  },
};

function pahoLogin(l: MqttLogin): string[] {
  // `--name=value`: argparse reads a separate value that starts with "-" (a token can) as an option.
  return ["--port", String(l.port), `--id=${l.clientId}`, `--password=${l.password}`, "--version", l.version === 5 ? "5" : "311"];
}

function pahoEvents(stdout: string): Record<string, any>[] {
  return stdout.split("\n").flatMap((line) => {
    try {
      return [JSON.parse(line)];
    } catch {
      return [];
    }
  });
}

/** The CONNACK code paho reported; -1 when there was no CONNACK. */
function pahoConnack(stdout: string): number {
  return pahoEvents(stdout).find((e) => e.event === "connack")?.rc ?? -1;
}

/** mqtt.js, in this process. A refused CONNACK rejects connectAsync with an error carrying `code`. */
export const mqttJsClient: MqttClientAdapter = {
  name: "mqtt.js",
  missing() {
    return typeof mqtt.connectAsync === "function" ? null : "the npm package mqtt is not installed (npm ci)";
  },
  async publish(l, topic, qos, payload) {
    const log: string[] = [];
    const c = await mqttJsConnect(l, false, log);
    if (c.connack !== 0) return { connack: c.connack, output: log.join("\n") };
    try {
      await c.client!.publishAsync(topic, payload, { qos });
      log.push(`published ${topic} qos ${qos}`);
    } catch (e) {
      log.push(`publish failed: ${(e as Error).message}`);
      throw new Error(`mqtt.js publish failed:\n${log.join("\n")}`);
    } finally {
      await c.client!.endAsync().catch(() => {});
    }
    return { connack: 0, output: log.join("\n") };
  },
  subscribe(l, o) {
    const done = (async (): Promise<SubResult> => {
      const log: string[] = [];
      const messages: MqttMessage[] = [];
      let resolveAll!: () => void;
      const all = new Promise<void>((r) => (resolveAll = r));
      const c = await mqttJsConnect(l, o.persistent, log, (topic, payload, packet) => {
        const up = (packet.properties?.userProperties ?? {}) as Record<string, string | string[]>;
        const userProperties = Object.fromEntries(Object.entries(up).map(([k, v]) => [k, Array.isArray(v) ? v[0]! : v]));
        messages.push({ topic, payload: payload.toString("utf8"), qos: packet.qos, userProperties });
        if (messages.length >= o.count) resolveAll();
      });
      if (c.connack !== 0) return { connack: c.connack, messages, output: log.join("\n") };
      const client = c.client!;
      const granted = await client.subscribeAsync("cmd/#", { qos: 1 });
      log.push(`suback ${JSON.stringify(granted)}`);
      if (o.count > 0 && messages.length < o.count) await Promise.race([all, Bun.sleep((o.timeoutS ?? 15) * 1000)]);
      // mqtt.js sends the PUBACK right after the message event; let it go out before DISCONNECT.
      await Bun.sleep(100);
      await client.endAsync().catch(() => {});
      return { connack: 0, messages, output: log.join("\n") };
    })();
    return { done };
  },
};

/**
 * Connects with mqtt.js; `onMessage` is attached before the CONNECT goes out, so messages a
 * persistent session gets right after the CONNACK are not missed.
 */
function mqttJsConnect(l: MqttLogin, persistent: boolean, log: string[], onMessage?: mqtt.OnMessageCallback): Promise<{ connack: number; client?: mqtt.MqttClient }> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${l.port}`, {
    clientId: l.clientId,
    username: "device",
    password: l.password,
    protocolVersion: l.version,
    clean: !persistent,
    ...(l.version === 5 ? { properties: { sessionExpiryInterval: persistent ? 3600 : 0 } } : {}),
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    keepalive: 30,
  });
  if (onMessage) client.on("message", onMessage);
  return new Promise((resolve) => {
    client.once("connect", () => {
      log.push("connack 0");
      resolve({ connack: 0, client });
    });
    client.once("error", (e) => {
      const code = (e as { code?: number }).code;
      log.push(`connect failed: ${e.message} (code ${code})`);
      client.end(true);
      resolve({ connack: typeof code === "number" ? code : -1 });
    });
    client.once("close", () => {
      if (!client.connected) resolve({ connack: -1 });
    });
  });
}
