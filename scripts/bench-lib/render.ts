/**
 * Renders docs/benchmarks.md from the JSON results of scripts/bench: the machine, each
 * benchmark with the command that reproduces it, its in-run baseline and the ratio, and the
 * targets met or missed. Phases that did not run or failed say so.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../tests/helpers/gateway.ts";
import { renderMqtt } from "./render-mqtt.ts";
import { renderFloor } from "./render-floor.ts";
import { fmt, ms, bytes, ratio, verdict, code, errorsText, cpuNote, latencyRow, LAT_HEAD, failed, us, sumOrNull, warningCount, perRoundTrip, scaleRuns } from "./format.ts";

/** Results by phase name (the JSON files of a results directory). */
export type Results = Record<string, any>;

/** Key figures for the targets table. */
function targets(R: Results) {
  const gw = R.gateway?.summary;
  const bare = R.bare?.summary;
  const rtt = R.broker_rtt?.result?.latency_ms;
  const gwRtt = gw?.latency_ms?.round_trip_pub_reply;
  const door = gw?.backend?.latency_ms?.door_unlock_round_trip;
  const tputGw = Math.max(...(R.throughput?.gateway ?? []).map((g: any) => g.summary?.messages?.acked_per_s ?? 0), 0) || null;
  const tputRaw = Math.max(...(R.throughput?.raw ?? []).map((g: any) => g.result?.confirmed_per_s ?? 0), 0) || null;
  const userGw = gw?.gateway?.user_bytes_per_connection;
  const userBare = bare?.gateway?.user_bytes_per_connection;
  const addedP99 = gwRtt && rtt ? gwRtt.p99_ms - rtt.p99_ms : null;
  return { gw, bare, rtt, gwRtt, door, tputGw, tputRaw, userGw, userBare, addedP99 };
}

/** The whole report. */
export function renderReport(R: Results, opts: { quick: boolean; resultsDir: string }): string {
  const P = R.params ?? {};
  const M = R.machine ?? {};
  const t = targets(R);
  const N = P.devices;
  const out: string[] = [];
  const w = (s = "") => out.push(s);

  w("# Benchmarks");
  w();
  w(`Measured by \`${P.command ?? "scripts/bench"}\` from ${P.started_at ?? "?"} to ${P.finished_at ?? "?"} at commit \`${M.git_commit ?? "?"}\`${opts.quick ? " (**quick mode: small sizes, not representative**)" : ""}. Every number below comes from that one run on the machine described here; each benchmark's baseline was measured in the same run. The raw JSON of every phase is in the appendix.`);
  w();
  w("Reproduce everything with `scripts/bench` (about half an hour; needs RabbitMQ on 127.0.0.1:5672, runs from the sources, or from a binary with `OWSLA_TEST_BINARY=dist/owsla-linux-x64`). `scripts/bench --quick` runs the same phases with a few thousand devices in a few minutes; `tests/load-quick.test.ts` (part of `npm test`) keeps the load tool working. `scripts/bench --render <results dir>` re-renders this file from saved results. Each section gives the exact commands of its phase; the load tool is `owsla load` (`owsla load --help`).");
  w();
  w("## Machine");
  w();
  w("| | |\n|---|---|");
  w(`| CPU | ${M.cpu_model ?? "?"}, **${M.cores ?? "?"} cores** |`);
  w(`| RAM | ${M.ram_gib ?? "?"} GiB |`);
  w(`| OS, kernel | ${M.os ?? "?"}, Linux ${M.kernel ?? "?"} |`);
  w(`| Bun | ${M.bun ?? "?"} |`);
  w(`| RabbitMQ | ${M.rabbitmq ?? "?"} (same machine) |`);
  w(`| amqp-client | ${M.amqp_client ?? "?"} |`);
  w(`| descriptors per process | ${fmt(M.fd_limit_per_process)} (hard limit) |`);
  w(`| ephemeral ports | ${M.ephemeral_ports ?? "?"}, somaxconn ${M.somaxconn ?? "?"} |`);
  w();
  w("Everything — gateway, simulated devices, back-end simulator, RabbitMQ — shares the same two cores, so absolute numbers are lower bounds for a gateway with a machine of its own; the in-run baselines carry the same handicap. The machine is shared with other work: each phase lists the CPU time used by processes outside the benchmark while it ran, and heavy phases first wait (up to 5 minutes) for an 80% idle CPU.");
  w();

  // ---- targets ----
  w("## Results against the targets");
  w();
  w(`| | target | gateway | baseline (same run) | ratio | |`);
  w(`|---|---|---:|---:|---:|---|`);
  for (const size of scaleRuns(R)) {
    const g = size.gw;
    const b = size.bare;
    const rr = g?.latency_ms?.round_trip_pub_reply;
    const dd = g?.backend?.latency_ms?.door_unlock_round_trip;
    const added = rr && t.rtt ? rr.p99_ms - t.rtt.p99_ms : null;
    const restarts = warningCount(size.run?.gateway_warnings, "Worker exited");
    const storeErrors = warningCount(size.run?.gateway_warnings, "Cannot store");
    const n = fmt(size.devices);
    if (!g) {
      w(`| ${n} devices | | ${size.run?.error ? `failed: ${String(size.run.error).split("\n")[0]}` : "not run"} | | | |`);
      continue;
    }
    w(`| (a) ${n} held: user-space bytes per connection | ≤ 2× bare Bun | ${bytes(g.gateway?.user_bytes_per_connection)} | ${bytes(b?.gateway?.user_bytes_per_connection)} (bare Bun) | ${ratio(g.gateway?.user_bytes_per_connection, b?.gateway?.user_bytes_per_connection)} | ${verdict(g.gateway?.user_bytes_per_connection != null && b?.gateway?.user_bytes_per_connection != null ? g.gateway.user_bytes_per_connection <= 2 * b.gateway.user_bytes_per_connection : null)} |`);
    w(`| (b) ${n} connecting at once: welcomes/s, lost | ≥ 0.6× bare Bun, 0 lost | ${fmt(g.welcomes_per_s)}/s, ${fmt(g.lost_devices)} lost | ${fmt(b?.welcomes_per_s)}/s (bare Bun) | ${ratio(g.welcomes_per_s, b?.welcomes_per_s)} | ${verdict(g.welcomes_per_s != null && b?.welcomes_per_s != null ? g.welcomes_per_s >= 0.6 * b.welcomes_per_s && g.lost_devices === 0 : null)} |`);
    w(`| (c) ${n} held, ${fmt(P.msg_rate)} msg/s: pub → back-end → reply p99 | ≤ broker-only p99 + 2 ms | ${ms(rr?.p99_ms)} (added ${ms(added)}) | ${ms(t.rtt?.p99_ms)} (broker only) | ${ratio(rr?.p99_ms, t.rtt?.p99_ms)} | ${verdict(added != null ? added <= 2 : null)} |`);
    w(`| (c) ${n} held, ${fmt(P.cmd_rate)} door unlocks/s: command → device → ack → back-end p99 | ≤ 5 ms | ${ms(dd?.p99_ms)} (p50 ${ms(dd?.p50_ms)}) | — | — | ${verdict(dd ? dd.p99_ms <= 5 : null)} |`);
    w(`| (c) ${n}: "Cannot store" errors; worker restarts | 0; 0 | ${fmt(storeErrors)}; ${fmt(restarts)} | — | — | ${verdict(storeErrors === 0 && restarts === 0)} |`);
    w(`| (e) ${n}: gateway CPU per welcome | reported | ${us(g.gateway?.cpu_us_per_welcome)} | ${us(b?.gateway?.cpu_us_per_welcome)} (bare Bun) | ${ratio(g.gateway?.cpu_us_per_welcome, b?.gateway?.cpu_us_per_welcome)} | |`);
    w(`| (e) ${n}: gateway CPU per round trip (pub, confirm, reply, cmd, ack) | reported | ${us(perRoundTrip(g))} | ${us(b?.gateway?.cpu_us_per_message)} bare Bun pub→ack + ${us(R.broker_rtt?.result?.cpu_us_per_round_trip)} AMQP client (broker only) | ${ratio(perRoundTrip(g), sumOrNull(b?.gateway?.cpu_us_per_message, R.broker_rtt?.result?.cpu_us_per_round_trip))} | |`);
  }
  w(`| (f) upstream throughput with confirms | ≥ 0.59× raw | ${fmt(t.tputGw)} msg/s | ${fmt(t.tputRaw)} msg/s (raw amqp-client) | ${ratio(t.tputGw, t.tputRaw)} | ${verdict(t.tputGw != null && t.tputRaw != null ? t.tputGw >= 0.59 * t.tputRaw : null)} |`);
  const sm = R.gateway_small?.summary;
  if (sm) {
    const sr = sm.latency_ms?.round_trip_pub_reply;
    const sd = sm.backend?.latency_ms?.door_unlock_round_trip;
    w(`| (c) same scenario, ${fmt(sm.devices)} devices on ${R.gateway_small.workers} workers | ≤ broker-only p99 + 2 ms; ≤ 5 ms | round trip ${ms(sr?.p99_ms)} (added ${ms(sr && t.rtt ? sr.p99_ms - t.rtt.p99_ms : null)}); door unlock ${ms(sd?.p99_ms)} | ${ms(t.rtt?.p99_ms)} (broker only) | | ${verdict(sr && sd && t.rtt ? sr.p99_ms - t.rtt.p99_ms <= 2 && sd.p99_ms <= 5 : null)} |`);
  }
  w();
  w("CPU per event is the user + system CPU time of all the gateway's processes (supervisor and workers; for the baseline, the bare server processes) over a phase, divided by the events in it: welcomes from the start of the stampede to the held snapshot; for messages, the device `pub`s plus the door-unlock commands of the message phase (each `pub` also makes one reply command to the device and one device ack). The bare Bun server answers each `pub` with an `ack` and talks to no broker, so its figure plus the broker-only AMQP client's CPU per round trip is the floor.");
  w();
  w("Ratios are gateway ÷ baseline. Latencies are from HDR-style histograms (log-linear buckets, 0.8% resolution) merged across all client processes.");
  w();

  renderFloor(R, w);

  // ---- (a) + (b) ----
  w(`## (a) ${fmt(N)} authenticated connections held`);
  w();
  const fa = failed("gateway", R.gateway) ?? failed("bare", R.bare);
  if (fa) w(fa);
  if (R.gateway?.summary) {
    const g = R.gateway.summary;
    const b = R.bare?.summary;
    w("Commands:");
    w();
    w("```sh");
    w(`${R.gateway.gateway_command}    # the gateway: ${R.gateway.workers} workers, max_connections derived from the descriptor limit`);
    w(R.gateway.command);
    if (R.bare) w(`${R.bare.servers_command}    # baseline: ${R.bare.server_processes} bare Bun server processes (reusePort)`);
    if (R.bare) w(R.bare.command);
    w("```");
    w();
    w("Each device presents a token minted from the gateway's site secret (`--auth token`); client processes hold at most 16,000 sockets each and connect to their own 127.x.y.z addresses (one address per 8,000 devices: Linux scans even local ports first, and past ~14k connections to one destination every connect() scanned thousands of ports). Memory is sampled once every device is welcomed plus 3 s, before any message.");
    w();
    w("| | gateway | bare Bun (baseline) | ratio |\n|---|---:|---:|---:|");
    w(`| connections held at the snapshot | ${fmt(g.connections_held_at_snapshot)} | ${fmt(b?.connections_held_at_snapshot)} | |`);
    w(`| processes | ${fmt(g.gateway?.processes)} (supervisor + workers) | ${fmt(b?.gateway?.processes)} (launcher + servers) | |`);
    w(`| RSS before connecting | ${bytes(g.gateway?.rss_bytes?.before)} | ${bytes(b?.gateway?.rss_bytes?.before)} | ${ratio(g.gateway?.rss_bytes?.before, b?.gateway?.rss_bytes?.before)} |`);
    w(`| RSS with all connections held | ${bytes(g.gateway?.rss_bytes?.held)} | ${bytes(b?.gateway?.rss_bytes?.held)} | ${ratio(g.gateway?.rss_bytes?.held, b?.gateway?.rss_bytes?.held)} |`);
    w(`| RSS peak during the run | ${bytes(g.gateway?.rss_bytes?.peak)} | ${bytes(b?.gateway?.rss_bytes?.peak)} | |`);
    w(`| **user space per connection** (RSS growth ÷ connections) | **${bytes(g.gateway?.user_bytes_per_connection)}** | **${bytes(b?.gateway?.user_bytes_per_connection)}** | **${ratio(g.gateway?.user_bytes_per_connection, b?.gateway?.user_bytes_per_connection)}** |`);
    w(`| kernel: slab growth per connection (both ends, machine-wide) | ${bytes(g.kernel?.slab_bytes_per_connection)} | ${bytes(b?.kernel?.slab_bytes_per_connection)} | |`);
    w(`| kernel: slab total with all held | ${bytes(g.kernel?.slab_bytes?.held)} | ${bytes(b?.kernel?.slab_bytes?.held)} | |`);
    w(`| kernel: TCP buffer memory with all held (sockstat) | ${bytes(g.kernel?.tcp_buffer_bytes?.held)} | ${bytes(b?.kernel?.tcp_buffer_bytes?.held)} | |`);
    w(`| TCP sockets in use (both ends) | ${fmt(g.kernel?.tcp_sockets_in_use?.held)} | ${fmt(b?.kernel?.tcp_sockets_in_use?.held)} | |`);
    w(`| simulated devices' RSS (all client processes) | ${bytes(g.load_processes_rss_bytes)} | ${bytes(b?.load_processes_rss_bytes)} | |`);
    w();
    w("Kernel memory is reported apart from user space: on one box the slab holds both ends of every connection (the gateway's socket and the simulated device's), so the gateway's share is roughly half; it is the same for the gateway and the baseline, as expected, since both hold plain idle TCP sockets.");
    w();
    w(`## (b) Stampede: ${fmt(N)} devices connecting at once`);
    w();
    w(`Same run as (a): every device starts at once; at most ${fmt(g.options?.window_per_process)} handshakes are in flight per client process (${fmt(g.processes)} processes), so listen queues do not overflow into SYN retransmits. Refused or dropped devices retry after \`retry_after\`, then with exponential backoff and full jitter.`);
    w();
    w("| | gateway | bare Bun (baseline) | ratio |\n|---|---:|---:|---:|");
    w(`| time until all welcomed | ${ms(g.time_to_all_welcomed_ms)} | ${ms(b?.time_to_all_welcomed_ms)} | ${ratio(g.time_to_all_welcomed_ms, b?.time_to_all_welcomed_ms)} |`);
    w(`| **welcomes per second** (devices ÷ that time) | **${fmt(g.welcomes_per_s)}** | **${fmt(b?.welcomes_per_s)}** | **${ratio(g.welcomes_per_s, b?.welcomes_per_s)}** |`);
    w(`| best one-second interval | ${fmt(g.peak_welcomes_per_s)} | ${fmt(b?.peak_welcomes_per_s)} | |`);
    w(`| handshake p50 / p99 (connect → welcome) | ${ms(g.latency_ms?.handshake?.p50_ms)} / ${ms(g.latency_ms?.handshake?.p99_ms)} | ${ms(b?.latency_ms?.handshake?.p50_ms)} / ${ms(b?.latency_ms?.handshake?.p99_ms)} | |`);
    w(`| connection attempts / retries | ${fmt(g.connection_attempts)} / ${fmt(g.retries)} | ${fmt(b?.connection_attempts)} / ${fmt(b?.retries)} | |`);
    w(`| errors by kind (whole run, message phase included) | ${errorsText(g.errors)} | ${errorsText(b?.errors)} | |`);
    w(`| **lost devices** (not connected at the end) | **${fmt(g.lost_devices)}** | ${fmt(b?.lost_devices)} | |`);
    w(`| back-end saw presence events | ${fmt(g.backend?.presence_events)} | | |`);
    w();
    w(cpuNote(R.gateway));
    w();
    w(`Gateway warnings and errors logged during the run: ${errorsText(R.gateway.gateway_warnings)}.`);
    w();
    if (g.lost_devices > 0) {
      w(`**The gateway did not hold the load to the end:** ${fmt(g.connections_held)} of ${fmt(N)} devices were connected when the run ended (errors above). Memory (a) and the stampede (b) were measured before messages started; the latencies of (c) and (d) include the breakdown. First warnings the gateway logged:`);
      w();
      w("```");
      for (const l of (R.gateway.gateway_first_warnings ?? []).slice(0, 12)) w(l);
      w("```");
      w();
    }

    // ---- (c) ----
    w(`## (c) Round trip at ${fmt(P.msg_rate)} msg/s with ${fmt(N)} connected`);
    w();
    w(`Same run as (a): once every device was welcomed, the devices publish ${fmt(P.msg_rate)} \`pub\` frames per second in total (open loop, spread over all devices, ${fmt(g.options?.payload_bytes)}-byte filler body, each with a \`ref\`) for ${fmt(g.messages?.phase_s, 0)} s. The back-end simulator consumes \`owsla.up\` and answers every message the standard RPC way (default exchange, \`reply_to\`, \`correlation_id\`); the device times \`pub\` → its \`cmd\` with \`corr\` = its ref. The baseline is the same hop pattern without the gateway: an amqp-client publisher (persistent, confirm mode, same body) → the same back-end simulator → a reply queue, at the same rate, in the same run (phase \`broker_rtt\`, while the machine held no connections).`);
    w();
    if (R.broker_rtt?.command) {
      w("```sh");
      w(`${R.broker_rtt.backend_command}   # back-end simulator (standalone)`);
      w(`${R.broker_rtt.command}   # baseline publisher`);
      w("```");
      w();
    }
    const small = R.gateway_small?.summary;
    const smallTag = small ? `${fmt(small.devices)} devices, ${R.gateway_small.workers} workers` : "";
    w(LAT_HEAD);
    w(latencyRow(`gateway (${fmt(N)} devices, ${R.gateway.workers} workers): pub → back-end → reply at the device`, t.gwRtt));
    w(latencyRow("baseline: publish → back-end → reply (broker only)", t.rtt));
    if (t.gwRtt && t.rtt) w(`| **added by the gateway** | | **${ms(t.gwRtt.p50_ms - t.rtt.p50_ms)}** | **${ms(t.gwRtt.p90_ms - t.rtt.p90_ms)}** | **${ms(t.gwRtt.p99_ms - t.rtt.p99_ms)}** | **${ms(t.gwRtt.p999_ms - t.rtt.p999_ms)}** | |`);
    w(latencyRow(`gateway (${fmt(N)} devices): pub → ack (broker confirm)`, g.latency_ms?.pub_ack));
    if (small) {
      w(latencyRow(`gateway (${smallTag}): pub → back-end → reply`, small.latency_ms?.round_trip_pub_reply));
      const sr = small.latency_ms?.round_trip_pub_reply;
      if (sr && t.rtt) w(`| added by the gateway (${smallTag}) | | ${ms(sr.p50_ms - t.rtt.p50_ms)} | ${ms(sr.p90_ms - t.rtt.p90_ms)} | ${ms(sr.p99_ms - t.rtt.p99_ms)} | ${ms(sr.p999_ms - t.rtt.p999_ms)} | |`);
      w(latencyRow(`gateway (${smallTag}): pub → ack`, small.latency_ms?.pub_ack));
    }
    w(latencyRow(`load tool's own event-loop lag (${fmt(N)} devices run)`, g.load_processes_event_loop_lag_ms));
    if (small) w(latencyRow(`load tool's own event-loop lag (${smallTag} run)`, small.load_processes_event_loop_lag_ms));
    w(latencyRow("back-end simulator's own event-loop lag (baseline run)", R.broker_rtt?.backend?.event_loop_lag_ms));
    w();
    if (small) w(`The ${smallTag} run is phase \`gateway_small\` (same scenario and rates, its own gateway): \`${R.gateway_small.command}\`. ${cpuNote(R.gateway_small)}`);
    w();
    w(`Messages: ${fmt(g.messages?.sent)} sent (${fmt(g.messages?.sent_per_s)}/s), ${fmt(g.messages?.acked)} acked (${fmt(g.messages?.acked_per_s)}/s), ${fmt(g.messages?.rpc_replies)} replies received; back-end errors: ${errorsText(g.backend?.errors)}; unacked at the end: ${fmt(g.messages?.unacked_at_end)}.`);
    w();

    // ---- (d) ----
    w("## (d) Door unlock under the same load");
    w();
    w(`Same run: the back-end simulator learns connected devices from \`$presence\` and publishes ${fmt(P.cmd_rate)} commands per second (topic \`door.unlock\`) to random connected devices through \`owsla.down\`. The device answers \`ack\` and a \`pub\` on \`door.ack\` with \`ref\` = the command id; the back-end times command publish → that \`door.ack\` (one clock). The device also records publish → receipt (back-end and device clocks are the same machine's wall clock).`);
    w();
    w(LAT_HEAD);
    w(latencyRow(`back-end command → device → ack → back-end (${fmt(N)} devices)`, t.door));
    w(latencyRow(`back-end command → device receipt (${fmt(N)} devices)`, g.latency_ms?.cmd_delivery));
    if (small) {
      w(latencyRow(`back-end command → device → ack → back-end (${smallTag})`, small.backend?.latency_ms?.door_unlock_round_trip));
      w(latencyRow(`back-end command → device receipt (${smallTag})`, small.latency_ms?.cmd_delivery));
    }
    w();
    w(`Commands sent ${fmt(g.backend?.commands_sent)}, door acks received ${fmt(g.backend?.door_acks_received)}, without door ack after 30 s: ${fmt(g.backend?.commands_without_door_ack)}.`);
    w();
  }

  // ---- rate sweep ----
  const SW = R.rate_sweep;
  if (SW) {
    w(`## Round trip against message rate (${fmt(SW.devices)} devices, ${SW.workers} workers)`);
    w();
    const fs = failed("rate_sweep", SW);
    if (fs) w(fs);
    else {
      w(`Where the knee is: the scenario of (c) and (d) on one gateway (\`${SW.gateway_command}\`) at increasing message rates, commands at 1/50 of the rate; each rate is a separate \`owsla load\` run (commands below). Baseline for the round trip: the broker-only p50/p99 above (${ms(t.rtt?.p50_ms)} / ${ms(t.rtt?.p99_ms)} at ${fmt(P.msg_rate)} msg/s).`);
      w();
      w("| msg/s offered | acked/s | pub → ack p50 / p99 | round trip p50 / p99 | door unlock p50 / p99 | load tool lag p99 | errors |\n|---:|---:|---:|---:|---:|---:|---|");
      for (const r of SW.runs) {
        const x = r.summary;
        const L = x.latency_ms;
        const d = x.backend?.latency_ms?.door_unlock_round_trip;
        w(`| ${fmt(r.rate)} | ${fmt(x.messages?.acked_per_s)} | ${ms(L.pub_ack?.p50_ms)} / ${ms(L.pub_ack?.p99_ms)} | ${ms(L.round_trip_pub_reply?.p50_ms)} / ${ms(L.round_trip_pub_reply?.p99_ms)} | ${ms(d?.p50_ms)} / ${ms(d?.p99_ms)} | ${ms(x.load_processes_event_loop_lag_ms?.p99_ms)} | ${errorsText(x.errors)} |`);
      }
      w();
      w("```sh");
      for (const r of SW.runs) w(r.command);
      w("```");
      w();
      w(`Gateway warnings and errors over the sweep: ${errorsText(SW.gateway_warnings)}. ${cpuNote(SW)}`);
    }
    w();
  }

  // ---- (e) ----
  w("## (e) Upstream throughput with publisher confirms");
  w();
  const fe = failed("throughput", R.throughput);
  if (fe) w(fe);
  else {
    const T = R.throughput;
    w("A gateway with 2 workers (one per core); devices keep a fixed number of `pub` frames unacknowledged (closed loop: each gateway `ack` — sent after the broker's confirm — releases the next). The back-end simulator consumes without replying. Baseline in the same run: one amqp-client connection publishing the same persistent messages to the same exchange in confirm mode with a window of unconfirmed publishes (both corked per tick, as the gateway does).");
    w();
    w("```sh");
    w(T.gateway_command);
    w(`${T.backend_command}`);
    for (const g of T.gateway) w(g.command);
    for (const r of T.raw) w(r.command);
    w("```");
    w();
    w("| sender | in flight | msg/s confirmed | pub → ack p50 / p99 |\n|---|---:|---:|---:|");
    for (const g of T.gateway) w(`| gateway, ${g.devices} devices × ${g.inflight} | ${fmt(g.devices * g.inflight)} | ${fmt(g.summary?.messages?.acked_per_s)} | ${ms(g.summary?.latency_ms?.pub_ack?.p50_ms)} / ${ms(g.summary?.latency_ms?.pub_ack?.p99_ms)} |`);
    for (const r of T.raw) w(`| raw amqp-client publisher | ${fmt(r.result?.window)} | ${fmt(r.result?.confirmed_per_s)} | |`);
    w();
    w(`Best gateway ÷ best raw: **${ratio(t.tputGw, t.tputRaw)}**. ${cpuNote(T)}`);
    w();
  }

  // ---- 400k, 1M ----
  for (const [size, gName, bName] of [[P.big, "gateway_big", "bare_big"], [P.huge, "gateway_huge", "bare_huge"]] as const) {
    if (!size) continue;
    w(`## ${fmt(size)} connections`);
    w();
    const gb = R[gName];
    const bb = R[bName];
    const fb = failed(gName, gb);
    if (fb) w(fb);
    if (gb?.summary) {
      const g = gb.summary;
      const b = bb?.summary;
      w("```sh");
      w(`${gb.gateway_command}`);
      w(gb.command);
      if (bb?.servers_command) w(bb.servers_command);
      if (bb?.command) w(bb.command);
      w("```");
      w();
      w("| | gateway | bare Bun |\n|---|---:|---:|");
      w(`| workers / server processes | ${fmt(gb.workers)} | ${fmt(bb?.server_processes)} |`);
      w(`| all welcomed | ${g.all_welcomed ? "yes" : "no"} | ${b ? (b.all_welcomed ? "yes" : "no") : "—"} |`);
      w(`| time until all welcomed | ${ms(g.time_to_all_welcomed_ms)} | ${ms(b?.time_to_all_welcomed_ms)} |`);
      w(`| welcomes per second | ${fmt(g.welcomes_per_s)} | ${fmt(b?.welcomes_per_s)} |`);
      w(`| welcomed at least once | ${fmt(g.devices - g.never_welcomed)} | ${fmt(b ? b.devices - b.never_welcomed : null)} |`);
      w(`| most connected at once | ${fmt(g.connections_held_peak)} | ${fmt(b?.connections_held_peak)} |`);
      w(`| connections held at the end | ${fmt(g.connections_held)} | ${fmt(b?.connections_held)} |`);
      w(`| never welcomed | ${fmt(g.never_welcomed)} | ${fmt(b?.never_welcomed)} |`);
      w(`| errors | ${errorsText(g.errors)} | ${errorsText(b?.errors)} |`);
      w(`| RSS held / per connection | ${bytes(g.gateway?.rss_bytes?.held)} / ${bytes(g.gateway?.user_bytes_per_connection)} | ${bytes(b?.gateway?.rss_bytes?.held)} / ${bytes(b?.gateway?.user_bytes_per_connection)} |`);
      w(`| kernel slab held (machine) | ${bytes(g.kernel?.slab_bytes?.held)} | ${bytes(b?.kernel?.slab_bytes?.held)} |`);
      w(`| round trip p50 / p99 at ${fmt(P.msg_rate)} msg/s | ${ms(g.latency_ms?.round_trip_pub_reply?.p50_ms)} / ${ms(g.latency_ms?.round_trip_pub_reply?.p99_ms)} | |`);
      w(`| door unlock p50 / p99 | ${ms(g.backend?.latency_ms?.door_unlock_round_trip?.p50_ms)} / ${ms(g.backend?.latency_ms?.door_unlock_round_trip?.p99_ms)} | |`);
      w(`| messages acked per second (of ${fmt(P.msg_rate)}) | ${fmt(g.messages?.acked_per_s)} | |`);
      w(`| problems reported by the load tool | ${(g.problems ?? []).join("; ") || "none"} | ${(b?.problems ?? []).join("; ") || "none"} |`);
      w();
      w(`Gateway warnings and errors: ${errorsText(gb.gateway_warnings)}. ${cpuNote(gb)}`);
      w();
    }
  }

  renderMqtt(R, w);

  // ---- existing benchmarks ----
  w("## Earlier benchmarks (same run)");
  w();
  const W = R.welcomes?.result;
  w("### Welcome stampede, 20k devices, first connect and reconnect (`scripts/bench-welcomes.ts`)");
  w();
  if (failed("welcomes", R.welcomes)) w(failed("welcomes", R.welcomes)!);
  else {
    w(`\`${R.welcomes.command}\` — ${fmt(W.devices)} devices from ${W.client_processes} client processes, gateway with ${W.workers} workers; baseline a bare Bun server (2 processes).`);
    w();
    w("| round | gateway welcomes/s | time to all | bare Bun welcomes/s | ratio | errors |\n|---|---:|---:|---:|---:|---|");
    w(`| first connect | ${fmt(W.gateway.first_connect.welcomes_per_s)} | ${ms(W.gateway.first_connect.time_to_all_welcomed_ms)} | ${fmt(W.baseline_bare_bun_server.round1.welcomes_per_s)} | ${fmt(W.gateway_over_baseline_welcomes_per_s.first_connect, 2)}× | ${errorsText(W.gateway.first_connect.errors)} |`);
    w(`| reconnect | ${fmt(W.gateway.reconnect.welcomes_per_s)} | ${ms(W.gateway.reconnect.time_to_all_welcomed_ms)} | ${fmt(W.baseline_bare_bun_server.round2.welcomes_per_s)} | ${fmt(W.gateway_over_baseline_welcomes_per_s.reconnect, 2)}× | ${errorsText(W.gateway.reconnect.errors)} |`);
    w();
    w(`Round 1: devices the gateway has never seen; round 2: all disconnect and come back at once (the stampede after a power cut); 200 handshakes in flight per client process. Issue 3's target, 10k welcomes/s in a reconnect stampede: ${verdict(W.gateway.reconnect.welcomes_per_s >= 10_000 && W.gateway.reconnect.failed === 0)} in this run (${fmt(W.gateway.reconnect.welcomes_per_s)}/s, ${fmt(W.gateway.reconnect.failed)} failed; 12.0k/s in the run recorded when issue 3 closed). Kernel listen-queue overflows: ${fmt(W.gateway.first_connect.kernel_listen_overflows)} (first connect), ${fmt(W.gateway.reconnect.kernel_listen_overflows)} (reconnect).`);
  }
  w();
  const F = R.forward?.result;
  w("### Cross-worker command forwarding (`scripts/bench-forward.ts`)");
  w();
  if (failed("forward", R.forward)) w(failed("forward", R.forward)!);
  else {
    w(`\`${R.forward.command}\` — back-end publish → device receipt, one command at a time; local = consumed by the worker holding the device (baseline), cross = forwarded over the worker mesh (unix sockets, through the device's home worker).`);
    w();
    w("| | samples | p50 | p90 | p99 | p99.9 |\n|---|---:|---:|---:|---:|---:|");
    w(`| local | ${fmt(F.local_ms.n)} | ${ms(F.local_ms.p50)} | ${ms(F.local_ms.p90)} | ${ms(F.local_ms.p99)} | ${ms(F.local_ms.p999)} |`);
    w(`| cross-worker | ${fmt(F.cross_ms.n)} | ${ms(F.cross_ms.p50)} | ${ms(F.cross_ms.p90)} | ${ms(F.cross_ms.p99)} | ${ms(F.cross_ms.p999)} |`);
    w(`| added by forwarding | | ${ms(F.added_forwarding_ms.p50)} | ${ms(F.added_forwarding_ms.p90)} | ${ms(F.added_forwarding_ms.p99)} | ${ms(F.added_forwarding_ms.p999)} |`);
    w();
    w(`Issue 3's target, added p99 well under 1 ms: ${verdict(F.added_forwarding_ms.p99 < 1)} (${ms(F.added_forwarding_ms.p99)}). This is one command at a time on 2 workers; under load with 12 workers every forwarded command is relayed to all other workers (see the analysis).`);
  }
  w();
  const S = R.startup?.result;
  w("### Binary size and start-up (`scripts/bench-startup.ts`)");
  w();
  if (failed("startup", R.startup)) w(failed("startup", R.startup)!);
  else {
    w(`\`${R.startup.command}\` — medians of ${S.runs} runs of \`dist/owsla-linux-x64\` (built by \`npm run build\`; the script builds it only when missing, so it may predate the sources).`);
    w();
    w("| | owsla | baseline | ratio |\n|---|---:|---:|---:|");
    w(`| binary size | ${bytes(S.size_bytes.owsla_linux_x64)} | ${bytes(S.size_bytes.hello_world)} (compiled hello world) | ${fmt(S.size_bytes.ratio, 3)}× |`);
    w(`| start to ready, 1 worker | ${ms(S.startup_ms_median.gateway_1_worker_to_ready)} | ${ms(S.startup_ms_median.bare_server_to_listening)} (compiled bare TCP server) | |`);
    w(`| start to ready, 2 workers | ${ms(S.startup_ms_median.gateway_2_workers_to_ready)} | ${ms(S.startup_ms_median.bare_server_to_listening)} | ${fmt(S.ratio_gateway_2_workers_over_bare_server, 2)}× |`);
    w();
    w(`"Ready" is the supervisor's "Gateway ready: all workers listening" line, with the broker deliberately unreachable. The size difference (${bytes(S.size_bytes.owsla_minus_hello)}) is everything Owsla adds to the Bun runtime, dashboard included. The arm64 binary is the same size class and starts under qemu-user in CI (\`scripts/smoke-binary.ts\`, about 1.8 s emulated).`);
  }
  w();

  const notes = join(ROOT, "scripts/bench-lib/analysis.md");
  if (!opts.quick && existsSync(notes)) {
    w(readFileSync(notes, "utf8").trim());
    w();
  }

  w("## Appendix: raw results");
  w();
  w(`Saved by the run in \`${opts.resultsDir}\` (one JSON file per phase).`);
  w();
  for (const [name, r] of Object.entries(R)) {
    w(`<details><summary>${name}</summary>`);
    w();
    w("```json");
    w(JSON.stringify(r, null, 1));
    w("```");
    w();
    w("</details>");
    w();
  }
  return out.join("\n");
}
