/**
 * The bare Bun server of the baselines: listens on `port` (reusePort, so several processes can
 * share it) and answers every line with a welcome-like line, keeping nothing per connection
 * but a line buffer.
 */
export function serveBareWelcomes(port: number): void {
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
          s.data.buf = s.data.buf.slice(i + 1);
          s.write(reply);
        }
      },
    },
  });
}
