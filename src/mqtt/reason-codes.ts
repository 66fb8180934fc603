/**
 * The MQTT reason codes the gateway sends, and how a refusal is said in each version:
 * MQTT 5 has a reason code for each; MQTT 3.1.1 has CONNACK return codes 0-5 and SUBACK 0x80
 * only, so a refused PUBLISH closes a 3.1.1 connection (logged with the reason).
 */

/** MQTT 5 reason codes used by the gateway (names as in the specification). */
export const RC = {
  success: 0x00,
  noMatchingSubscribers: 0x10,
  unspecifiedError: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  implementationSpecificError: 0x83,
  unsupportedProtocolVersion: 0x84,
  clientIdentifierNotValid: 0x85,
  badUserNameOrPassword: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  serverBusy: 0x89,
  banned: 0x8a,
  serverShuttingDown: 0x8b,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  packetIdentifierNotFound: 0x92,
  receiveMaximumExceeded: 0x93,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  administrativeAction: 0x98,
  payloadFormatInvalid: 0x99,
  retainNotSupported: 0x9a,
  qosNotSupported: 0x9b,
  sharedSubscriptionsNotSupported: 0x9e,
  connectionRateExceeded: 0x9f,
  subscriptionIdentifiersNotSupported: 0xa1,
  wildcardSubscriptionsNotSupported: 0xa2,
} as const;

/** MQTT 3.1.1 CONNACK return codes. */
export const RC311 = {
  accepted: 0,
  unacceptableProtocolVersion: 1,
  identifierRejected: 2,
  serverUnavailable: 3,
  badUserNameOrPassword: 4,
  notAuthorized: 5,
} as const;

/** The CONNACK code of an MQTT 5 refusal in MQTT 3.1.1 terms. */
export function connackCode311(rc5: number): number {
  switch (rc5) {
    case RC.success:
      return RC311.accepted;
    case RC.clientIdentifierNotValid:
      return RC311.identifierRejected;
    case RC.badUserNameOrPassword:
      return RC311.badUserNameOrPassword;
    case RC.notAuthorized:
    case RC.banned:
      return RC311.notAuthorized;
    case RC.unsupportedProtocolVersion:
      return RC311.unacceptableProtocolVersion;
    default:
      return RC311.serverUnavailable;
  }
}

/** The MQTT 5 DISCONNECT reason code for a gateway close reason. */
export function disconnectCode(reason: string): number {
  switch (reason) {
    case "taken_over":
      return RC.sessionTakenOver;
    case "keepalive_timeout":
      return RC.keepAliveTimeout;
    case "shutting_down":
      return RC.serverShuttingDown;
    case "kicked":
      return RC.administrativeAction;
    case "revoked":
    case "unauthorized":
      return RC.notAuthorized;
    case "frame_too_large":
      return RC.packetTooLarge;
    case "bad_frame":
      return RC.protocolError;
    case "server_busy":
    case "slow_consumer":
      return RC.serverBusy;
    default:
      return RC.unspecifiedError;
  }
}
