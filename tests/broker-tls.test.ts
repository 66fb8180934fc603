/**
 * TLS to the broker: a RabbitMQ node of our own with a TLS listener and the
 * rabbitmq_auth_mechanism_ssl plugin, certificates made by openssl here. The gateway verifies
 * the broker with broker.tls_ca and logs in with its client certificate (SASL EXTERNAL, no
 * password anywhere); a broker certificate from another CA is refused and reported as a TLS
 * failure.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { PrivateBroker, privateBrokerAvailable } from "./helpers/private-broker.ts";
import { freePort, removeDir, startGateway, type GatewayProcess } from "./helpers/gateway.ts";
import { makeCa, type CertSet } from "./helpers/certs.ts";

const available = privateBrokerAvailable() && Bun.which("openssl") !== null;
const GW_USER = "owsla-gw-tls";
let broker: PrivateBroker;
let certs: CertSet;
let client: { cert: string; key: string };
let tlsPort = 0;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  if (!available) return;
  certs = makeCa();
  const server = certs.issue("server", "localhost", "DNS:localhost,IP:127.0.0.1");
  client = certs.issue("client", GW_USER);
  tlsPort = freePort();
  broker = await PrivateBroker.start({
    tag: "tls",
    prefix: "tls.",
    plugins: ["rabbitmq_auth_mechanism_ssl"],
    users: [GW_USER],
    config: [
      `listeners.ssl.default = ${tlsPort}`,
      `ssl_options.cacertfile = ${certs.ca}`,
      `ssl_options.certfile = ${server.cert}`,
      `ssl_options.keyfile = ${server.key}`,
      "ssl_options.verify = verify_peer",
      "ssl_options.fail_if_no_peer_cert = false",
      "auth_mechanisms.1 = PLAIN",
      "auth_mechanisms.2 = EXTERNAL",
      "ssl_cert_login_from = common_name",
    ],
  });
}, 120_000);

afterAll(async () => {
  for (const g of gateways) {
    await g.stop();
    removeDir(g.dir);
  }
  await broker?.stop();
  if (certs) removeDir(certs.dir);
});

async function gateway(id: string, args: string[], waitBroker = true): Promise<GatewayProcess> {
  const g = await startGateway({ gatewayId: id, prefix: broker.prefix, waitBroker, args: ["--workers", "1", ...args] });
  gateways.push(g);
  return g;
}

test.skipIf(!available)("the gateway verifies the broker with tls_ca and logs in with its client certificate (EXTERNAL)", async () => {
  const g = await gateway("tls-ext", [
    "--broker", `amqps://127.0.0.1:${tlsPort}`,
    "--broker-tls-ca", certs.ca,
    "--broker-tls-cert", client.cert,
    "--broker-tls-key", client.key,
    "--broker-login", "external",
  ]);
  // The broker sees the certificate's CN as the user, logged in by EXTERNAL over TLS.
  const conns = await broker.ctlOk(["list_connections", "user", "auth_mechanism", "ssl", "--no-table-headers", "--quiet"]);
  const ours = conns.split("\n").filter((l) => l.includes(GW_USER));
  expect(ours.length).toBe(4); // the worker's publish and consume connections, the supervisor's site-events pair
  for (const l of ours) expect(l.split(/\s+/)).toEqual([GW_USER, "EXTERNAL", "true"]);

  // A device message travels over that link to a back-end on the same node.
  const backend = new AMQPClient(broker.url());
  await backend.connect();
  const ch = await backend.channel();
  // Presence events arrive on the same queue; wait for the device's message.
  const got = new Promise<string>((resolve) =>
    void ch.basicConsume(broker.backendQueue, { noAck: true }, (m) => {
      if (m.bodyString()?.includes('"over"')) resolve(m.bodyString()!);
    }),
  );
  const { dev } = await g.device("tls-sensor");
  dev.send({ op: "pub", topic: "t", body: { over: "tls" }, ref: "r1" });
  expect((await dev.op("ack")).ref).toBe("r1");
  expect(JSON.parse(await got)).toEqual({ over: "tls" });
  dev.close();
  await backend.close();
}, 60_000);

test.skipIf(!available)("plain login over TLS with only the CA configured", async () => {
  await gateway("tls-plain", ["--broker", `amqps://guest:guest@localhost:${tlsPort}`, "--broker-tls-ca", certs.ca]);
  const conns = await broker.ctlOk(["list_connections", "user", "auth_mechanism", "ssl", "--no-table-headers", "--quiet"]);
  expect(conns.split("\n").some((l) => l.split(/\s+/).join(" ") === "guest PLAIN true")).toBe(true);
}, 60_000);

test.skipIf(!available)("a broker certificate from another CA is refused and reported as a TLS failure, never as up", async () => {
  const other = makeCa("Some Other CA");
  try {
    const g = await gateway("tls-bad-ca", ["--broker", `amqps://guest:guest@127.0.0.1:${tlsPort}`, "--broker-tls-ca", other.ca], false);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !g.json().some((l) => l.cause === "tls")) await Bun.sleep(100);
    const lines = g.json().filter((l) => l.cause === "tls");
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]!.hint).toContain("broker.tls_ca");
    expect(g.logs.some((l) => l.includes("Broker link up"))).toBe(false);
  } finally {
    removeDir(other.dir);
  }
}, 60_000);
