#!/usr/bin/env python3
"""Python rows of scripts/bench.sh: messages/s from a Python publisher to a Python subscriber
(two processes, loopback), through the `nomq` package (asyncio API) and, for comparison,
through paho-mqtt and a local Mosquitto broker. Prints one JSON line per run, in nomq_perf's
format, so bench/report.py sets them against the C++ Node's rows (nomq_tput) of the same run.

    PYTHONPATH=build-bench/python python3 bench/python_bench.py nomq-tput --qos 1 --size 64 --seconds 1
    python3 bench/python_bench.py paho-tput --port 1883 --qos 1 --size 64 --seconds 1

As in nomq_perf: the subscriber is a child process that counts deliveries and reports the
count and the times of the first and last; the rate is count / (last - first). The publisher
sends to the subscriber's unicast address (NoMQ) or through the broker (MQTT), as fast as it
can for --seconds; QoS 1 keeps the library's window full (NoMQ: 50 pending, the
too_many_pending error says when to wait; paho: max_inflight 50, as the broker's config, and
at most 1000 messages queued behind them: a full queue returns MQTT_ERR_QUEUE_SIZE and the
publisher retries. paho's queue used to be unbounded, and once more than 65,535 QoS 1 messages
were queued a message id came round again: paho refuses that publish with the same
MQTT_ERR_QUEUE_SIZE, and `wait_for_publish` on it raised, which failed the row about one run in
five.)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

CHANNEL = "bench/throughput"


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


# ------------------------------------------------------------------ NoMQ (the nomq package)
def write_config(path: str) -> None:
    import socket
    import nomq
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nomq.create_config(nomq.generate_config(group="127.255.255.255", port=port, ip="127.0.0.1"),
                       path)


async def nomq_subscriber(config: str) -> None:
    import nomq
    node = nomq.NoMQ(config, log_level="OFF")
    await node.subscribe(CHANNEL)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    count, first, last = 0, 0, 0
    listener = node.messages()
    print(json.dumps({"port": node.local_address[1]}), flush=True)

    async def consume():
        nonlocal count, first, last
        async for _ in listener:
            last = time.monotonic_ns()
            if count == 0:
                first = last
            count += 1

    task = asyncio.ensure_future(consume())
    await stop.wait()
    stats = node.stats()
    node.close()
    await task
    print(json.dumps({"count": count, "first": first, "last": last,
                      "drops": stats["dropped_total"]}), flush=True)


async def nomq_publisher(args) -> None:
    import nomq
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "nomq.json")
        write_config(config)
        child = subprocess.Popen([sys.executable, __file__, "nomq-sub", "--config", config],
                                 stdout=subprocess.PIPE, text=True)
        try:
            port = json.loads(child.stdout.readline())["port"]
            node = nomq.NoMQ(config, log_level="OFF")
            payload = "x" * args.size
            inflight = collections.deque()
            sent = acked = refused = 0
            loop = asyncio.get_running_loop()
            start = time.monotonic()
            end = start + args.seconds
            while time.monotonic() < end:
                for _ in range(64):
                    try:
                        p = node.publish_nowait(CHANNEL, payload, qos=args.qos, ip="127.0.0.1",
                                                port=port)
                    except nomq.LimitError:
                        refused += 1
                        if inflight:  # the window is full: wait for the oldest report
                            d = await inflight.popleft()
                            acked += d.ok
                        continue
                    sent += 1
                    if args.qos:
                        inflight.append(p)
                while inflight and inflight[0].done():
                    acked += inflight.popleft().result().ok
                await asyncio.sleep(0)  # let the loop turn: replies, timers
            send_end = time.monotonic()
            while inflight and time.monotonic() < send_end + 5:
                try:
                    acked += (await inflight.popleft().report(5)).ok
                except nomq.DeliveryTimeout:
                    break
            drained = time.monotonic()
            await asyncio.sleep(0.1)
            child.send_signal(signal.SIGTERM)
            r = json.loads(child.stdout.readline())
            node.close()
        finally:
            child.wait(10)
    span = (r["last"] - r["first"]) / 1e9
    row = {"bench": "py_tput", "wire": "v2", "qos": args.qos, "size": args.size,
           "sent_per_s": sent / (send_end - start), "msgs_per_s": r["count"] / span if span > 0 else 0,
           "delivered": r["count"], "sent": sent,
           "loss": 1 - r["count"] / sent if sent else 0, "sub_drops": r["drops"],
           "pub_refused": refused}
    if args.qos:
        row["acked"] = acked
        row["acked_per_s"] = acked / (drained - start)
    emit(**row)


# ------------------------------------------------------------------ paho-mqtt + Mosquitto
PAHO_MAX_QUEUED = 1000  # well below paho's 16-bit message ids


def paho_client(name: str):
    import paho.mqtt.client as mqtt
    c = mqtt.Client(client_id=f"{name}-{os.getpid()}", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(50)
    c.max_queued_messages_set(PAHO_MAX_QUEUED)
    return c


def paho_subscriber(port: int, qos: int) -> None:
    count, first, last = 0, 0, 0

    def on_message(client, userdata, msg):
        nonlocal count, first, last
        last = time.monotonic_ns()
        if count == 0:
            first = last
        count += 1

    subscribed = []
    c = paho_client("sub")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.append(True)
    c.connect("127.0.0.1", port)
    c.subscribe(CHANNEL, qos)
    while not subscribed:
        c.loop(0.1)
    print(json.dumps({"ready": True}), flush=True)
    # The publisher writes how many it sent once it is done: the broker may still hold some
    # (it queues for a slow subscriber), so receive until all are in or nothing comes for 1 s.
    import select
    expected = None
    idle_since = time.monotonic()
    while True:
        before = count
        c.loop(0.05)
        now = time.monotonic()
        if count != before:
            idle_since = now
        if expected is None and select.select([sys.stdin], [], [], 0)[0]:
            expected = int(sys.stdin.readline())
            idle_since = now
        if expected is not None and (count >= expected or now - idle_since > 1.0):
            break
    c.disconnect()
    print(json.dumps({"count": count, "first": first, "last": last}), flush=True)


def paho_publisher(args) -> None:
    import paho.mqtt.client as mqtt
    child = subprocess.Popen([sys.executable, __file__, "paho-sub", "--port", str(args.port),
                              "--qos", str(args.qos)], stdout=subprocess.PIPE,
                             stdin=subprocess.PIPE, text=True)
    try:
        json.loads(child.stdout.readline())
        c = paho_client("pub")
        c.connect("127.0.0.1", args.port)
        c.loop_start()
        payload = b"x" * args.size
        sent = 0
        last_info = None
        start = time.monotonic()
        end = start + args.seconds
        while time.monotonic() < end:
            for _ in range(64):
                info = c.publish(CHANNEL, payload, qos=args.qos)
                while info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # queue full: let the loop drain it
                    time.sleep(0.0002)
                    info = c.publish(CHANNEL, payload, qos=args.qos)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    raise SystemExit(f"paho publish failed: {mqtt.error_string(info.rc)}")
                last_info = info
                sent += 1
        send_end = time.monotonic()
        if last_info is not None and args.qos:
            last_info.wait_for_publish(10)
        child.stdin.write(f"{sent}\n")
        child.stdin.flush()
        r = json.loads(child.stdout.readline())
        c.loop_stop()
        c.disconnect()
    finally:
        child.wait(10)
    span = (r["last"] - r["first"]) / 1e9
    emit(bench="paho_tput", qos=args.qos, size=args.size, sent_per_s=sent / (send_end - start),
         msgs_per_s=r["count"] / span if span > 0 else 0, delivered=r["count"], sent=sent,
         loss=1 - r["count"] / sent if sent else 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["nomq-tput", "paho-tput", "nomq-sub", "paho-sub"])
    ap.add_argument("--qos", type=int, default=0)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--config", default="")
    args = ap.parse_args()
    if args.what == "nomq-tput":
        asyncio.run(nomq_publisher(args))
    elif args.what == "nomq-sub":
        asyncio.run(nomq_subscriber(args.config))
    elif args.what == "paho-tput":
        paho_publisher(args)
    else:
        paho_subscriber(args.port, args.qos)


if __name__ == "__main__":
    main()
