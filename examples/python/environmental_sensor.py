# The original NoMQ README's usage example (the JSON environmental sensor), unchanged except
# for the lines marked "Linux:", which replace its WiFi and `machine` lines: on Linux the host's
# network is up already and the device id comes from the host's MAC address.
# `uasyncio` and `ubinascii` are MicroPython's names: uasyncio.py and ubinascii.py next to this
# file map them to asyncio and binascii, as MicroPython's own Unix port does.
# Run it where its nomq_config.json is (python/tests/test_seed_example.py does, on loopback).
import uasyncio as asyncio
import uuid  # Linux: instead of `import network`
import json
import time
import ubinascii
from nomq import NoMQ

# WiFi credentials
SSID = "your_wifi_ssid"
PASSWORD = "your_wifi_password"


def unique_id():  # Linux: instead of `from machine import unique_id`
    return uuid.getnode().to_bytes(6, "big")


async def connect_wifi():  # Linux: the host's network, no WiFi to join
    print("WiFi connected:", "host network")


async def main():
    try:
        await connect_wifi()
        nomq = NoMQ("nomq_config.json", log_level="INFO", timeout=5)
        # Generate authentication signature
        signature = nomq.gen_signature("auth")
        # Subscribe to a channel
        print("Subscribing to test/channel...")
        await nomq.subscribe("test/channel", priority=0, signature=signature, message="auth")
        # Publish a JSON message
        message_json = {
            "device_id": ubinascii.hexlify(unique_id()).decode(),
            "timestamp": int(time.time()),
            "type": "environmental_sensor",
            "data": {
                "temperature": {"value": 25.3, "unit": "Celsius"},
                "humidity": {"value": 60.5, "unit": "Percent"},
                "battery": {"level": 85, "unit": "Percent"}
            },
            "location": {"latitude": 35.6895, "longitude": 51.3890}
        }
        message = json.dumps(message_json)
        await nomq.publish(
            "test/channel",
            message,
            qos=2,
            retain=True,
            ip="255.255.255.255",
            port=8888,
            signature=signature,
            auth_message="auth"
        )
        # Listen for messages
        print("Listening for messages...")
        listener = await nomq.listen()
        while True:
            msg = listener.mssg()
            if msg:
                try:
                    parsed_msg = json.loads(msg["message"])
                    print(f"Received JSON: {msg['channel']} -> {parsed_msg}")
                except ValueError:
                    print(f"Received non-JSON: {msg['channel']} -> {msg['message']}")
            await asyncio.sleep(0.1)
    except Exception as e:
        print(f"Error: {e}")
        raise

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("Terminated by user")
except Exception as e:
    print(f"Unexpected error: {e}")
