#!/usr/bin/env ruby
# frozen_string_literal: true
#
# A minimal Owsla back-end in Ruby (bunny), following the AMQP contract v1
# (docs/amqp-contract.md). It shows the three things a back-end does:
#
#   1. consume device messages from the `owsla.up` topic exchange;
#   2. answer device RPC requests (topic `rpc.*`) the standard RabbitMQ way:
#      default exchange, routing key = the request's `reply_to`, same `correlation_id`;
#   3. send back-end-initiated commands to a device via the `owsla.down` direct exchange,
#      routing key = the gateway id that holds the device, header `device_id`.
#
# Configuration (environment):
#   AMQP_URL      broker URL            (default amqp://guest:guest@127.0.0.1:5672)
#   OWSLA_PREFIX  exchange/queue prefix (default "", must match the gateway's broker prefix)
#   QUEUE         this back-end's queue (default "owsla.backend"; the prefix is NOT added)
#   BINDING_KEY   binding on owsla.up   (default "#": every gateway, device and topic;
#                 e.g. "bldg-7.#" for one gateway or "*.*.door.#" for door topics)
#
# Output: one line per event on stdout (flushed), e.g.
#   ready queue=owsla.backend exchange=owsla.up binding=#
#   received routing_key=bldg-7.9b2f….rpc.get_schedule device_id=9b2f… topic=rpc.get_schedule body={}
#
# Run: ruby examples/ruby-backend/backend.rb     (stop with Ctrl-C or SIGTERM)

require "bunny"
require "json"
require "securerandom"

$stdout.sync = true # every log line reaches a pipe immediately

AMQP_URL = ENV.fetch("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
PREFIX = ENV.fetch("OWSLA_PREFIX", "")
QUEUE = ENV.fetch("QUEUE", "owsla.backend")
BINDING_KEY = ENV.fetch("BINDING_KEY", "#")

UP_EXCHANGE = "#{PREFIX}owsla.up"
DOWN_EXCHANGE = "#{PREFIX}owsla.down"

# Prints one log line: "event key=value ...". `body` is always JSON; other values are printed
# as is when they are plain words, else as JSON.
def log(event, **fields)
  parts = fields.map do |k, v|
    plain = k != :body && v.is_a?(String) && v.match?(/\A[^\s"]*\z/)
    text = plain ? v : JSON.generate(v)
    "#{k}=#{text}"
  end
  puts([event, *parts].join(" "))
end

# AMQP string headers arrive as binary strings; make them printable UTF-8.
def utf8(value)
  value.is_a?(String) ? value.dup.force_encoding(Encoding::UTF_8) : value
end

# --- Connection and topology ---------------------------------------------------------------

conn = Bunny.new(AMQP_URL, connection_name: "owsla-ruby-backend")
conn.start

# Consumer channel: deliveries are handled one at a time on bunny's work-pool thread.
ch = conn.create_channel
ch.prefetch(20) # at most 20 unacknowledged messages in flight

# Publisher channel with publisher confirms: a device message is acknowledged only after the
# broker has confirmed our reply/command, so a crash in between means redelivery, not loss.
# Only the consumer thread publishes, so this channel is never used concurrently.
pub = conn.create_channel
pub.confirm_select

# Declarations are idempotent and match what the gateway declares.
up = ch.topic(UP_EXCHANGE, durable: true)
down = pub.direct(DOWN_EXCHANGE, durable: true)
queue = ch.queue(QUEUE, durable: true)
queue.bind(up, routing_key: BINDING_KEY)

# --- Handling one device message --------------------------------------------------------------

# Publishes and waits for the broker's confirm; raises when the broker refused it.
def publish_confirmed(channel, exchange, body, **props)
  exchange.publish(body, **props)
  raise "broker did not confirm the publish to #{exchange.name.inspect}" unless channel.wait_for_confirms
end

handle = lambda do |props, routing_key, body|
  headers = props.headers || {}
  device_id = utf8(headers["device_id"])
  gateway_id = utf8(headers["gateway_id"])
  # The `topic` header is the device's topic. The routing key is
  # `<gateway-id>.<device-uuid>.<topic>`; it is the fallback when the header is missing.
  topic = utf8(headers["topic"]) || routing_key.split(".", 3)[2].to_s
  payload = JSON.parse(body) # the device's `body`, any JSON value

  log("received", routing_key: routing_key, device_id: device_id, topic: topic, body: payload)

  if topic == "$presence"
    # {"event":"connected"|"disconnected",...}: tells which gateway holds the device.
    # A real back-end would record gateway_id per device here; this one only logs it.
    return
  end

  if topic.start_with?("rpc.")
    if props.reply_to.nil? || props.correlation_id.nil?
      log("rpc_unanswerable", device_id: device_id, topic: topic, reason: "no reply_to/correlation_id")
    else
      # The standard RPC reply. No custom header is needed: the gateway finds the device
      # from the correlation id, and the device gets a `cmd` with `corr` = its `ref`.
      reply = JSON.generate({ ok: true, echo: payload })
      publish_confirmed(pub, pub.default_exchange, reply,
                        routing_key: props.reply_to,
                        correlation_id: props.correlation_id,
                        content_type: "application/json")
      log("replied", device_id: device_id, topic: topic, reply_to: props.reply_to, correlation_id: props.correlation_id)
    end
  end

  if topic == "door.request_unlock"
    # A back-end-initiated command: to `owsla.down`, routing key = the gateway holding the
    # device, header device_id = the device, header topic = the command topic. The
    # message_id becomes the `cmd` id the device acknowledges; keep it stable on retries.
    command_id = SecureRandom.uuid
    publish_confirmed(pub, down, JSON.generate({ unlock: true }),
                      routing_key: gateway_id,
                      headers: { "device_id" => device_id, "topic" => "door.unlock" },
                      message_id: command_id,
                      content_type: "application/json",
                      persistent: true)
    log("commanded", device_id: device_id, gateway_id: gateway_id, topic: "door.unlock", message_id: command_id)
  end
end

consumer = queue.subscribe(manual_ack: true, block: false) do |delivery, props, body|
  begin
    handle.call(props, delivery.routing_key, body)
    ch.ack(delivery.delivery_tag) # acknowledge only after handling
  rescue JSON::ParserError => e
    # Not JSON: it will never parse, so drop it (dead-letter it if the queue has a DLX).
    log("rejected", routing_key: delivery.routing_key, reason: e.message.lines.first.to_s.strip)
    ch.reject(delivery.delivery_tag, false)
  rescue StandardError => e
    # Transient trouble (e.g. a publish not confirmed): try once more via redelivery,
    # then give up on it so one bad message cannot loop forever.
    log("failed", routing_key: delivery.routing_key, error: "#{e.class}: #{e.message}", redelivered: delivery.redelivered?)
    ch.nack(delivery.delivery_tag, false, !delivery.redelivered?)
  end
end

log("ready", queue: QUEUE, exchange: UP_EXCHANGE, binding: BINDING_KEY)

# --- Clean shutdown ---------------------------------------------------------------------------

# Signal handlers may not take locks (bunny's close does), so the handler only wakes the main
# thread through a pipe; the main thread then shuts down in order.
wake_r, wake_w = IO.pipe
%w[TERM INT].each do |sig|
  Signal.trap(sig) do
    wake_w.write_nonblock(sig)
  rescue IO::WaitWritable, IOError
    nil
  end
end
wake_r.read(1)

log("stopping")
consumer.cancel # no new deliveries; unacknowledged ones go back to the queue on close
ch.close
pub.close
conn.close
log("stopped")
