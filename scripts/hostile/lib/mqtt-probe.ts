/**
 * A well-behaved MQTT 5 device round trip for hostile scenarios: CONNECT with its token →
 * CONNACK 0, SUBSCRIBE cmd/# → SUBACK granted, PUBLISH QoS 1 → PUBACK 0 (after the broker
 * confirm), PINGREQ → PINGRESP, DISCONNECT. When `backend` is given, the publish must also
 * reach it.
 */
import type { TestBackend } from "../../../tests/helpers/backend.ts";
import { connectBytes, mqttBytes, MqttRawConn } from "./mqtt-raw.ts";

/** Outcome of {@link mqttProbe}. */
export interface MqttProbeResult {
  ok: boolean;
  why?: string;
}

/** Runs the round trip as `hardwareId` (its token from `token`) against `port`. */
export async function mqttProbe(port: number, hardwareId: string, token: string, opts: { backend?: TestBackend; localAddress?: string; timeoutMs?: number } = {}): Promise<MqttProbeResult> {
  const timeout = opts.timeoutMs ?? 5000;
  let c: MqttRawConn;
  try {
    c = await MqttRawConn.connect({ port, localAddress: opts.localAddress });
  } catch (e) {
    return { ok: false, why: `connect failed: ${(e as Error).message}` };
  }
  try {
    c.write(connectBytes(hardwareId, token));
    const rc = await c.connack(timeout);
    if (rc !== 0) return { ok: false, why: rc === null ? "no CONNACK" : `CONNACK ${rc}` };
    c.write(mqttBytes({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "cmd/#", qos: 1 }] }));
    const sub = await c.waitPacket((p) => p.cmd === "suback", timeout);
    if (!sub || sub.granted?.[0] !== 1) return { ok: false, why: sub ? `SUBACK ${JSON.stringify(sub.granted)}` : "no SUBACK" };
    const marker = `${hardwareId}-${Math.random().toString(36).slice(2)}`;
    c.write(mqttBytes({ cmd: "publish", topic: "hostile/probe", qos: 1, messageId: 2, payload: JSON.stringify({ marker }) }));
    const ack = await c.waitPacket((p) => p.cmd === "puback" && p.messageId === 2, timeout);
    if (!ack || (ack.reasonCode ?? 0) !== 0) return { ok: false, why: ack ? `PUBACK ${ack.reasonCode}` : "no PUBACK" };
    if (opts.backend) {
      const got = await opts.backend.wait((r) => r.body?.marker === marker, timeout).catch(() => null);
      if (!got) return { ok: false, why: "the back-end did not get the publish" };
    }
    c.write(mqttBytes({ cmd: "pingreq" }));
    if (!(await c.waitPacket((p) => p.cmd === "pingresp", timeout))) return { ok: false, why: "no PINGRESP" };
    if (c.badOutput.length > 0) return { ok: false, why: `bad output: ${c.badOutput.join("; ")}` };
    c.write(mqttBytes({ cmd: "disconnect", reasonCode: 0 }));
    await c.waitClosed(1000);
    return { ok: true };
  } finally {
    c.terminate();
  }
}
