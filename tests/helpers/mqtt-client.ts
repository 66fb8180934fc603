/** mqtt.js clients for black-box tests against a gateway's MQTT port. */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { GatewayProcess } from "./gateway.ts";

/** A message a test client received. */
export interface Got {
  topic: string;
  payload: string;
  packet: mqtt.IPublishPacket;
}

/** An mqtt.js client that records what it receives. */
export class TestMqtt {
  readonly got: Got[] = [];
  private waiters: { pred: (g: Got) => boolean; resolve: (g: Got) => void }[] = [];

  constructor(readonly client: MqttClient) {
    client.on("message", (topic, payload, packet) => {
      const g = { topic, payload: payload.toString(), packet };
      this.got.push(g);
      const i = this.waiters.findIndex((w) => w.pred(g));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(g);
    });
  }

  /** The first message (already received or future) matching `pred`. */
  wait(pred: (g: Got) => boolean = () => true, timeoutMs = 5000): Promise<Got> {
    const found = this.got.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (g: Got) => (clearTimeout(t), resolve(g)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`MQTT client got no matching message within ${timeoutMs} ms (got ${this.got.length})`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Closes the client (forcefully: no DISCONNECT when `force`). */
  async end(force = false): Promise<void> {
    await this.client.endAsync(force).catch(() => {});
  }
}

/**
 * Connects `hardwareId` to the gateway's MQTT port with its token as password (MQTT 5 unless
 * `protocolVersion` says otherwise); no automatic reconnect. Rejects with the CONNACK error.
 */
export async function connectMqtt(gw: GatewayProcess, hardwareId: string, opts: IClientOptions = {}): Promise<TestMqtt> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${gw.mqttPort}`, {
    clientId: hardwareId,
    username: "device",
    password: gw.token(hardwareId),
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  });
  // Listening before the CONNACK: commands may arrive in the same read as it.
  const t = new TestMqtt(client);
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", (e) => {
      client.end(true);
      reject(e);
    });
  });
  return t;
}

/** The error a refused connect rejects with (its `code` is the CONNACK reason/return code). */
export async function refusedConnect(gw: GatewayProcess, hardwareId: string, opts: IClientOptions = {}): Promise<Error & { code?: number }> {
  try {
    const c = await connectMqtt(gw, hardwareId, opts);
    await c.end(true);
  } catch (e) {
    return e as Error & { code?: number };
  }
  throw new Error(`MQTT connect of ${hardwareId} was accepted; expected a refusal`);
}
