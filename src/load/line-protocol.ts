/**
 * The line protocol side of a simulated device: `hello` with a token minted from the site
 * secret, newline-delimited JSON frames in both directions (docs/device-protocol.md).
 */
import { mintToken } from "../auth/token.ts";
import type { DeviceProtocol, DeviceWrite, FleetEvents } from "./device-protocol.ts";
import { ackLine, doorAckLine, helloLine, PING_LINE, pubLineBuilder } from "./device-frames.ts";
import { takeLines, type Attempt, type Dev } from "./fleet-device.ts";

/** Topic of the pubs devices send. */
const PUB_TOPIC = "load";

/** Error codes after which the gateway keeps the connection open. */
export const NON_CLOSING_CODES: ReadonlySet<string> = new Set(["unknown_op", "not_ready", "rate_limited"]);

/** Devices speaking the line protocol. */
export class LineProtocol implements DeviceProtocol {
  private readonly pubLine: (ref: string) => string;

  constructor(
    private readonly ev: FleetEvents,
    private readonly write: DeviceWrite,
    private readonly secret: Uint8Array | null,
    payload: number,
  ) {
    this.pubLine = pubLineBuilder(PUB_TOPIC, payload);
  }

  open(d: Dev): void {
    if (d.hello === null) d.hello = helloLine(d.hw, this.secret ? mintToken(this.secret, d.hw) : null);
    this.write(d, d.hello);
  }

  data(d: Dev, a: Attempt, chunk: Buffer): void {
    for (const line of takeLines(d, chunk)) {
      if (d.attempt !== a) return;
      let f: Record<string, unknown>;
      try {
        f = JSON.parse(line);
      } catch {
        this.ev.bad(a, "bad_line_from_gateway");
        continue;
      }
      this.onFrame(d, a, f);
    }
  }

  private onFrame(d: Dev, a: Attempt, f: Record<string, unknown>): void {
    switch (f.op) {
      case "welcome":
        return this.ev.welcome(d, typeof f.keepalive === "number" && f.keepalive > 0 ? f.keepalive : undefined);
      case "ack":
        return this.ev.ack(d, String(f.ref));
      case "cmd":
        return this.ev.cmd(d, { id: String(f.id), corr: typeof f.corr === "string" && f.corr !== "" ? f.corr : null, body: f.body });
      case "pong":
        return;
      case "error": {
        const code = typeof f.code === "string" ? f.code : "error";
        const retryAfter = typeof f.retry_after === "number" ? f.retry_after : undefined;
        return this.ev.refused(d, a, code, retryAfter, typeof f.ref === "string" ? f.ref : undefined);
      }
      default:
        this.ev.bad(a, `unexpected_${String(f.op)}`);
    }
  }

  pub(d: Dev, ref: string): void {
    this.write(d, this.pubLine(ref));
  }

  ping(d: Dev): void {
    this.write(d, PING_LINE);
  }

  ackCmd(d: Dev, id: string): void {
    this.write(d, ackLine(id));
  }

  doorAck(d: Dev, id: string): void {
    this.write(d, doorAckLine(id));
  }

  bye(): void {}
}
