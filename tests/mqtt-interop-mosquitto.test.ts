/**
 * MQTT interop with mosquitto_pub/mosquitto_sub (Debian mosquitto-clients), MQTT 3.1.1 and 5, against a
 * real gateway and RabbitMQ: see tests/helpers/mqtt-interop-suite.ts. Skipped with a warning
 * only when the client is missing.
 */
import { mosquittoClients } from "./helpers/mqtt-clients.ts";
import { describeMqttInterop } from "./helpers/mqtt-interop-suite.ts";

describeMqttInterop(mosquittoClients, "mosquitto");
