/** Small helpers shared by the black-box tests. */
import type { Frame, TestDevice } from "./device.ts";
import { TestBackend } from "./backend.ts";
import type { GatewayProcess } from "./gateway.ts";

/** Polls `fn` every 50 ms until it returns something truthy; throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 4000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** Acks every `cmd` frame `dev` receives, recording them in the returned array. */
export function autoAck(dev: TestDevice): Frame[] {
  const got: Frame[] = [];
  void (async () => {
    while (!dev.closed) {
      const f = await dev.op("cmd", 120_000).catch(() => null);
      if (!f) return;
      got.push(f);
      dev.send({ op: "ack", ref: f.id });
    }
  })();
  return got;
}

/** Deletes the broker queues and exchanges a test gateway declared (its prefix is unique). */
export async function cleanBroker(g: GatewayProcess): Promise<void> {
  const backend = await new TestBackend(g.prefix).start().catch(() => null);
  if (!backend) return;
  await backend.stop([g.gatewayId]);
}
