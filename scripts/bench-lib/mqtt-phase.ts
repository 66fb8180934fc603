/**
 * The `mqtt` phase of scripts/bench: the same MQTT load — N devices connecting at once, held,
 * then QoS 1 requests at a fixed rate answered by a back-end on each device's response topic —
 * against the gateway's MQTT port, a private Mosquitto and a private RabbitMQ node with its MQTT
 * plugin, one after the other in one run. Each target's result is kept even when another fails.
 */
import { freePort, ROOT, uniquePrefix } from "../../tests/helpers/gateway.ts";
import { startMosquitto, startRabbitMq, type Peer } from "./mqtt-peers.ts";
import { show, startBareServers, startBenchGateway } from "./procs.ts";

/** Sizes and rates of the phase. */
export interface MqttPhaseParams {
  devices: number;
  /** Gateway workers (one per core by default: 20k connections fit in one worker's descriptors). */
  workers: number;
  /** QoS 1 requests per second in total during the message phase. */
  msgRate: number;
  /** Door unlocks per second (gateway only: a plain broker has no presence to pick devices from). */
  cmdRate: number;
  /** Seconds allowed for the stampede before messages start anyway. */
  connectS: number;
  /** Seconds of messages. */
  msgS: number;
  /** CONNECTs in flight per client process: under Mosquitto 2.0.11's fixed listen backlog of 100. */
  window: number;
  /** Skip the gateway (e.g. a branch without the MQTT listener). */
  skipOwsla: boolean;
}

/** A load run (`owsla load` with `args`): its command line and JSON summary. */
type LoadFn = (tag: string, args: string[], timeoutS: number) => Promise<{ command: string; summary: any }>;

/** Runs `fn`, returning its result or `{ error }`. */
async function attempt<T extends object>(what: string, log: (s: string) => void, fn: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await fn();
  } catch (e) {
    log(`mqtt: ${what} failed: ${(e as Error).message}`);
    return { error: (e as Error).message };
  }
}

/** Runs the three targets; returns everything the report needs. */
export async function mqttPhase(P: MqttPhaseParams, load: LoadFn, log: (s: string) => void): Promise<Record<string, unknown>> {
  const startedAt = new Date().toISOString();
  const duration = String(P.connectS + P.msgS);
  const timeout = P.connectS + P.msgS + 180;
  const common = ["--mqtt", "--devices", String(P.devices), "--window", String(P.window), "--duration", duration, "--msg-rate", String(P.msgRate), "--with-backend"];

  const onPeer = async (peer: Peer, version: "5" | "3.1.1") => {
    try {
      const run = await load(`mqtt ${peer.version.split(" ")[0]}`, [...common, "--mqtt-broker", "--mqtt-version", version, "--mqtt-port", String(peer.mqttPort), "--gateway-pid", String(peer.pid)], timeout);
      return { broker_command: peer.command, broker_config: peer.config, version: peer.version, mqtt_version: version, ...run };
    } finally {
      await peer.stop();
    }
  };

  const owsla = P.skipOwsla
    ? { error: "skipped (--mqtt-skip-owsla)" }
    : await attempt("gateway", log, async () => {
        const g = await startBenchGateway("mqtt", P.workers);
        try {
          const mqttPort = g.gw.mqttPort;
          const run = await load("mqtt owsla", [...common, "--mqtt-port", String(mqttPort), "--data", g.gw.dir, "--prefix", g.gw.prefix, "--cmd-rate", String(P.cmdRate)], timeout);
          const { warnings } = await g.stop();
          return { gateway_command: show(g.argv), workers: P.workers, mqtt_version: "5", ...run, gateway_warnings: warnings };
        } catch (e) {
          await g.stop().catch(() => {});
          throw e;
        }
      });
  // The contract floor (floor-server.ts) on MQTT: what the contract alone costs here.
  const floor = await attempt("contract floor", log, async () => {
    const prefix = uniquePrefix("bench-mqtt-floor");
    const mqttPort = freePortBelowEphemeral();
    const f = await startBareServers(P.workers, { prefix, gateway: "bench-mqtt-floor", mqttPort });
    try {
      const run = await load("mqtt floor", [...common, "--mqtt-port", String(mqttPort), "--auth", "none", "--prefix", prefix, "--cmd-rate", "0", "--gateway-pid", String(f.pid)], timeout);
      return { servers_command: show(f.argv), server_processes: P.workers, mqtt_version: "5", ...run };
    } finally {
      await f.stop();
    }
  });
  const mosquitto = await attempt("Mosquitto", log, async () => onPeer(await startMosquitto(freePortBelowEphemeral()), "5"));
  const rabbitmq = await attempt("RabbitMQ", log, async () => {
    return onPeer(await startRabbitMq({ amqp: freePortBelowEphemeral(), dist: freePortBelowEphemeral(), mqtt: freePortBelowEphemeral() }), "3.1.1");
  });
  const commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT, stdout: "pipe" }).stdout.toString().trim() || "?";
  return { params: P, started_at: startedAt, commit, owsla, floor, mosquitto, rabbitmq };
}

/** A free port below the ephemeral range (fixed ports there would collide with outgoing connections). */
function freePortBelowEphemeral(): number {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      const s = Bun.listen({ hostname: "0.0.0.0", port, socket: { data() {} } });
      s.stop(true);
      return port;
    } catch {
      // taken; try another
    }
  }
  return freePort();
}
