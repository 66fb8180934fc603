/**
 * Why the broker link failed, as a value from a closed set, with what the operator should do.
 * Every kind goes through the same capped, jittered backoff; only the log line differs.
 */

/** Why a connection attempt or a connection failed. */
export type LinkFailure =
  | "auth_refused"
  | "vhost_missing"
  | "permission_denied"
  | "unreachable"
  | "tls"
  | "closed_by_broker"
  | "topology_conflict"
  | "nacked"
  | "other";

/** What to check for each kind of failure. */
export const FAILURE_HINTS: Record<LinkFailure, string> = {
  auth_refused: "the broker refused the login: check the user and password in broker.url (or, with broker.login = external, the client certificate and that the broker maps it to a user)",
  vhost_missing: "the virtual host in broker.url does not exist on the broker: check the path of the URL (URLs of a list are separated by commas) or create the vhost",
  permission_denied: "the broker user lacks permissions on this vhost: grant configure/write/read on the owsla.* names (rabbitmqctl set_permissions)",
  unreachable: "the broker node does not answer: check the host and port in broker.url and that RabbitMQ is running",
  tls: "the TLS handshake failed: check broker.tls_ca (the CA of the broker's certificate), broker.tls_cert/tls_key and that the port speaks TLS",
  closed_by_broker: "the broker closed the connection (node stopping, connection closed by an operator, or a network cut)",
  topology_conflict: "a queue or exchange exists with other settings: see the upgrade path in docs/install.md",
  nacked: "the broker refused publishes (a quorum queue electing a leader); re-sending on a fresh connection",
  other: "see the error for details",
};

/** Classifies an error from amqp-client, the socket or TLS. */
export function classifyFailure(err: unknown): LinkFailure {
  const msg = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (/ACCESS_REFUSED - Login was refused|\(403\)/.test(msg) && /Login|authentication/i.test(msg)) return "auth_refused";
  if (/NOT_ALLOWED - vhost .* not found|\(530\)/.test(msg)) return "vhost_missing";
  if (/ACCESS_REFUSED/.test(msg)) return "permission_denied";
  if (/PRECONDITION_FAILED|inequivalent arg/.test(msg)) return "topology_conflict";
  if (/Message rejected|nacked a publish/.test(msg)) return "nacked";
  if (
    /CERT|certificate|SSL|TLS|handshake|self.signed|unable to (get|verify)/i.test(msg) ||
    (typeof code === "string" && /CERT|SSL|TLS/.test(code))
  ) {
    return "tls";
  }
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|timeout|getaddrinfo/i.test(msg)) return "unreachable";
  if (/CONNECTION_FORCED|Socket closed|Connection ended|ECONNRESET|EPIPE|connection closed|Heartbeat/i.test(msg)) return "closed_by_broker";
  return "other";
}
