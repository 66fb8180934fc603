/**
 * A TCP proxy in front of the broker that a test can cut: `down()` closes every proxied
 * connection and refuses new ones; `up()` accepts again. Lets a test take the broker away
 * from one gateway without disturbing RabbitMQ for others.
 */
import type { Socket, TCPSocketListener } from "bun";

type Pair = { client: Socket<Side>; upstream: Socket<Side> | null; pending: Uint8Array[] };
type Side = { pair: Pair; queue: Uint8Array[] };

/** Writes `data` to `sock` in order behind `queue` (Bun's write does not buffer); keeps the rest. */
export function sendQueued(sock: { write(d: Uint8Array): number }, queue: Uint8Array[], data: Uint8Array): void {
  if (queue.length > 0) {
    queue.push(new Uint8Array(data));
    return;
  }
  const n = sock.write(data);
  if (n < data.length) queue.push(new Uint8Array(data.subarray(Math.max(0, n))));
}

/** Writes what `queue` holds to `sock` (from its drain handler). */
export function flushQueued(sock: { write(d: Uint8Array): number }, queue: Uint8Array[]): void {
  while (queue.length > 0) {
    const head = queue[0]!;
    const n = sock.write(head);
    if (n < head.length) {
      queue[0] = head.subarray(Math.max(0, n));
      return;
    }
    queue.shift();
  }
}

const send = (sock: Socket<Side>, data: Uint8Array) => sendQueued(sock, sock.data.queue, data);
const flush = (sock: Socket<Side>) => flushQueued(sock, sock.data.queue);

/** A cuttable TCP proxy on loopback. */
export class BrokerProxy {
  private server: TCPSocketListener<Side> | null = null;
  private pairs = new Set<Pair>();
  port = 0;
  /** Connections accepted so far (each is one connection attempt of a client). */
  accepted = 0;

  constructor(
    private readonly targetPort = 5672,
    private readonly targetHost = "127.0.0.1",
  ) {}

  /** Starts (or restarts) accepting on the same port. */
  up(): this {
    if (this.server) return this;
    const self = this;
    this.server = Bun.listen<Side>({
      hostname: "127.0.0.1",
      port: this.port,
      socket: {
        open(client) {
          self.accepted++;
          const pair: Pair = { client, upstream: null, pending: [] };
          client.data = { pair, queue: [] };
          self.pairs.add(pair);
          Bun.connect<Side>({
            hostname: self.targetHost,
            port: self.targetPort,
            socket: {
              open(up) {
                up.data = { pair, queue: [] };
                pair.upstream = up;
                for (const p of pair.pending) send(up, p);
                pair.pending = [];
              },
              data(_up, d) {
                send(pair.client, d);
              },
              drain(up) {
                flush(up);
              },
              close() {
                pair.client.end();
                self.pairs.delete(pair);
              },
              error() {},
            },
          }).catch(() => client.end());
        },
        data(client, d) {
          const pair = client.data.pair;
          if (pair.upstream) send(pair.upstream, d);
          else pair.pending.push(new Uint8Array(d));
        },
        drain(client) {
          flush(client);
        },
        close(client) {
          client.data.pair.upstream?.end();
          self.pairs.delete(client.data.pair);
        },
        error() {},
      },
    });
    this.port = this.server.port;
    return this;
  }

  /** Cuts every connection and stops accepting. */
  down(): void {
    this.server?.stop(true);
    this.server = null;
    for (const p of this.pairs) {
      p.client.terminate();
      p.upstream?.terminate();
    }
    this.pairs.clear();
  }

  /** The broker URL through this proxy. */
  url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }
}
