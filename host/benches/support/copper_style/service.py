"""A copper-style service (as copper's fetcher/mqtt_client.py is made), for the
`run` bench's reference: `testkit/echo` answered on paho-mqtt, QoS 0.

On connect it subscribes its request topic and says `up`; on a request it
publishes `<topic>/start` with the request, and from a thread of its own (as
copper's fetcher does) `<topic>/finish` with a JSON list of the entry.

    python3 service.py PORT
"""
import json
import sys
import threading

import paho.mqtt.client as mqtt

TOPIC = "testkit/echo"


def on_connect(client, userdata, flags, rc, props):
    client.subscribe(TOPIC)
    client.publish("testkit/status", "up")


def answer(client, entry):
    client.publish(TOPIC + "/finish", json.dumps([entry]))


def on_message(client, userdata, message):
    entry = json.loads(message.payload.decode())
    client.publish(TOPIC + "/start", json.dumps(entry))
    threading.Thread(target=answer, args=(client, entry)).start()


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="copper-style-testkit")
client.on_connect = on_connect
client.on_message = on_message
client.connect("127.0.0.1", int(sys.argv[1]), 60)
client.loop_forever()
