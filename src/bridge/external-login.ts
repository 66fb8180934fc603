/**
 * SASL EXTERNAL login for amqp-client, which only speaks PLAIN (4.1.1 writes "PLAIN" and
 * `\0user\0password` into connection.start-ok unconditionally).
 *
 * With EXTERNAL the broker takes the identity from the client certificate of the TLS session
 * (RabbitMQ's rabbitmq_auth_mechanism_ssl plugin; by default the certificate's subject DN or
 * CN names the user), so no password exists anywhere. We rewrite the one start-ok frame the
 * client sends: same client properties, mechanism "EXTERNAL", empty response, same locale.
 * Everything else on the connection passes through untouched.
 */

/** AMQP method frame type, connection class and its start-ok method. */
const FRAME_METHOD = 1;
const CLASS_CONNECTION = 10;
const METHOD_START_OK = 11;
const FRAME_END = 0xce;

/**
 * The start-ok frame `frame` with its mechanism set to EXTERNAL and an empty response, or
 * null when `frame` is not a start-ok frame (or not one we can parse: then it is left alone
 * and the broker refuses the PLAIN login, which the link reports as "auth refused").
 */
export function rewriteStartOk(frame: Uint8Array): Uint8Array | null {
  if (frame.length < 12 || frame[0] !== FRAME_METHOD) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (view.getUint16(1) !== 0 || view.getUint16(7) !== CLASS_CONNECTION || view.getUint16(9) !== METHOD_START_OK) return null;
  const size = view.getUint32(3);
  if (7 + size + 1 !== frame.length || frame[frame.length - 1] !== FRAME_END) return null;
  let i = 11;
  const tableLen = view.getUint32(i);
  i += 4 + tableLen;
  const table = frame.subarray(11, i);
  const mechLen = frame[i]!;
  i += 1 + mechLen;
  const responseLen = view.getUint32(i);
  i += 4 + responseLen;
  const localeLen = frame[i]!;
  const locale = frame.subarray(i, i + 1 + localeLen);
  if (i + 1 + localeLen !== frame.length - 1) return null;

  const mech = new TextEncoder().encode("EXTERNAL");
  const payloadLen = 4 + table.length + 1 + mech.length + 4 + locale.length;
  const out = new Uint8Array(7 + payloadLen + 1);
  const w = new DataView(out.buffer);
  out[0] = FRAME_METHOD;
  w.setUint16(1, 0);
  w.setUint32(3, payloadLen);
  w.setUint16(7, CLASS_CONNECTION);
  w.setUint16(9, METHOD_START_OK);
  let o = 11;
  out.set(table, o);
  o += table.length;
  out[o++] = mech.length;
  out.set(mech, o);
  o += mech.length;
  w.setUint32(o, 0); // empty response
  o += 4;
  out.set(locale, o);
  o += locale.length;
  out[o] = FRAME_END;
  return out;
}

/** Something with amqp-client's `send(bytes)`. */
interface Sender {
  send(bytes: Uint8Array): Promise<void>;
}

/** Makes `client` log in with SASL EXTERNAL (its client certificate) instead of PLAIN. */
export function useExternalLogin(client: Sender): void {
  const send = client.send.bind(client);
  let done = false;
  client.send = (bytes: Uint8Array) => {
    if (!done) {
      const rewritten = rewriteStartOk(bytes);
      if (rewritten) {
        done = true;
        return send(rewritten);
      }
    }
    return send(bytes);
  };
}
