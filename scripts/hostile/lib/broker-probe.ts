/**
 * Measures the broker's own publish → confirm latency from outside the gateway, so a slow
 * pub → ack round trip during an attack can be attributed: the gateway, or the broker that
 * shares the machine.
 */
import { AMQPClient } from "@cloudamqp/amqp-client";
import { BROKER_URL } from "../../../tests/helpers/gateway.ts";
import { latencySummary } from "./stats.ts";

/** Publishes to a private queue every `everyMs` with confirms, tagging samples by phase. */
export class BrokerProbe {
  phase = "before";
  readonly confirmMs: Record<string, number[]> = {};
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  private client!: AMQPClient;

  static async start(everyMs = 20): Promise<BrokerProbe> {
    const p = new BrokerProbe();
    p.client = new AMQPClient(BROKER_URL);
    await p.client.connect();
    const ch = await p.client.channel();
    await ch.confirmSelect();
    const q = await ch.queueDeclare("", { exclusive: true, autoDelete: true }, { "x-max-length": 100 });
    p.loop = (async () => {
      while (p.running) {
        const t0 = performance.now();
        const phase = p.phase;
        try {
          await ch.basicPublish("", q.name, "probe", { deliveryMode: 2 });
          (p.confirmMs[phase] ??= []).push(performance.now() - t0);
        } catch {
          return;
        }
        await Bun.sleep(Math.max(0, everyMs - (performance.now() - t0)));
      }
    })();
    return p;
  }

  summary(phase: string): ReturnType<typeof latencySummary> {
    return latencySummary(this.confirmMs[phase] ?? []);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client.close().catch(() => {});
  }
}
