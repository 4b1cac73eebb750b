"""copper's runner loop (MicroWebStacks/copper, runner/service.py), for the
`run` bench's reference: the same messages in the same order, on paho-mqtt as
copper's services use it (QoS 0, copper's default).

copper's own runner.py cannot run unchanged (it reads /app/workflow.yaml, dials
host.docker.internal, and publishes before it connects), so this is its loop,
written anew. The workflow is a JSON list of entries, as copper's YAML reads.

    python3 runner.py PORT WORKFLOW.json
"""
import json
import queue
import sys

import paho.mqtt.client as mqtt

port, path = int(sys.argv[1]), sys.argv[2]
with open(path) as f:
    workflow = json.load(f)

finishes = queue.Queue()
connected = queue.Queue()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="copper-runner")
client.will_set("runner/status", "disconnected", qos=2, retain=True)
client.on_connect = lambda c, u, flags, rc, props: connected.put(rc)
client.on_message = lambda c, u, message: finishes.put(message)
client.connect("127.0.0.1", port, 60)
client.loop_start()
connected.get(timeout=10)
client.publish("runner/status", "connected")
subscribed = set()
for entry in workflow:
    finish_topic = entry["action"] + "/finish"
    client.publish("runner/start", json.dumps(entry))
    if finish_topic not in subscribed:
        # copper subscribes before every request; asking again changes nothing.
        client.subscribe(finish_topic)
        subscribed.add(finish_topic)
    client.publish(entry["action"], json.dumps(entry))
    finishes.get(timeout=60)
    client.publish("runner/finish", json.dumps(entry))
client.disconnect()
client.loop_stop()
