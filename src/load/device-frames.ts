/**
 * The lines a simulated device sends, pre-built as strings: the hot path only concatenates.
 * Hardware ids are validated to be printable ASCII without quotes, so no escaping is needed.
 */

/** The `hello` line of a device, with a token or without (auth none). */
export function helloLine(hardwareId: string, token: string | null): string {
  return token === null
    ? `{"op":"hello","v":1,"device":"${hardwareId}"}\n`
    : `{"op":"hello","v":1,"device":"${hardwareId}","token":"${token}"}\n`;
}

/** Builds `pub` lines with a fixed filler body of `payload` bytes. */
export function pubLineBuilder(topic: string, payload: number): (ref: string) => string {
  const head = `{"op":"pub","topic":"${topic}","body":{"p":"${"x".repeat(payload)}"},"ref":"`;
  return (ref) => head + ref + '"}\n';
}

/** The `door.ack` pub answering back-end command `cmdId`. */
export function doorAckLine(cmdId: string): string {
  return `{"op":"pub","topic":"door.ack","body":{},"ref":${JSON.stringify(cmdId)}}\n`;
}

/** The `ack` of command `cmdId`. */
export function ackLine(cmdId: string): string {
  return `{"op":"ack","ref":${JSON.stringify(cmdId)}}\n`;
}

/** The `ping` line. */
export const PING_LINE = '{"op":"ping"}\n';

/** Whether `s` can be pasted into a JSON string as is (printable ASCII, no quote or backslash). */
export function isPlainAscii(s: string): boolean {
  return /^[\x21\x23-\x5b\x5d-\x7e]*$/.test(s);
}
