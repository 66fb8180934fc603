#!/usr/bin/python3
"""
A device written with Eclipse paho (Debian python3-paho-mqtt 1.6.1) for the interop tests
(tests/mqtt-interop-paho.test.ts). It speaks MQTT 3.1.1 or 5, prints one JSON object per event
on stdout and exits 0 when the session went as asked, 1 when the CONNACK refused it, 2 on a
timeout or error.

  paho-client.py pub --port P --id HW --password TOKEN --version 5 --topic a/b --qos 1 --payload '{"x":1}'
  paho-client.py sub --port P --id HW --password TOKEN --version 311 --filter 'cmd/#' --count 1 [--persistent]
  paho-client.py sub ... --count 0        (connect, subscribe, disconnect: leaves a persistent session)

Events: {"event":"connack","rc":N,"session_present":B}, {"event":"suback","codes":[...]},
{"event":"published","mid":N}, {"event":"message","topic":T,"payload":S,"qos":Q,"dup":B,
"user_properties":{...}}, {"event":"error","message":S}.
"""
import argparse
import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def emit(**event):
    print(json.dumps(event), flush=True)


def reason_value(rc):
    """paho gives v5 reason codes as ReasonCodes objects, 3.1.1 return codes as ints."""
    return rc.value if hasattr(rc, "value") else int(rc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["pub", "sub"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--username", default="device")
    ap.add_argument("--password", default="")
    ap.add_argument("--version", choices=["5", "311"], default="5")
    ap.add_argument("--topic", default="telemetry/temp")
    ap.add_argument("--qos", type=int, default=1)
    ap.add_argument("--payload", default="{}")
    ap.add_argument("--filter", default="cmd/#")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--persistent", action="store_true", help="clean session 0 (3.1.1) / clean start 0 + session expiry 3600 (5)")
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()

    v5 = a.version == "5"
    if v5:
        client = mqtt.Client(client_id=a.id, protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(client_id=a.id, clean_session=not a.persistent, protocol=mqtt.MQTTv311)
    client.username_pw_set(a.username, a.password)

    done = threading.Event()
    state = {"exit": 2, "messages": 0}

    def finish(code):
        state["exit"] = code
        done.set()

    def on_connect(c, userdata, flags, rc, properties=None):
        code = reason_value(rc)
        emit(event="connack", rc=code, session_present=bool(flags.get("session present")))
        if code != 0:
            finish(1)
            return
        if a.mode == "pub":
            info = c.publish(a.topic, a.payload, qos=a.qos)
            if a.qos == 0:
                emit(event="published", mid=info.mid)
                c.disconnect()
                finish(0)
        else:
            c.subscribe(a.filter, qos=1)

    def on_publish(c, userdata, mid):
        if a.mode == "pub" and a.qos > 0:
            emit(event="published", mid=mid)
            c.disconnect()
            finish(0)

    def on_subscribe(c, userdata, mid, granted, properties=None):
        emit(event="suback", codes=[reason_value(g) for g in granted])
        if a.count == 0:
            c.disconnect()
            finish(0)

    def on_message(c, userdata, msg):
        props = {}
        if v5 and getattr(msg, "properties", None) is not None:
            for k, val in getattr(msg.properties, "UserProperty", []) or []:
                props[k] = val
        emit(event="message", topic=msg.topic, payload=msg.payload.decode("utf-8", "replace"), qos=msg.qos, dup=bool(msg.dup), user_properties=props)
        state["messages"] += 1
        if state["messages"] >= a.count:
            # paho acks a QoS 1 message after on_message returns; give the loop a moment to send
            # the PUBACK before the DISCONNECT (both go out in order on the same socket).
            threading.Timer(0.3, lambda: (c.disconnect(), finish(0))).start()

    def on_disconnect(c, userdata, rc, properties=None):
        if not done.is_set():
            emit(event="disconnected", rc=reason_value(rc))
            finish(2)

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect

    try:
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600 if a.persistent else 0
            client.connect(a.host, a.port, keepalive=30, clean_start=not a.persistent, properties=props)
        else:
            client.connect(a.host, a.port, keepalive=30)
    except Exception as e:  # refused TCP connect, DNS, ...
        emit(event="error", message=str(e))
        return 2
    client.loop_start()
    if not done.wait(a.timeout):
        emit(event="error", message="timed out after %ss" % a.timeout)
    client.loop_stop()
    return state["exit"]


if __name__ == "__main__":
    sys.exit(main())
