/** What the MQTT connections of a worker share besides the session context. */
import type { SessionStore } from "./sessions.ts";

/** MQTT limits (config section `[mqtt]`). */
export interface MqttLimits {
  /** Largest packet accepted (advertised as Maximum Packet Size), bytes. */
  maxPacketBytes: number;
  /** QoS 1/2 publishes a device may have awaiting PUBACK/PUBREC (Receive Maximum). */
  receiveMaximum: number;
  /** Longest topic name or filter, bytes. */
  maxTopicBytes: number;
  /** Longest session expiry granted, s. */
  sessionExpiryMaxS: number;
  /** Longest keepalive granted (and the one given to clients asking for 0), s. */
  keepaliveMaxS: number;
}

/** Dependencies of MQTT connections beyond {@link SessionContext}. */
export interface MqttDeps {
  limits: MqttLimits;
  sessions: SessionStore;
}
