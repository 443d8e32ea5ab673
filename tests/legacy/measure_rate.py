#!/usr/bin/env python3
"""By-hand measurement (not run in CI): messages/s that `nomq pub --wire v1` gets through to the
legacy device peer (HEAD receiver), at QoS 0 or 1, with or without the original's 0.1 s pacing.

    python3 tests/legacy/measure_rate.py --nomq build/nomq --qos 1 --count 2000
    python3 tests/legacy/measure_rate.py --nomq build/nomq --qos 0 --count 100 --original-pacing

Prints one JSON line: messages sent, delivered by the device, seconds from the start of `nomq pub`
to the device's last delivery, and the rate.  The device peer is Python, so without pacing the
figure is bounded by the peer's own speed as well as by nomq; the peer-to-peer figure
(--device-sender) shows that bound.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from peer_process import PeerProcess, PEER, parse_json  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nomq", help="path to the nomq executable")
    ap.add_argument("--qos", type=int, choices=(0, 1), default=1)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64, help="message bytes (default 64)")
    ap.add_argument("--original-pacing", action="store_true")
    ap.add_argument("--revision", default="head")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--raw-sender", action="store_true",
                    help="QoS 0 only: this script sends prebuilt gap20 datagrams itself instead "
                         "of nomq, to show how fast the Python peer can receive at all")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="nomq-rate-")
    cfg = os.path.join(tmp, "nomq_config.json")
    subprocess.run([sys.executable, PEER, "mkconfig", "-o", cfg, "--ip", "127.0.0.1", "--port",
                    "0"], check=True, capture_output=True)
    extra = ["--original-pacing"] if a.original_pacing else []
    dev = PeerProcess(["--config", cfg, "--revision", a.revision, *extra, "sub", "-t", "bench/rate",
                       "--port", "0", "-C", str(a.count), "-W", str(a.timeout), "--linger", "0"])
    try:
        port = dev.wait_event("ready")["port"]
        message = ("NMQ:" + "x" * a.size)[:a.size]
        start = time.monotonic()
        if a.raw_sender:
            import socket
            import nomq_legacy_peer as peer
            enc, mac = (bytes.fromhex(peer.read_config_text(open(cfg).read())[k])
                        for k in ("encryption_key", "hmac_key"))
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out = []
            node = peer.Node(enc, mac, ("127.0.0.1", 0), send=lambda d, _a: out.append(d))
            for _ in range(a.count):
                node.publish("bench/rate", message, dest=("127.0.0.1", port),
                             inner_layout="gap20")
            start = time.monotonic()
            for d in out:
                sock.sendto(d, ("127.0.0.1", port))
            pub_rc = 0
        else:
            pub = subprocess.Popen([a.nomq, "pub", "-c", cfg, "--wire", "v1", "-h", "127.0.0.1",
                                    "-p", str(port), "-t", "bench/rate", "-m", message, "-q",
                                    str(a.qos), "--repeat", str(a.count)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        delivered = 0
        last = start
        pub_end = None
        pub_seconds = None
        try:
            while delivered < a.count:
                dev.wait_line(lambda l: (parse_json(l) or {}).get("event") in ("message", "timeout"),
                              timeout=a.timeout, what="message")
                ev = parse_json(dev.seen[-1])
                if ev["event"] == "timeout":
                    break
                delivered += 1
                last = time.monotonic()
                if not a.raw_sender and pub_end is None and pub.poll() is not None:
                    pub_end = last  # nomq pub had exited by this delivery (upper bound)
        except AssertionError as e:
            print(str(e).splitlines()[0], file=sys.stderr)
        if not a.raw_sender:
            try:
                _, err = pub.communicate(timeout=a.timeout)
            except subprocess.TimeoutExpired:
                pub.kill()
                _, err = pub.communicate()
            pub_rc = pub.returncode
            pub_seconds = time.monotonic() - start if pub_end is None else pub_end - start
            sys.stderr.write(err[-2000:])
        elapsed = last - start
        drops = {}
        for l in dev.seen:
            ev = parse_json(l) or {}
            if ev.get("event") == "drop":
                drops[ev["reason"]] = drops.get(ev["reason"], 0) + 1
        print(json.dumps({"qos": a.qos, "sent": a.count, "delivered": delivered,
                          "seconds": round(elapsed, 3),
                          "msgs_per_s": round(delivered / elapsed, 1) if elapsed > 0 else None,
                          "original_pacing": a.original_pacing, "revision": a.revision,
                          "sender": "raw" if a.raw_sender else "nomq",
                          "pub_exit": pub_rc, "pub_seconds_upper_bound": pub_seconds and round(pub_seconds, 3), "device_drops": drops}))
    finally:
        dev.stop()


if __name__ == "__main__":
    main()
