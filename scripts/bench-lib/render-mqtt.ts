/**
 * The MQTT section of docs/benchmarks.md (phase `mqtt`, scripts/bench-lib/mqtt-phase.ts): the
 * gateway's MQTT port next to Mosquitto and RabbitMQ's MQTT plugin under the same load, with
 * ratios against Mosquitto and the aims (at least Mosquitto's connects/s, under its
 * memory per connection).
 */
import { bytes, cpuNote, errorsText, fmt, ms, perRoundTrip, ratio, us, verdict } from "./format.ts";
import type { Results } from "./render.ts";

type Target = { key: "owsla" | "floor" | "mosquitto" | "rabbitmq"; name: string };
const TARGETS: Target[] = [
  { key: "owsla", name: "Owsla (MQTT port)" },
  { key: "floor", name: "contract floor" },
  { key: "mosquitto", name: "Mosquitto" },
  { key: "rabbitmq", name: "RabbitMQ MQTT" },
];

/** Appends the MQTT section to `w` (nothing when the phase did not run). */
export function renderMqtt(R: Results, w: (s?: string) => void): void {
  const M = R.mqtt;
  if (!M) return;
  w("## MQTT: the gateway's MQTT port, Mosquitto and RabbitMQ MQTT on the same load");
  w();
  if (M.error) {
    w(`_Phase \`mqtt\` failed: ${String(M.error).split("\n")[0]}_`);
    w();
    return;
  }
  const P = M.params ?? {};
  const s = (k: Target["key"]) => M[k]?.summary;
  const O = s("owsla");
  const Q = s("mosquitto");
  const row = (label: string, f: (x: any, k: Target["key"]) => string, vsMosquitto?: (x: any) => unknown) =>
    w(`| ${label} | ${TARGETS.map((t) => (M[t.key]?.summary ? f(M[t.key].summary, t.key) : "—")).join(" | ")} | ${vsMosquitto ? ratio(vsMosquitto(O), vsMosquitto(Q)) : ""} |`);

  w(`Measured from ${M.started_at ?? "?"} at commit \`${M.commit ?? "?"}\` (phase \`mqtt\`, which may come from a later run than the sections above; the machine is the same). Reproduce with \`scripts/bench --only mqtt --mqtt-devices ${P.devices ?? "N"} --mqtt-rate ${P.msgRate ?? "R"}\` (about ${Math.round(((P.connectS ?? 60) + (P.msgS ?? 30) + 40) * 3 / 60)} minutes). In one run, one target after the other on the same machine, ${fmt(P.devices)} simulated MQTT devices (\`owsla load --mqtt\`) connect at once (at most ${fmt(P.window)} CONNECTs in flight per client process: Mosquitto 2.0.11 listens with a fixed backlog of 100, and 256 in flight overflowed it into 1 s SYN retransmits in a trial run), are held, and then send ${fmt(P.msgRate)} QoS 1 requests per second in total for ${fmt(P.msgS)} s, each answered by a back-end on the device's response topic. ${fmt(P.devices)} connections because Mosquitto and a RabbitMQ node are one process each and every process here is limited to 20,000 descriptors (the gateway spreads devices over its workers and holds 200k+ over the line protocol, above).`);
  w();
  w("- **Owsla**: MQTT 5, token auth (client id = hardware id, password = device token), " + `${fmt(M.owsla?.workers)} workers; request = PUBLISH \`load\` with Response Topic \`reply/<n>\` and Correlation Data; the AMQP back-end simulator (\`owsla.up\` consumer) answers the RPC way and the gateway delivers the reply as PUBLISH on \`reply/<n>\`. PUBACK only after RabbitMQ confirmed the message (persistent). Door unlocks at ${fmt(P.cmdRate)}/s (command → PUBLISH \`cmd/...\` → PUBACK + \`door/ack\` → back-end) run alongside.`);
  if (M.floor) w("- **Contract floor** (`scripts/bench-lib/floor-server.ts`, same number of processes): bare Bun plus only the broker work the AMQP contract requires of any gateway — a persistent `$presence` event with a confirm per CONNECT and per close, each request published persistent with a confirm before its PUBACK, each reply written to its response topic and acked to the broker on the device's PUBACK — with no authentication, store, limits or routing between processes (an exclusive reply queue per process; door unlocks off). Whatever it cannot do here, no gateway on Bun and amqp-client can.");
  w("- **Mosquitto**: MQTT 5, anonymous, the tool's MQTT back-end subscribes to `load` (QoS 0, so one subscriber is not throttled by the broker's per-client inflight window) and publishes each reply QoS 1 to the response topic with the correlation data. Mosquitto PUBACKs on receipt, in memory (`persistence false`).");
  w("- **RabbitMQ MQTT**: the plugin of RabbitMQ 3.10 speaks MQTT 3.1.1 only, so the reply address travels in the JSON payload (`\"r\"`, `\"c\"`); same MQTT back-end as for Mosquitto. RabbitMQ PUBACKs when its queue took the message (non-durable queues of clean sessions: not on disk).");
  w();
  w("Commands:");
  w();
  w("```sh");
  if (M.owsla?.gateway_command) w(`${M.owsla.gateway_command}    # the gateway`);
  if (M.owsla?.command) w(M.owsla.command);
  if (M.floor?.servers_command) w(`${M.floor.servers_command}    # the contract floor`);
  if (M.floor?.command) w(M.floor.command);
  if (M.mosquitto?.broker_command) w(`${M.mosquitto.broker_command}    # ${M.mosquitto.version}; config: ${String(M.mosquitto.broker_config).replaceAll("\n", "; ")}`);
  if (M.mosquitto?.command) w(M.mosquitto.command);
  if (M.rabbitmq?.broker_command) w(`${M.rabbitmq.broker_command}    # ${M.rabbitmq.version}; rabbitmq.conf: ${String(M.rabbitmq.broker_config).replaceAll("\n", "; ")}`);
  if (M.rabbitmq?.command) w(M.rabbitmq.command);
  w("```");
  w();
  for (const t of TARGETS) if (M[t.key]?.error) w(`_${t.name}: ${String(M[t.key].error).split("\n")[0]}_\n`);
  w(`| | ${TARGETS.map((t) => t.name).join(" | ")} | Owsla ÷ Mosquitto |`);
  w(`|---|${TARGETS.map(() => "---:").join("|")}|---:|`);
  row("MQTT version, PUBACK means", (_x, k) => (k === "owsla" || k === "floor" ? "5, broker confirmed" : k === "mosquitto" ? "5, received (memory)" : "3.1.1, queued (memory)"));
  row("connections held at the snapshot", (x) => fmt(x.connections_held_at_snapshot));
  row("processes measured", (x) => fmt(x.gateway?.processes));
  row("RSS before connecting", (x) => bytes(x.gateway?.rss_bytes?.before));
  row("RSS with all connections held", (x) => bytes(x.gateway?.rss_bytes?.held));
  row("**user-space bytes per connection**", (x) => `**${bytes(x.gateway?.user_bytes_per_connection)}**`, (x) => x?.gateway?.user_bytes_per_connection);
  row("**connects/s** (devices ÷ time until all had CONNACK)", (x) => `**${fmt(x.welcomes_per_s)}**`, (x) => x?.welcomes_per_s);
  row("best one-second interval", (x) => fmt(x.peak_welcomes_per_s));
  row("CONNECT → CONNACK p50 / p99", (x) => `${ms(x.latency_ms?.handshake?.p50_ms)} / ${ms(x.latency_ms?.handshake?.p99_ms)}`);
  row("requests sent / PUBACKed / replies received", (x) => `${fmt(x.messages?.sent)} / ${fmt(x.messages?.acked)} / ${fmt(x.messages?.rpc_replies)}`);
  row("PUBLISH → PUBACK p50 / p99", (x) => `${ms(x.latency_ms?.pub_ack?.p50_ms)} / ${ms(x.latency_ms?.pub_ack?.p99_ms)}`, (x) => x?.latency_ms?.pub_ack?.p99_ms);
  row("**PUBLISH → back-end → reply p50**", (x) => `**${ms(x.latency_ms?.round_trip_pub_reply?.p50_ms)}**`, (x) => x?.latency_ms?.round_trip_pub_reply?.p50_ms);
  row("**PUBLISH → back-end → reply p99**", (x) => `**${ms(x.latency_ms?.round_trip_pub_reply?.p99_ms)}**`, (x) => x?.latency_ms?.round_trip_pub_reply?.p99_ms);
  row("command → device → PUBACK + door/ack → back-end p50 / p99", (x, k) => (k === "owsla" ? `${ms(x.backend?.latency_ms?.door_unlock_round_trip?.p50_ms)} / ${ms(x.backend?.latency_ms?.door_unlock_round_trip?.p99_ms)}` : "not simulated"));
  row("CPU per connect (all its processes)", (x) => us(x.gateway?.cpu_us_per_welcome), (x) => x?.gateway?.cpu_us_per_welcome);
  row("CPU per request (publish, PUBACK, reply)", (x) => us(perRoundTrip(x)), (x) => perRoundTrip(x));
  row("errors (whole run)", (x) => errorsText(x.errors));
  row("lost devices (not connected at the end)", (x) => fmt(x.lost_devices));
  row("problems reported by the load tool", (x) => (x.problems ?? []).join("; ") || "none");
  w();
  for (const t of TARGETS) {
    const m = s(t.key)?.messages;
    if (m && m.sent > 0 && m.rpc_replies < 0.95 * m.sent) {
      w(`**${t.name} fell behind the load:** ${fmt(m.rpc_replies)} of ${fmt(m.sent)} requests got their reply before the run ended (${fmt(m.acked)} PUBACKed); its latencies are those of an overloaded target.`);
      w();
    }
  }
  const mem = O?.gateway?.user_bytes_per_connection != null && Q?.gateway?.user_bytes_per_connection != null ? O.gateway.user_bytes_per_connection < Q.gateway.user_bytes_per_connection : null;
  const rate = O?.welcomes_per_s != null && Q?.welcomes_per_s != null ? O.welcomes_per_s >= Q.welcomes_per_s : null;
  w(`Aims of issue 14 against Mosquitto in this run: connects/s at least Mosquitto's: ${verdict(rate)}; memory per connection under Mosquitto's: ${verdict(mem)}.`);
  const F = s("floor");
  if (F?.welcomes_per_s != null && Q?.welcomes_per_s != null) {
    w();
    w(`The contract floor reached ${fmt(F.welcomes_per_s)} connects/s, ${ratio(F.welcomes_per_s, Q.welcomes_per_s)} of Mosquitto's: ${F.welcomes_per_s >= Q.welcomes_per_s ? "Mosquitto's connect rate is within reach of a gateway on this stack here" : "**on this machine no gateway that publishes the contract's presence events (persistent, confirmed, by a broker on the same two cores) reaches Mosquitto's connect rate**, which publishes nothing anywhere on a connect"}. Its memory per connection (${bytes(F.gateway?.user_bytes_per_connection)}, with mqtt-packet's parser per connection as in the gateway) is not a floor: it keeps less state than a gateway must, but makes no effort to keep less.`);
  }
  w();
  w(`${cpuNote(M)} (RabbitMQ here is every beam.smp: the shared node behind the gateway and the private MQTT node.) Gateway warnings and errors logged during its run: ${errorsText(M.owsla?.gateway_warnings)}.`);
  w();
  w("Memory is the RSS growth of the target's processes (the gateway: supervisor and workers; Mosquitto: its one process; RabbitMQ: the node's beam.smp and its helpers) between before connecting and every device held + 3 s, divided by the connections. CPU is user + system time of the same processes, per connect from the start to the held snapshot, per request over the message phase (for the gateway, door unlocks count as requests too). The gateway's figures do not include the shared RabbitMQ node behind it (it persists and confirms every message and queues every reply), while the peers' figures include everything they do; Mosquitto and RabbitMQ also acknowledge a QoS 1 message on receipt, the end-to-end confirm the gateway gives and they do not.");
  w();
}
