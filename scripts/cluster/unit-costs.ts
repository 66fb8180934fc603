/**
 * Unit costs on one RabbitMQ node of our own, to split what scale-bench.ts measures per gateway
 * into connections and queues: the VM's allocated memory (erlang:memory(total)) before and after
 * opening N connections (one channel each), declaring N quorum queues and N classic queues.
 * A quorum queue of a 3-node cluster has a member on every node: multiply its cost by 3.
 *
 *   bun scripts/cluster/unit-costs.ts [--n 200] [--frame-max 131072]  (the gateway asks for 131072)
 */
import { parseArgs } from "node:util";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { PrivateBroker } from "../../tests/helpers/private-broker.ts";

const { values: v } = parseArgs({ options: { n: { type: "string", default: "200" }, "frame-max": { type: "string", default: "131072" } } });
const N = Number(v.n);
const broker = await PrivateBroker.start({ tag: "unit", definitions: false });
const mem = async () => {
  await broker.ctl(["eval", "erlang:garbage_collect()."]);
  return Number((await broker.ctlOk(["eval", "erlang:memory(total)."])).trim());
};
try {
  await Bun.sleep(5000);
  const m0 = await mem();
  const clients: AMQPClient[] = [];
  for (let i = 0; i < N; i++) {
    const c = new AMQPClient(`${broker.url()}?heartbeat=10&frameMax=${v["frame-max"]}`);
    await c.connect();
    await c.channel();
    clients.push(c);
  }
  await Bun.sleep(2000);
  const m1 = await mem();
  const ch = await clients[0]!.channel();
  for (let i = 0; i < N; i++) await ch.queueDeclare(`unit.qq.${i}`, { durable: true }, { "x-queue-type": "quorum", "x-delivery-limit": 20 });
  await Bun.sleep(2000);
  const m2 = await mem();
  for (let i = 0; i < N; i++) await ch.queueDeclare(`unit.cq.${i}`, { durable: true }, {});
  await Bun.sleep(2000);
  const m3 = await mem();
  const kb = (b: number) => Math.round(b / 1024);
  console.log(JSON.stringify({ n: N, connection_with_channel_kb: kb((m1 - m0) / N), quorum_queue_member_kb: kb((m2 - m1) / N), classic_queue_kb: kb((m3 - m2) / N), node_baseline_mb: Math.round(m0 / 1e6) }, null, 1));
  for (const c of clients) await c.close().catch(() => {});
} finally {
  await broker.stop();
}
