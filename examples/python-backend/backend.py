#!/usr/bin/env python3
"""A minimal Owsla back-end in Python (pika), following the AMQP contract v1
(docs/amqp-contract.md). It shows the three things a back-end does:

  1. consume device messages from the `owsla.up` topic exchange;
  2. answer device RPC requests (topic `rpc.*`) the standard RabbitMQ way:
     default exchange, routing key = the request's `reply_to`, same `correlation_id`;
  3. send back-end-initiated commands to a device via the `owsla.down` direct exchange,
     routing key = the gateway id that holds the device, header `device_id`.

Configuration (environment):
  AMQP_URL      broker URL            (default amqp://guest:guest@127.0.0.1:5672)
  OWSLA_PREFIX  exchange/queue prefix (default "", must match the gateway's broker prefix)
  QUEUE         this back-end's queue (default "owsla.backend"; the prefix is NOT added)
  BINDING_KEY   binding on owsla.up   (default "#": every gateway, device and topic;
                e.g. "bldg-7.#" for one gateway or "*.*.door.#" for door topics)

Output: one line per event on stdout (flushed), the same lines as the Ruby example, e.g.
  ready queue=owsla.backend exchange=owsla.up binding=#
  received routing_key=bldg-7.9b2f….rpc.get_schedule device_id=9b2f… topic=rpc.get_schedule body={}

Run: python3 examples/python-backend/backend.py     (stop with Ctrl-C or SIGTERM)
"""

import json
import os
import re
import signal
import sys
import uuid

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
PREFIX = os.environ.get("OWSLA_PREFIX", "")
QUEUE = os.environ.get("QUEUE", "owsla.backend")
BINDING_KEY = os.environ.get("BINDING_KEY", "#")

UP_EXCHANGE = PREFIX + "owsla.up"
DOWN_EXCHANGE = PREFIX + "owsla.down"

PLAIN = re.compile(r'^[^\s"]*$')


def to_json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def log(event, **fields):
    """Prints one line: "event key=value ...". `body` is always JSON; other values are printed
    as they are when they are plain words, else as JSON."""
    parts = [event]
    for key, value in fields.items():
        plain = key != "body" and isinstance(value, str) and PLAIN.match(value)
        parts.append(f"{key}={value if plain else to_json(value)}")
    print(" ".join(parts), flush=True)


def text(value):
    """AMQP string headers may arrive as bytes: make them str."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# --- Connection and topology -------------------------------------------------------------------

params = pika.URLParameters(AMQP_URL)
params.client_properties = {"connection_name": "owsla-python-backend"}
connection = pika.BlockingConnection(params)

# Consumer channel: deliveries are handled one at a time in this thread.
channel = connection.channel()
channel.basic_qos(prefetch_count=20)  # at most 20 unacknowledged messages in flight

# Publisher channel with publisher confirms: basic_publish returns once the broker confirmed it
# (and raises when it refused), so a device message is acknowledged only after our reply or
# command is safe; a crash in between means redelivery, not loss.
pub = connection.channel()
pub.confirm_delivery()

# Declarations are idempotent and match what the gateway declares.
channel.exchange_declare(UP_EXCHANGE, exchange_type="topic", durable=True)
pub.exchange_declare(DOWN_EXCHANGE, exchange_type="direct", durable=True)
channel.queue_declare(QUEUE, durable=True)
channel.queue_bind(QUEUE, UP_EXCHANGE, routing_key=BINDING_KEY)


# --- Handling one device message -----------------------------------------------------------------

def handle(props, routing_key, body):
    headers = props.headers or {}
    device_id = text(headers.get("device_id"))
    gateway_id = text(headers.get("gateway_id"))
    # The `topic` header is the device's topic. The routing key is
    # `<gateway-id>.<device-uuid>.<topic>`; it is the fallback when the header is missing.
    topic = text(headers.get("topic")) or (routing_key.split(".", 2) + ["", "", ""])[2]
    payload = json.loads(body)  # the device's `body`, any JSON value

    log("received", routing_key=routing_key, device_id=device_id, topic=topic, body=payload)

    if topic == "$presence":
        # {"event":"connected"|"disconnected",...}: tells which gateway holds the device.
        # A real back-end would record gateway_id per device here; this one only logs it.
        return

    if topic.startswith("rpc."):
        if props.reply_to is None or props.correlation_id is None:
            log("rpc_unanswerable", device_id=device_id, topic=topic, reason="no reply_to/correlation_id")
        else:
            # The standard RPC reply. No custom header is needed: the gateway finds the device
            # from the correlation id, and the device gets a `cmd` with `corr` = its `ref`.
            pub.basic_publish(
                exchange="",
                routing_key=props.reply_to,
                body=to_json({"ok": True, "echo": payload}),
                properties=pika.BasicProperties(correlation_id=props.correlation_id, content_type="application/json"),
            )
            log("replied", device_id=device_id, topic=topic, reply_to=props.reply_to, correlation_id=props.correlation_id)

    if topic == "door.request_unlock":
        # A back-end-initiated command: to `owsla.down`, routing key = the gateway holding the
        # device, header device_id = the device, header topic = the command topic. The
        # message_id becomes the `cmd` id the device acknowledges; keep it stable on retries.
        command_id = str(uuid.uuid4())
        pub.basic_publish(
            exchange=DOWN_EXCHANGE,
            routing_key=gateway_id,
            body=to_json({"unlock": True}),
            properties=pika.BasicProperties(
                headers={"device_id": device_id, "topic": "door.unlock"},
                message_id=command_id,
                content_type="application/json",
                delivery_mode=2,
            ),
        )
        log("commanded", device_id=device_id, gateway_id=gateway_id, topic="door.unlock", message_id=command_id)


def on_message(ch, method, props, body):
    try:
        handle(props, method.routing_key, body)
        ch.basic_ack(method.delivery_tag)  # acknowledge only after handling
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        # Not JSON: it will never parse, so drop it (dead-letter it if the queue has a DLX).
        log("rejected", routing_key=method.routing_key, reason=str(e))
        ch.basic_reject(method.delivery_tag, requeue=False)
    except Exception as e:  # noqa: BLE001 - any other trouble: one redelivery, then give up
        log("failed", routing_key=method.routing_key, error=f"{type(e).__name__}: {e}", redelivered=method.redelivered)
        ch.basic_nack(method.delivery_tag, requeue=not method.redelivered)


consumer_tag = channel.basic_consume(QUEUE, on_message, auto_ack=False)
log("ready", queue=QUEUE, exchange=UP_EXCHANGE, binding=BINDING_KEY)

# --- Clean shutdown --------------------------------------------------------------------------------

# The signal handler only sets a flag; the loop below notices it within half a second and then
# shuts down in order (pika's blocking connection must not be used from a signal handler).
stopping = False


def request_stop(_signum, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, request_stop)
signal.signal(signal.SIGINT, request_stop)

while not stopping:
    connection.process_data_events(time_limit=0.5)

log("stopping")
channel.basic_cancel(consumer_tag)  # no new deliveries; unacknowledged ones go back to the queue on close
channel.close()
pub.close()
connection.close()
log("stopped")
sys.exit(0)
