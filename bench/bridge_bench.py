#!/usr/bin/env python3
"""NoMQ -> nomq bridge -> Mosquitto -> subscriber, against Mosquitto alone, in the same run.

Usage: bridge_bench.py NOMQ_BIN [--count N] [--reps R]
For QoS 0 and 1: messages/s of
  * mosquitto alone: `mosquitto_pub -l` (N lines, one process) -> broker -> `mosquitto_sub -C N`
  * bridged: `nomq pub -l` (N lines) -> NoMQ on loopback -> `nomq bridge` -> broker ->
    `mosquitto_sub -C N`
timed from the publisher's start to the subscriber's N-th message; the median of R runs each,
and the bridge's peak RSS (VmHWM). Prints `ratio bridge-qosQ: X` lines (bridged / alone) and
`bridge-rss-kib: N`. A private broker on a free loopback port, stopped by PID.
"""

import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_line(proc, text, seen, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line.rstrip())
        if text in line:
            return True
    return False


def timed_run(pub_argv, payload_lines, sub_argv, n, cwd):
    sub = subprocess.Popen(sub_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    time.sleep(0.5)  # subscribed (local broker)
    t0 = time.monotonic()
    pub = subprocess.Popen(pub_argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=cwd, text=True)
    pub.stdin.write(payload_lines)
    pub.stdin.close()
    try:
        sub.wait(120)
    except subprocess.TimeoutExpired:
        sub.kill()
        pub.kill()
        return None
    t = time.monotonic() - t0
    pub.wait(60)
    return n / t if sub.returncode == 0 else None


def main():
    nomq = os.path.abspath(sys.argv[1])  # the children run in a temporary directory
    n = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else 20000
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    d = tempfile.mkdtemp(prefix="nomq-bridge-bench-")
    port = free_port()
    with open(os.path.join(d, "m.conf"), "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                "max_queued_messages 1000000\nmax_inflight_messages 50\n" % port)
    broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", os.path.join(d, "m.conf")])
    site = os.path.join(d, "site.json")
    # Mode 0600: a config holding keys must be private (the tools refuse it otherwise).
    with os.fdopen(os.open(site, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump({"encryption_key": secrets.token_hex(32), "hmac_key": secrets.token_hex(32),
                   "group": "127.255.255.255", "ip": "127.0.0.1",
                   "port": free_port(socket.SOCK_DGRAM)}, f)
    cfg = os.path.join(d, "bridge.json")
    with open(cfg, "w") as f:
        json.dump({"nomq_config": site, "bridge_id": "bench", "broker": {"port": port},
                   "rules": [{"nomq": "bench/#", "mqtt": "bench/#", "direction": "out"}],
                   "store": {"path": os.path.join(d, "b.db"), "max_messages": 10000000,
                             "max_bytes": 1 << 32},
                   "stats_interval_s": 3600}, f)
    time.sleep(0.3)
    bridge = subprocess.Popen([nomq, "bridge", "-c", cfg], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, cwd=d)
    seen = []
    ok = wait_line(bridge, "connected to", seen)
    if not ok:
        print("bridge_bench: the bridge did not connect: %s" % " | ".join(seen[-5:]), file=sys.stderr)
        bridge.kill()
        broker.terminate()
        broker.wait(10)
        return 1
    payload = "".join("m%07d-%s\n" % (i, "x" * 52) for i in range(n))  # 64-byte messages
    results = {}
    for qos in ("0", "1"):
        alone, bridged = [], []
        for _ in range(reps):
            sub = ["mosquitto_sub", "-p", str(port), "-t", "bench/#", "-q", qos, "-C", str(n)]
            alone.append(timed_run(["mosquitto_pub", "-p", str(port), "-t", "bench/x", "-q", qos, "-l"],
                                   payload, sub, n, d))
            bridged.append(timed_run([nomq, "pub", "-c", site, "-t", "bench/x", "-q", qos, "-l"],
                                     payload, sub, n, d))
        a = statistics.median([x for x in alone if x] or [0])
        b = statistics.median([x for x in bridged if x] or [0])
        results[qos] = (a, b)
        print("bridge-bench qos %s: mosquitto alone %.0f msg/s, nomq->bridge->mosquitto %.0f msg/s"
              " (runs %s / %s)" % (qos, a, b, [round(x or 0) for x in alone],
                                   [round(x or 0) for x in bridged]), file=sys.stderr)
    rss = 0
    with open("/proc/%d/status" % bridge.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1])
    bridge.terminate()
    bridge.wait(20)
    broker.terminate()
    broker.wait(10)
    for qos, (a, b) in results.items():
        print("ratio bridge-qos%s: %.2f" % (qos, b / a if a else 0.0))
    print("bridge-rss-kib: %d" % rss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
