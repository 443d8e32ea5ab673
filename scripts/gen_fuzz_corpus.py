#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the committed vectors.

  scripts/gen_fuzz_corpus.py            # rewrites the seed-* files, keeps anything else

Seeds are named seed-<what>; files a fuzzing run adds (scripts/fuzz.sh merges new coverage into
the corpus) are named by their SHA-1 and are left alone. Inputs:
  - wire_v1_decode: every datagram of tests/vectors/legacy-v1.json (packet, negative, quirk and
    sequence vectors), made with the keys fuzz/fuzz_support.hpp uses;
  - wire_v2_decode: every packet of tests/vectors/v2-kat.json, plus a few hand-made rejects;
  - config_json / config_legacy: configs of every shape docs/config.md describes, the legacy
    config vectors (byte 0 of a config_legacy input picks raw file text or JSON to wrap);
  - engine: scripts in the op language of fuzz/fuzz_engine.cpp (see its header comment).
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def clear_seeds():
    if not os.path.isdir(CORPUS):
        return
    for target in os.listdir(CORPUS):
        for f in os.listdir(os.path.join(CORPUS, target)):
            if f.startswith("seed-"):
                os.remove(os.path.join(CORPUS, target, f))


def wire_seeds():
    v1 = json.load(open(os.path.join(ROOT, "tests", "vectors", "legacy-v1.json")))
    keys = v1["keys"]
    for group in ("packet_vectors", "negative_vectors", "receiver_quirk_vectors"):
        for v in v1[group]:
            if v.get("encryption_key", keys["encryption_key"]) != keys["encryption_key"]:
                continue
            hexs = v.get("packet") or v.get("datagram")
            if hexs:
                write("wire_v1_decode", f"{group.split('_')[0]}-{v['name']}", bytes.fromhex(hexs))
    for s in v1["sequences"]:
        for i, step in enumerate(s.get("steps", [])):
            if step.get("datagram"):
                write("wire_v1_decode", f"seq-{s['name']}-{i}", bytes.fromhex(step["datagram"]))

    v2 = json.load(open(os.path.join(ROOT, "tests", "vectors", "v2-kat.json")))
    for v in v2["vectors"]:
        write("wire_v2_decode", v["name"], bytes.fromhex(v["packet"]))
    base = bytes.fromhex(v2["vectors"][0]["packet"])
    write("wire_v2_decode", "reject-truncated", base[:-1])
    write("wire_v2_decode", "reject-mac-flipped", base[:-1] + bytes([base[-1] ^ 1]))
    write("wire_v2_decode", "reject-v1-version", base[:2] + b"\x01" + base[3:])
    write("wire_v2_decode", "reject-min-zero", b"NM\x02\x05" + bytes(97))


KEY_E = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
KEY_H = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"


def config_seeds():
    keys = {"encryption_key": KEY_E, "hmac_key": KEY_H}
    write("config_json", "minimal", json.dumps(keys))
    full = dict(ip="127.0.0.1", port=8888, use_ipv6=False, wire="v2", epoch=1970,
                group="239.1.2.3", group_interface="lo", log_level="debug",
                v1_publish_layout="gap20", unicast_port=0, max_pending=50, max_channels=20,
                max_message_size=1024, max_retained_per_channel=5, max_retained_channels=20,
                max_peers=64, max_peer_subscriptions=512, max_senders=128, max_inbound_qos=256,
                max_inbox=256, max_outbox=512, heartbeat_interval_s=30, session_timeout_s=300,
                retransmit_initial_ms=200, retransmit_max_s=60, session_lifetime_s=86400,
                retained_answer_max_delay_ms=250, inbound_state_lifetime_s=600,
                timestamp_window_s=30, replay_window=1024, default_ttl_s=3600, max_retries=0,
                **keys)
    write("config_json", "full", json.dumps(full, indent=2) + "\n")
    write("config_json", "ipv6", json.dumps(dict(use_ipv6=True, ip="::", group="ff02::1", **keys)))
    write("config_json", "v1-2000", json.dumps(dict(wire="v1", epoch=2000,
                                                    v1_publish_layout="device16", **keys)))
    write("config_json", "reject-unknown-key", json.dumps(dict(colour="red", **keys)))
    write("config_json", "reject-short-key", json.dumps(dict(encryption_key="00", hmac_key=KEY_H)))
    write("config_json", "reject-duplicate", '{"port": 1, "port": 2, "encryption_key": "%s", '
          '"hmac_key": "%s"}' % (KEY_E, KEY_H))
    write("config_json", "reject-not-json", "{nope")

    v1 = json.load(open(os.path.join(ROOT, "tests", "vectors", "legacy-v1.json")))
    for v in v1["config_vectors"]:
        write("config_legacy", "file-" + v["name"], b"\x00" + v["file_text"].encode())
        write("config_legacy", "plain-" + v["name"], b"\x01" + v["json_text"].encode())
    for v in v1["config_negative_vectors"]:
        write("config_legacy", "file-" + v["name"], b"\x00" + v["file_text"].encode())
    write("config_legacy", "plain-extra-key",
          b"\x01" + json.dumps(dict(ip="0.0.0.0", port=8888, use_ipv6=False, device_id="x",
                                    **keys)).encode())
    write("config_legacy", "plain-ipv6",
          b"\x01" + json.dumps(dict(ip="::", port=9999, use_ipv6=True, **keys)).encode())
    write("config_legacy", "file-not-base64", b"\x00" + b"!!!!\n")


# --- engine scripts: op codes of fuzz/fuzz_engine.cpp
AUTH, RAW, ADVANCE, SUB, UNSUB, PUB, POLL, REPLAY, ECHO, RESTART, TAMPER, CLOSE, RESPOND = range(13)
T_PUBLISH, T_SUBSCRIBE, T_ACK, T_UNSUB, T_HEARTBEAT, T_PUBREC, T_PUBREL, T_PUBCOMP = range(1, 9)


def auth(ptype, flags=0, peer=0, seq=0, chan=1, ttl=60, ts=0, id_sel=0, acked_sel=2, acked=0,
         msg=b"21.5 C", hold=0):
    b = bytes([AUTH, ptype - 1, flags, peer, seq, chan, ttl, ts & 0xFF, id_sel, acked_sel])
    if acked_sel % 3 == 2:
        b += struct.pack(">I", acked)
    return b + bytes([len(msg)]) + msg + bytes([hold])


def pub(chan=1, qos=0, opts=0, ttl=10, prio=0, msg=b"hello"):
    return bytes([PUB, chan, qos, opts, ttl, prio, len(msg)]) + msg


def engine_seeds():
    v2, v1 = b"\x00", b"\x07"
    sub = bytes([SUB, 1, 0])
    adv = lambda b: bytes([ADVANCE, b])  # noqa: E731
    scripts = {
        # A peer publishes on a channel we follow, at every QoS, then replays and tampering.
        "recv-qos0": sub + auth(T_PUBLISH) + bytes([POLL]),
        "recv-qos1": sub + auth(T_PUBLISH, flags=1) + bytes([POLL]),
        "recv-qos2-handshake": sub + auth(T_PUBLISH, flags=2, id_sel=3) + bytes([POLL]) +
        auth(T_PUBREL, acked_sel=1) + bytes([POLL]),
        "recv-replay": sub + auth(T_PUBLISH) + bytes([REPLAY, 0]) + adv(150) +
        bytes([REPLAY, 0]),
        "recv-tamper": sub + auth(T_PUBLISH) + bytes([TAMPER, 0, 0, 60, 0x01]),
        "recv-stale": sub + auth(T_PUBLISH, ts=45) + auth(T_PUBLISH, ts=-45 & 0xFF),
        "recv-old-seq": sub + auth(T_PUBLISH) + auth(T_PUBLISH, seq=250) +
        auth(T_PUBLISH, seq=210),
        "recv-unknown-channel": sub + auth(T_PUBLISH, chan=4) + auth(T_PUBLISH, chan=0x81),
        "recv-inbox-hold": sub + b"".join(auth(T_PUBLISH, peer=i % 4, hold=1) for i in range(10)),
        # Discovery, then our QoS 1 / QoS 2 publishes acknowledged by the peer.
        "pub-qos1-acked": auth(T_SUBSCRIBE) + pub(qos=1) + bytes([POLL, RESPOND, 0, POLL]),
        "pub-qos2-complete": auth(T_SUBSCRIBE) + pub(qos=2) +
        bytes([POLL, RESPOND, 0, POLL, RESPOND, 0, POLL]),
        "pub-qos1-expires": auth(T_SUBSCRIBE, peer=1) + pub(qos=1, ttl=3) +
        adv(130) + adv(131) + adv(132),
        "pub-wait-subscribers": pub(qos=1, opts=0x10, ttl=20) + adv(129) +
        auth(T_SUBSCRIBE, peer=2) + bytes([POLL, RESPOND, 2, POLL]),
        "pub-retained": pub(opts=1, ttl=100) + auth(T_SUBSCRIBE, flags=0x08, peer=3) +
        bytes([POLL]) + adv(50),
        "pub-unicast-qos2": pub(qos=2, opts=0x08) + bytes([POLL, RESPOND, 0, POLL, RESPOND, 0]),
        "pub-close": auth(T_SUBSCRIBE) + pub(qos=1) + pub(qos=2, chan=1) + bytes([CLOSE]),
        "peer-restart": auth(T_SUBSCRIBE) + bytes([RESTART, 0]) + auth(T_HEARTBEAT) +
        auth(T_UNSUB) + adv(210),
        "echo-own": sub + pub() + bytes([POLL, ECHO, 0, 1]),
        "raw-garbage": bytes([RAW, 0, 8]) + b"NM\x02\x01abcd" + bytes([RAW, 0, 120]) + bytes(120),
        "heartbeats": sub + adv(160) + adv(160) + bytes([POLL]) + adv(230) + bytes([POLL]),
        "acks-unknown": auth(T_ACK, acked=77) + auth(T_PUBREC, acked=78) +
        auth(T_PUBCOMP, acked=79),
    }
    for name, body in scripts.items():
        write("engine", "v2-" + name, v2 + body)
    # Keyed mode (mode byte bit 3): the engine holds a channel key for "plant/#", so channel 2
    # ("plant/line1/t") is channel-keyed. AUTH's channel byte bit 6 seals with that key, bit 5
    # swaps the channel id to the other key set's; the mark is flags bit 3 (bit 2 on SUBSCRIBE).
    keyed, ch_key = b"\x08", 0x40 | 2
    ksub = bytes([SUB, 2, 0])
    keyed_scripts = {
        "recv-qos0": ksub + auth(T_PUBLISH, flags=0x08, chan=ch_key) + bytes([POLL]),
        "recv-qos2": ksub + auth(T_PUBLISH, flags=0x0A, chan=ch_key, id_sel=5) + bytes([POLL]) +
        auth(T_PUBREL, flags=0x08, chan=ch_key, acked_sel=1) + bytes([POLL]),
        # Group-sealed: under the group's id, marked, under the keyed id captured off the air;
        # then sealed with the channel key but unmarked.
        "recv-group-sealed": ksub + auth(T_PUBLISH, chan=2) + auth(T_PUBLISH, flags=0x08, chan=2) +
        auth(T_PUBLISH, chan=0x20 | 2) + auth(T_PUBLISH, flags=1, chan=0x20 | 2) +
        auth(T_PUBLISH, chan=ch_key),
        "pub-qos1-acked": auth(T_SUBSCRIBE, flags=0x04, chan=ch_key) + pub(chan=2, qos=1) +
        bytes([POLL, RESPOND, 0, POLL]),
        "pub-qos2-complete": auth(T_SUBSCRIBE, flags=0x04, chan=ch_key) + pub(chan=2, qos=2) +
        bytes([POLL, RESPOND, 0, POLL, RESPOND, 0, POLL]),
        "pub-retained": pub(chan=2, opts=1, ttl=100) +
        auth(T_SUBSCRIBE, flags=0x0C, peer=3, chan=ch_key) + bytes([POLL]),
    }
    for name, body in keyed_scripts.items():
        write("engine", "v2-keyed-" + name, keyed + body)
    v1_scripts = {
        "recv-publish": sub + auth(T_PUBLISH, flags=1) + bytes([REPLAY, 0, POLL]),
        "recv-device16": sub + auth(T_PUBLISH, flags=0x08),
        "pub-unicast-qos1": pub(qos=1, opts=0x08) + bytes([POLL, RESPOND, 0, POLL]),
        "pub-unicast-qos2": pub(qos=2, opts=0x0A) + bytes([POLL, RESPOND, 1, POLL, RESPOND, 1]),
        "subscribe-heartbeat": sub + auth(T_SUBSCRIBE) + auth(T_HEARTBEAT) + bytes([RAW, 0, 3]) +
        b"abc",
    }
    for name, body in v1_scripts.items():
        write("engine", "v1-" + name, v1 + body)


def main():
    clear_seeds()
    wire_seeds()
    config_seeds()
    engine_seeds()
    for target in sorted(os.listdir(CORPUS)):
        n = len(os.listdir(os.path.join(CORPUS, target)))
        print(f"{target}: {n} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
