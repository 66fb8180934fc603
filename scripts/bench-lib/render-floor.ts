/**
 * The "contract floor" section of docs/benchmarks.md: bare Bun, the floor (bare Bun plus only
 * the broker work the AMQP contract requires, floor-server.ts) and the gateway under the same
 * load, side by side, and what that says about the targets on this machine: a target the floor
 * itself misses cannot be met here by any gateway on this stack.
 */
import type { Results } from "./render.ts";
import { bytes, cpuNote, fmt, ms, perRoundTrip, ratio, us, verdict } from "./format.ts";

type W = (s?: string) => void;

/** One size's three runs. */
interface Trio {
  label: string;
  bare: any;
  floor: any;
  gw: any;
}

function rows(t: Trio, brokerP99: number | null, w: W): void {
  const { bare: b, floor: f, gw: g } = t;
  const rtt = (s: any) => s?.latency_ms?.round_trip_pub_reply;
  const cells = (get: (s: any) => string) => `${get(b)} | ${get(f)} | ${get(g)}`;
  w(`| **${t.label}** | | | | |`);
  w(`| welcomes/s (all at once) | ${cells((s) => fmt(s?.welcomes_per_s))} | ${ratio(f?.welcomes_per_s, b?.welcomes_per_s)} |`);
  w(`| user-space bytes per held connection | ${cells((s) => bytes(s?.gateway?.user_bytes_per_connection))} | ${ratio(f?.gateway?.user_bytes_per_connection, b?.gateway?.user_bytes_per_connection)} |`);
  w(`| server CPU per welcome | ${cells((s) => us(s?.gateway?.cpu_us_per_welcome))} | ${ratio(f?.gateway?.cpu_us_per_welcome, b?.gateway?.cpu_us_per_welcome)} |`);
  w(`| server CPU per message (bare: pub → ack; floor, gateway: the round trip) | ${us(b?.gateway?.cpu_us_per_message)} | ${us(perRoundTrip(f))} | ${us(perRoundTrip(g))} | ${ratio(perRoundTrip(f), b?.gateway?.cpu_us_per_message)} |`);
  w(`| pub → ack p50 / p99 | ${cells((s) => `${ms(s?.latency_ms?.pub_ack?.p50_ms)} / ${ms(s?.latency_ms?.pub_ack?.p99_ms)}`)} | |`);
  w(`| pub → back-end → reply p50 / p99 | — | ${ms(rtt(f)?.p50_ms)} / ${ms(rtt(f)?.p99_ms)} | ${ms(rtt(g)?.p50_ms)} / ${ms(rtt(g)?.p99_ms)} | |`);
  if (brokerP99 !== null) w(`| reply p99 added over broker only (${ms(brokerP99)}) | — | ${ms(rtt(f) ? rtt(f).p99_ms - brokerP99 : null)} | ${ms(rtt(g) ? rtt(g).p99_ms - brokerP99 : null)} | |`);
  w(`| lost devices; errors | ${cells((s) => (s ? `${fmt(s.lost_devices)}; ${Object.keys(s.errors ?? {}).length ? Object.entries(s.errors).map(([k, n]) => `${k} ${n}`).join(", ") : "none"}` : "—"))} | |`);
}

/** Renders the section when the floor ran. */
export function renderFloor(R: Results, w: W): void {
  if (!R.floor && !R.floor_small) return;
  const brokerP99: number | null = R.broker_rtt?.result?.latency_ms?.p99_ms ?? null;
  const P = R.params ?? {};
  w("## The contract floor: what the contract alone costs on this machine");
  w();
  w("The targets compare the gateway with bare Bun (no broker at all) and with a broker-only client (no devices). Neither does what the AMQP contract requires of any gateway: a persistent `$presence` event with a confirm per welcome and per close, every `pub` published persistent with a confirm before its `ack`, every reply delivered to its device and acked to the broker only after the device's `ack`. The **contract floor** (`scripts/bench-lib/floor-server.ts`) is the bare Bun server plus exactly that broker work, with amqp-client, corked per event-loop turn like the gateway — and nothing else: no authentication, store, registry, limits, supervision, or routing between processes (each process has its own exclusive reply queue, which the contract does not allow a gateway: its replies come through the gateway's one queue). It runs under the gateway's load with the same load tool, the same number of processes and the back-end simulator answering; door unlocks are off (`--cmd-rate 0`), since routing a back-end command to the process holding the device is gateway work. Whatever the floor cannot do on this machine, no gateway on Bun and amqp-client can.");
  w();
  w("| | bare Bun | contract floor | gateway | floor ÷ bare |\n|---|---:|---:|---:|---:|");
  const trios: Trio[] = [];
  if (R.floor_small) trios.push({ label: `${fmt(R.floor_small.summary?.devices ?? P.small)} devices, ${R.floor_small.server_processes} processes (gateway: phase gateway_small; no bare run at this size)`, bare: null, floor: R.floor_small.summary, gw: R.gateway_small?.summary });
  if (R.floor) trios.push({ label: `${fmt(R.floor.summary?.devices ?? P.devices)} devices, ${R.floor.server_processes} processes`, bare: R.bare?.summary, floor: R.floor.summary, gw: R.gateway?.summary });
  for (const t of trios) rows(t, brokerP99, w);
  w();
  const f = R.floor?.summary;
  const b = R.bare?.summary;
  const fr = f?.latency_ms?.round_trip_pub_reply;
  if (f && b) {
    const welcomeShare = f.welcomes_per_s / b.welcomes_per_s;
    w(`What this says about the targets at ${fmt(P.devices)} devices on this machine:`);
    w();
    w(`- (b) welcomes/s ≥ 0.6× bare Bun: the floor reaches ${ratio(f.welcomes_per_s, b.welcomes_per_s)} — ${welcomeShare >= 0.6 ? "the target is within reach of a gateway on this stack here" : "**not attainable here by any gateway that publishes the contract's presence events** (each is a persistent message the broker, on the same two cores, must store and confirm)"}.`);
    if (fr && brokerP99 !== null) w(`- (c) round trip p99 ≤ broker-only p99 + 2 ms: the floor's p99 is ${ms(fr.p99_ms)} (+${ms(fr.p99_ms - brokerP99)}) — ${fr.p99_ms - brokerP99 <= 2 ? "within reach here" : `**not attainable here**: with ${fmt(P.devices)} connections held, the devices' simulator, the back-end and the broker share two cores with the servers`} (${verdict(fr.p99_ms - brokerP99 <= 2)} by the floor itself).`);
    w(`- (a) bytes per connection ≤ 2× bare Bun: the floor holds ${ratio(f.gateway?.user_bytes_per_connection, b.gateway?.user_bytes_per_connection)} of bare Bun's — what a connection costs once the stampede's presence publishes went through amqp-client.`);
    w();
  }
  if (R.floor) w(`Commands: \`${R.floor.servers_command}\`, then \`${R.floor.command}\`. ${cpuNote(R.floor)}`);
  if (R.floor_small) w(`\n\`${R.floor_small.servers_command}\`, then \`${R.floor_small.command}\`. ${cpuNote(R.floor_small)}`);
  w();
}
