/**
 * The bare Bun server of the baselines: listens on `port` (reusePort, so several processes can
 * share it) and answers every line, keeping nothing per connection but a line buffer: a `pub`
 * with a `ref` gets its `ack` (the line is parsed, as any real server would), `ping` gets
 * `pong`, anything else a welcome-like line. It is the floor of a device server's cost: socket
 * I/O and JSON, no broker, no state.
 */
export function serveBareWelcomes(port: number): void {
  const pong = new TextEncoder().encode('{"op":"pong"}\n');
  const reply = new TextEncoder().encode(JSON.stringify({ op: "welcome", id: "00000000-0000-0000-0000-000000000000", conn: "x", gateway: "baseline", keepalive: 60 }) + "\n");
  Bun.listen<{ buf: string }>({
    hostname: "0.0.0.0",
    port,
    ...({ reusePort: true } as object),
    socket: {
      open(s) {
        s.data = { buf: "" };
      },
      data(s, chunk) {
        s.data.buf += chunk.toString("utf8");
        let i: number;
        while ((i = s.data.buf.indexOf("\n")) >= 0) {
          const line = s.data.buf.slice(0, i);
          s.data.buf = s.data.buf.slice(i + 1);
          if (line.includes('"op":"pub"') || line.includes('"op":"ping"')) {
            let f: { op?: string; ref?: string } = {};
            try {
              f = JSON.parse(line) as typeof f;
            } catch {}
            if (f.op === "ping") s.write(pong);
            else if (typeof f.ref === "string") s.write(`{"op":"ack","ref":${JSON.stringify(f.ref)}}\n`);
            continue;
          }
          s.write(reply);
        }
      },
    },
  });
}
