/** Why a device connection closed: a closed set, recorded in the device table and metrics. */
export const CLOSE_REASONS = [
  "bye",
  "peer_closed",
  "hello_timeout",
  "keepalive_timeout",
  "bad_frame",
  "frame_too_large",
  "unauthorized",
  "taken_over",
  "slow_consumer",
  "server_busy",
  "shutting_down",
  "kicked",
  "revoked",
  "socket_error",
] as const;

/** One of {@link CLOSE_REASONS}. */
export type CloseReason = (typeof CLOSE_REASONS)[number];
