"""The Wireshark dissector (tools/wireshark/nomq.lua) through tshark.

Captures come from the known-answer vectors (written into pcaps here), from real `nomq` traffic
on loopback (dumpcap on `lo`, filtered on this test's own ports) and from garbage datagrams made
here. Each is dissected with `tshark -X lua_script:nomq.lua -o ... -T json` and the decoded fields
are compared with what was sent.

Run: python3 -m pytest tests/wireshark (NOMQ_BIN=path/to/nomq for the live captures); CTest runs
it as wireshark.* (tests/wireshark/CMakeLists.txt). Skipped only when tshark is not installed.
"""

import base64
import datetime
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcapwrite import write_pcap  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "tools" / "wireshark" / "nomq.lua"
VECTORS = ROOT / "tests" / "vectors"
TSHARK = shutil.which("tshark")
DUMPCAP = shutil.which("dumpcap")
NOMQ = os.environ.get("NOMQ_BIN", str(ROOT / "build" / "nomq"))
STEP = 20  # seconds: bound for one step on a loaded 2-core machine

pytestmark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (apt-get install tshark lua-luaossl; "
    "scripts/install-deps.sh installs both): the Wireshark dissector cannot be tested")

TYPES = {"PUBLISH": 1, "SUBSCRIBE": 2, "ACK": 3, "UNSUBSCRIBE": 4, "HEARTBEAT": 5,
         "PUBREC": 6, "PUBREL": 7, "PUBCOMP": 8}
PUB = ("127.0.0.1", 40001)   # publisher endpoint in the vector pcaps
SUB = ("127.0.0.1", 40002)   # subscriber endpoint in the vector pcaps
FROM_SUBSCRIBER = {"SUBSCRIBE", "UNSUBSCRIBE", "HEARTBEAT", "ACK", "PUBREC", "PUBCOMP"}


# --- tshark and its JSON ----------------------------------------------------------------------

class Obj(list):
    """A JSON object as its (key, value) pairs: tshark repeats keys within one object."""


class Packet:
    """One frame's NoMQ layer: every field value by name (all occurrences) and expert infos."""

    def __init__(self, number, layers):
        self.number = number
        self.fields = {}
        self.experts = []   # (abbrev, message)
        self.protocols = [k for k, _ in layers]
        for k, v in layers:
            if k == "nomq":
                self._walk(v)

    def _walk(self, obj):
        for k, v in obj:
            values = v if isinstance(v, list) and not isinstance(v, Obj) else [v]
            for item in values:
                if k == "_ws.expert" and isinstance(item, Obj):
                    abbrevs = [a for a, _ in item if not a.startswith("_ws.expert")]
                    msg = dict(item).get("_ws.expert.message", "")
                    self.experts += [(a, msg) for a in abbrevs]
                elif isinstance(item, Obj):
                    self._walk(item)
                else:
                    self.fields.setdefault(k, []).append(item)

    def get(self, name):
        vals = self.fields.get(name, [])
        assert len(vals) == 1, "frame %d: %s has %d values %r" % (self.number, name, len(vals), vals)
        return vals[0]

    def has(self, name):
        return name in self.fields

    def expert(self, abbrev):
        return [m for a, m in self.experts if a == abbrev]


def tshark(pcap, prefs=(), extra=(), env=None, two_pass=True):
    cmd = [TSHARK, "-n"] + (["-2"] if two_pass else []) + ["-X", "lua_script:%s" % LUA, "-r", str(pcap)]
    for p in prefs:
        cmd += ["-o", p]
    cmd += list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, "tshark failed (%d): %s" % (p.returncode, p.stderr)
    assert "Lua Error" not in p.stdout and "Lua Error" not in p.stderr, p.stdout + p.stderr
    assert "Lua:" not in p.stderr, p.stderr
    return p.stdout


def dissect(pcap, prefs=(), env=None, display_filter=None):
    extra = ["-T", "json"]
    if display_filter:
        extra += ["-Y", display_filter]
    out = tshark(pcap, prefs, extra, env)
    frames = json.loads(out, object_pairs_hook=Obj)
    packets = []
    for frame in frames:
        layers = dict(dict(frame)["_source"])["layers"]
        number = int(dict(dict(layers)["frame"])["frame.number"])
        packets.append(Packet(number, layers))
    return packets


def colon_hex(hexstr):
    return ":".join(hexstr[i:i + 2] for i in range(0, len(hexstr), 2))


def ws_time(seconds):
    """Wireshark's UTC absolute time text, e.g. 'Nov 14, 2023 22:13:20.000000000 UTC'."""
    t = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return "%s %2d, %d %s.000000000 UTC" % (t.strftime("%b"), t.day, t.year, t.strftime("%H:%M:%S"))


def config_prefs(*paths):
    return ["nomq.config:" + ";".join(str(p) for p in paths)]


# --- configs ----------------------------------------------------------------------------------

def write_json_config(path, enc, mac, **extra):
    cfg = {"encryption_key": enc, "hmac_key": mac}
    cfg.update(extra)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    return path


def write_master_config(path, master, **extra):
    """A config in the master-secret form (master_secret, group_id, key_epoch)."""
    cfg = dict(master)
    cfg.update(extra)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    return path


def write_legacy_config(path, enc, mac, port=8888):
    """The original's nomq_config.json: base64(IV || AES-256-CBC(SHA-256('nomq_config_key'), JSON))."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    text = json.dumps({"ip": "127.0.0.1", "port": port, "use_ipv6": False,
                       "encryption_key": enc, "hmac_key": mac}).encode()
    pad = 16 - len(text) % 16
    iv = os.urandom(16)
    key = hashlib.sha256(b"nomq_config_key").digest()
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    blob = iv + e.update(text + bytes([pad]) * pad) + e.finalize()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(blob).decode() + "\n")
    return path


def random_keys():
    return os.urandom(32).hex(), os.urandom(32).hex()


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


# --- known-answer vectors ---------------------------------------------------------------------

def v2_vectors():
    return json.loads((VECTORS / "v2-kat.json").read_text())


def v1_vectors():
    return json.loads((VECTORS / "legacy-v1.json").read_text())


def endpoints(type_name):
    return (SUB, PUB) if type_name in FROM_SUBSCRIBER else (PUB, SUB)


def check_common(pkt, inp, version, length):
    assert pkt.get("nomq.magic") == "NM"
    assert pkt.get("nomq.version") == str(version)
    assert pkt.get("nomq.type") == str(inp["packet_type"])
    assert pkt.get("nomq.flags") == "0x%02x" % inp["flags"]
    assert pkt.get("nomq.session") == "0x%08x" % inp["session_id"]
    assert pkt.get("nomq.ttl") == str(inp["ttl"])
    assert pkt.get("nomq.iv") == colon_hex(inp["iv"])
    assert pkt.get("nomq.timestamp_raw") == str(inp["timestamp"])
    assert pkt.get("nomq.channel_id") == colon_hex(inp["channel_id"])
    assert pkt.get("nomq.length") == str(length - 85)
    assert pkt.get("nomq.packet_id") == str(inp["packet_id"])
    assert pkt.get("nomq.mac_status") == "1", pkt.experts
    assert not [e for e in pkt.experts if e[0] in ("nomq.mac_bad", "nomq.malformed",
                                                    "nomq.bad_padding", "nomq.bad_body",
                                                    "nomq.channel_mismatch")], pkt.experts


def check_message(pkt, raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert pkt.get("nomq.message_bytes") == colon_hex(raw.hex())
        assert not pkt.has("nomq.message")
        return
    assert pkt.get("nomq.message") == text
    assert not pkt.has("nomq.message_bytes")


def test_v2_known_answer_vectors_decode_to_their_inputs(tmp):
    kat = v2_vectors()
    cfg = write_json_config(tmp / "kat.json", kat["keys"]["encryption_key"], kat["keys"]["hmac_key"])
    vectors = [v for v in kat["vectors"] if v["name"] != "publish_epoch2000"]
    records = []
    for v in vectors:
        src, dst = endpoints(v["inputs"]["type_name"])
        records.append((v["inputs"]["timestamp"] + 0.25, bytes.fromhex(v["packet"]), src, dst))
    write_pcap(tmp / "v2.pcap", records)
    packets = dissect(tmp / "v2.pcap", config_prefs(cfg))
    assert len(packets) == len(vectors) == 18
    frame_of = {}
    for pkt, v in zip(packets, vectors):
        inp = v["inputs"]
        name = inp["type_name"]
        frame_of[v["name"]] = pkt.number
        check_common(pkt, inp, 2, v["length"])
        assert pkt.get("nomq.seq") == str(inp["packet_id"])
        assert pkt.get("nomq.timestamp") == ws_time(inp["timestamp"])
        assert pkt.get("nomq.timestamp_epoch") == "1970"
        plain = bytes.fromhex(v["plaintext"])
        pad = 16 - len(plain) % 16
        assert pkt.get("nomq.plaintext") == colon_hex((plain + bytes([pad]) * pad).hex())
        assert pkt.get("nomq.padding") == str(pad)
        if name == "PUBLISH":
            assert pkt.get("nomq.qos") == str(inp["qos"])
            assert pkt.get("nomq.retain") == ("1" if inp["retain"] else "0")
            assert pkt.get("nomq.priority") == str(inp["priority"])
            assert pkt.get("nomq.message_id") == str(inp["message_id"])
            assert pkt.get("nomq.channel") == inp["channel"]
            assert pkt.get("nomq.channel_len") == str(len(inp["channel"].encode()))
            assert pkt.get("nomq.channel_id_ok") == "1"
            check_message(pkt, bytes.fromhex(inp["message_hex"]))
        elif name in ("SUBSCRIBE", "UNSUBSCRIBE"):
            assert pkt.get("nomq.channel") == inp["channel"]
            assert pkt.get("nomq.channel_id_ok") == "1"
            if name == "SUBSCRIBE":
                assert pkt.get("nomq.priority") == str(inp["priority"])
                assert pkt.get("nomq.want_retained") == ("1" if inp["flags"] & 8 else "0")
        elif name == "HEARTBEAT":
            assert pkt.get("nomq.solicit") == ("1" if inp["flags"] & 8 else "0")
            assert not pkt.has("nomq.channel")
        else:
            assert pkt.get("nomq.acked_id") == str(inp["acked_id"])
    # The QoS exchanges are linked by the message id inside the ciphertext.
    by_frame = {p.number: p for p in packets}
    ack, q1 = by_frame[frame_of["ack"]], frame_of["publish_q1_p5"]
    assert ack.get("nomq.response_to") == str(q1)
    assert by_frame[q1].get("nomq.response_in") == str(ack.number)
    q2 = frame_of["publish_q2_retain_p9"]
    chain = [q2, frame_of["pubrec"], frame_of["pubrel"], frame_of["pubcomp"]]
    for step, (req, resp) in enumerate(zip(chain, chain[1:]), start=2):
        assert by_frame[resp].get("nomq.response_to") == str(req)
        assert by_frame[req].get("nomq.response_in") == str(resp)
        assert by_frame[resp].get("nomq.qos2.step") == str(step)
        assert by_frame[resp].get("nomq.qos2.publish") == str(q2)
        assert by_frame[resp].get("nomq.response_time") == "%d.000000000" % 1  # 1 s apart
    assert by_frame[chain[3]].get("nomq.qos2.time") == "3.000000000"
    assert len(by_frame[chain[3]].expert("nomq.qos2_complete")) == 1
    assert len(by_frame[chain[1]].expert("nomq.qos2")) == 1


def test_v2_epoch_2000_vector_with_the_epoch_preference(tmp):
    kat = v2_vectors()
    v = [v for v in kat["vectors"] if v["name"] == "publish_epoch2000"][0]
    cfg = write_json_config(tmp / "kat.json", kat["keys"]["encryption_key"], kat["keys"]["hmac_key"],
                            epoch=2000)
    unix = v["inputs"]["timestamp"] + 946684800
    write_pcap(tmp / "e.pcap", [(unix + 0.5, bytes.fromhex(v["packet"]), PUB, SUB)])
    # The config says 2000 (epoch "auto"); then the preference alone, with a config without it.
    plain_cfg = write_json_config(tmp / "plain.json", kat["keys"]["encryption_key"],
                                  kat["keys"]["hmac_key"])
    for prefs in (config_prefs(cfg), config_prefs(plain_cfg) + ["nomq.epoch:2000"]):
        (pkt,) = dissect(tmp / "e.pcap", prefs)
        assert pkt.get("nomq.timestamp") == ws_time(unix)
        assert pkt.get("nomq.timestamp_epoch") == "2000"
        assert not pkt.expert("nomq.timestamp_stale"), pkt.experts
        assert pkt.get("nomq.message") == "device clock"
    (pkt,) = dissect(tmp / "e.pcap", config_prefs(plain_cfg))  # read as 1970: 30 years stale
    assert pkt.get("nomq.timestamp_epoch") == "1970"
    assert len(pkt.expert("nomq.timestamp_stale")) == 1


def test_v1_known_answer_vectors_with_the_originals_config_file(tmp):
    lv = v1_vectors()
    legacy = tmp / "nomq_config.json"
    legacy.write_text(lv["config_vectors"][0]["file_text"])  # written by the original itself
    vectors = [v for v in lv["packet_vectors"] if "epoch2000" not in v["name"]]
    records = []
    for v in vectors:
        src, dst = endpoints(v["inputs"]["type_name"])
        records.append((v["sender_clock"], bytes.fromhex(v["packet"]), src, dst))
    write_pcap(tmp / "v1.pcap", records)
    packets = dissect(tmp / "v1.pcap", config_prefs(legacy))
    assert len(packets) == len(vectors) == 28
    seen_types = set()
    for pkt, v in zip(packets, vectors):
        inp = v["inputs"]
        name = inp["type_name"]
        seen_types.add(name)
        check_common(pkt, inp, 1, v["length"])
        assert not pkt.has("nomq.seq")
        assert pkt.get("nomq.payload_iv") == colon_hex(inp["iv"])
        assert pkt.get("nomq.key_set") == "nomq_config.json"
        plain = bytes.fromhex(inp["plaintext"])
        pad = 16 - len(plain) % 16
        assert pkt.get("nomq.plaintext") == colon_hex((plain + bytes([pad]) * pad).hex())
        if name == "PUBLISH":
            pub = inp["publish"]
            assert pkt.get("nomq.qos") == str(inp["qos"])
            assert pkt.get("nomq.retain") == ("1" if inp["retain"] else "0")
            assert pkt.get("nomq.priority") == str(inp["flags"] >> 4)
            assert pkt.get("nomq.inner_timestamp") == str(pub["inner_timestamp"])
            assert pkt.get("nomq.message_id") == str(pub["inner_nonce"])
            assert pkt.get("nomq.msg_len") == str(pub["msg_len"])
            assert pkt.get("nomq.layout") == pub["inner_layout"].split()[0]
            assert pkt.get("nomq.message") == pub["message"]
        elif name in ("SUBSCRIBE", "UNSUBSCRIBE"):
            assert pkt.get("nomq.channel") == inp["channel"]
            assert pkt.get("nomq.channel_id_ok") == "1"
            if name == "SUBSCRIBE":
                assert pkt.get("nomq.priority") == str(inp["flags"] & 0x0F)
        elif name == "HEARTBEAT":
            assert not pkt.has("nomq.channel")
        else:
            assert pkt.get("nomq.acked_id") == str(int(inp["plaintext"], 16))
    assert seen_types == set(TYPES)
    # v1 exchanges share the header packet id: the vectors' QoS 1 and QoS 2 exchanges link up,
    # each reply to the latest earlier packet it answers (the gap20 copies come after the
    # device16 publishes with the same id).
    by_id = {}
    for pkt, v in zip(packets, vectors):
        by_id[(v["inputs"]["type_name"], v["inputs"]["packet_id"])] = pkt
    q2 = by_id[("PUBLISH", 1197795374)]
    rec, rel, comp = (by_id[(t, 1197795374)] for t in ("PUBREC", "PUBREL", "PUBCOMP"))
    assert rec.get("nomq.response_to") == str(q2.number)
    assert rel.get("nomq.response_to") == str(rec.number)
    assert comp.get("nomq.response_to") == str(rel.number)
    assert comp.get("nomq.qos2.publish") == str(q2.number)
    ack = by_id[("ACK", 2856741071)]
    assert ack.get("nomq.response_to") == str(by_id[("PUBLISH", 2856741071)].number)


# Negative and quirk vectors: the verdict the dissector shows for each.
V1_VERDICTS = {
    "bad_mac": "nomq.mac_bad", "stale_timestamp": None, "bad_padding": "nomq.bad_padding",
    "bad_length": "nomq.malformed", "too_short": "nomq.malformed",
    "bad_block_size": "nomq.malformed", "empty_plaintext": "nomq.malformed",
    "publish_bad_msg_len": "nomq.bad_body", "publish_bad_utf8": "nomq.bad_body",
    "publish_payload_short": "nomq.bad_body",
}


def test_v1_negative_vectors_get_their_verdicts(tmp):
    lv = v1_vectors()
    cfg = write_json_config(tmp / "v1.json", lv["keys"]["encryption_key"], lv["keys"]["hmac_key"],
                            wire="v1")
    vectors = lv["negative_vectors"] + lv["receiver_quirk_vectors"]
    records = [(v["receiver_clock"], bytes.fromhex(v["packet"]), PUB, SUB) for v in vectors]
    write_pcap(tmp / "neg.pcap", records)
    out = {p.number: p for p in dissect(tmp / "neg.pcap", config_prefs(cfg))}
    checked = 0
    for i, v in enumerate(vectors, start=1):
        pkt = out[i]
        reason = v["reason"]
        name = v["name"]
        if reason == "bad_magic":
            assert "nomq" not in pkt.protocols, name
        elif reason == "bad_version":
            # version 2 on v1 bytes: read as v2, whose HMAC those bytes do not carry
            assert pkt.get("nomq.version") == "2" and pkt.expert("nomq.mac_bad"), name
        elif name == "device_layout_publish":
            # the original HEAD rejects its own sender's layout; NoMQ (and the dissector) read it
            assert pkt.get("nomq.layout") == "device16" and pkt.get("nomq.message"), name
        elif reason == "stale_timestamp":
            ts = int(pkt.get("nomq.timestamp_raw"))
            which = "nomq.timestamp_future" if ts > v["receiver_clock"] else "nomq.timestamp_stale"
            assert len(pkt.expert(which)) == 1, (name, pkt.experts)
        elif reason in V1_VERDICTS:
            assert pkt.expert(V1_VERDICTS[reason]), (name, reason, pkt.experts)
            if reason == "bad_mac":
                assert pkt.get("nomq.mac_status") == "0"
                assert not pkt.has("nomq.plaintext")
        else:  # accepted, or dropped by receiver state the dissector does not model
            assert pkt.get("nomq.mac_status") == "1", name
            assert not pkt.expert("nomq.mac_bad"), name
            assert not pkt.expert("nomq.timestamp_stale") and not pkt.expert("nomq.timestamp_future"), name
        checked += 1
    assert checked == 32
    # Exactly ±30 s is accepted, +30.5 s is stale, as a receiver decides.
    names = {v["name"]: i for i, v in enumerate(vectors, start=1)}
    assert not out[names["timestamp_plus_30_accepted"]].expert("nomq.timestamp_stale")
    assert out[names["stale_by_fraction"]].expert("nomq.timestamp_stale")
    # The vector replayed_publish repeats an earlier publish's nonce within the capture.
    assert out[names["replayed_publish"]].expert("nomq.nonce_repeat")


def test_v2_replay_and_timestamps_expert_info(tmp):
    kat = v2_vectors()
    cfg = write_json_config(tmp / "kat.json", kat["keys"]["encryption_key"], kat["keys"]["hmac_key"])
    v = {x["name"]: x for x in kat["vectors"]}
    pub = bytes.fromhex(v["publish_q0_p0"]["packet"])
    hb = bytes.fromhex(v["heartbeat"]["packet"])
    t = 1700000000
    write_pcap(tmp / "r.pcap", [
        (t + 0.1, pub, PUB, SUB),        # 1 first
        (t + 5.0, pub, PUB, SUB),        # 2 the same sequence number again: replay
        (t + 45.0, hb, SUB, PUB),        # 3 sent 45 s before capture: stale
        (t - 45.0, hb, SUB, PUB),        # 4 sent 45 s after capture: future (and a replay)
        (t + 30.0, bytes.fromhex(v["subscribe_reannounce"]["packet"]), SUB, PUB),  # 5 ±30 s is fine
    ])
    p = {x.number: x for x in dissect(tmp / "r.pcap", config_prefs(cfg))}
    assert not p[1].expert("nomq.replay")
    assert len(p[2].expert("nomq.replay")) == 1 and p[2].get("nomq.replay_of") == "1"
    assert "sequence number 1000 of session 0x5e55104e already seen in frame 1" in p[2].expert("nomq.replay")[0]
    assert len(p[3].expert("nomq.timestamp_stale")) == 1 and not p[3].expert("nomq.timestamp_future")
    assert len(p[4].expert("nomq.timestamp_future")) == 1 and p[4].get("nomq.replay_of") == "3"
    assert p[3].get("nomq.timestamp_delta") == "-45.000000000"
    assert not p[5].experts
    # The window comes from the preference, else the config's timestamp_window_s.
    p = {x.number: x for x in dissect(tmp / "r.pcap", config_prefs(cfg) + ["nomq.window:60"])}
    assert not p[3].expert("nomq.timestamp_stale") and not p[4].expert("nomq.timestamp_future")
    cfg60 = write_json_config(tmp / "w.json", kat["keys"]["encryption_key"], kat["keys"]["hmac_key"],
                              timestamp_window_s=60)
    p = {x.number: x for x in dissect(tmp / "r.pcap", config_prefs(cfg60))}
    assert not p[3].expert("nomq.timestamp_stale")


def test_display_filters_on_header_fields(tmp):
    kat = v2_vectors()
    records = [(v["inputs"]["timestamp"], bytes.fromhex(v["packet"]), *endpoints(v["inputs"]["type_name"]))
               for v in kat["vectors"]]
    write_pcap(tmp / "f.pcap", records)
    def frames(flt):
        return [p.number for p in dissect(tmp / "f.pcap", display_filter=flt)]
    q2 = [i for i, v in enumerate(kat["vectors"], 1)
          if v["inputs"]["type_name"] == "PUBLISH" and v["inputs"]["qos"] == 2]
    assert q2 and frames('nomq.type == "PUBLISH" && nomq.qos == 2') == q2
    assert frames("nomq.seq == 1003") == [4]
    assert len(frames("nomq.session == 0x5e55104e")) == 19
    temp = [i for i, v in enumerate(kat["vectors"], 1)
            if v["inputs"]["channel_id"] == "8319b0611f824d7eb28af150143b48eb"]
    assert len(temp) == 8
    assert frames("nomq.channel_id == 83:19:b0:61:1f:82:4d:7e:b2:8a:f1:50:14:3b:48:eb") == temp
    assert frames("nomq.ttl == 600") == [3]
    assert frames('nomq.type == "PUBLISH" && nomq.priority == 15') == [4]
    assert frames('nomq.timestamp > "2023-11-14 22:13:22Z"') == [18]
    assert frames('nomq.type == "HEARTBEAT"') == [19]


def test_port_preference_and_heuristic(tmp):
    """The group port is NoMQ whatever the bytes look like to the heuristic; other ports are
    found by the heuristic ("NM", version 1 or 2), which can be turned off."""
    pkt = bytes.fromhex(v2_vectors()["vectors"][0]["packet"])
    write_pcap(tmp / "p.pcap", [(1700000000, pkt, ("127.0.0.1", 40000), ("127.0.0.1", 8888)),
                                (1700000000, pkt, ("127.0.0.1", 40000), ("127.0.0.1", 9999)),
                                (1700000000, b"NM\x07" + pkt[3:], ("127.0.0.1", 40000),
                                 ("127.0.0.1", 9999))])
    def nomq_frames(prefs=()):
        out = tshark(tmp / "p.pcap", prefs, ["-Y", "nomq", "-T", "fields", "-e", "frame.number"])
        return [int(x) for x in out.split()]
    assert nomq_frames() == [1, 2]  # version 7 is not NoMQ
    assert nomq_frames(["nomq.heuristic:FALSE"]) == [1]
    assert nomq_frames(["nomq.port:9999", "nomq.heuristic:FALSE"]) == [2]
    assert nomq_frames(["nomq.port:0", "nomq.heuristic:FALSE"]) == []


def test_without_keys_headers_only_and_without_luaossl_it_says_so(tmp):
    kat = v2_vectors()
    v = kat["vectors"][0]
    write_pcap(tmp / "one.pcap", [(v["inputs"]["timestamp"], bytes.fromhex(v["packet"]), PUB, SUB)])
    (pkt,) = dissect(tmp / "one.pcap")
    assert pkt.get("nomq.mac_status") == "2" and not pkt.has("nomq.plaintext")
    assert pkt.get("nomq.seq") == "1000" and not pkt.experts
    # A Lua search path without lua-luaossl: header-only, and the tree says why.
    cfg = write_json_config(tmp / "kat.json", kat["keys"]["encryption_key"], kat["keys"]["hmac_key"])
    env = dict(os.environ, LUA_CPATH_5_2=str(tmp / "?.so"), LUA_PATH_5_2=str(tmp / "?.lua"),
               LUA_CPATH=str(tmp / "?.so"), LUA_PATH=str(tmp / "?.lua"))
    (pkt,) = dissect(tmp / "one.pcap", env=env)  # no keys asked for: no expert info
    assert pkt.get("nomq.mac_status") == "2" and not pkt.experts
    assert "[unverified: lua-luaossl is missing]" in tshark(tmp / "one.pcap", env=env, extra=["-V"])
    (pkt,) = dissect(tmp / "one.pcap", config_prefs(cfg), env=env)
    assert pkt.get("nomq.mac_status") == "2" and not pkt.has("nomq.plaintext")
    assert pkt.get("nomq.type") == "1" and pkt.get("nomq.qos") == "0"
    (msg,) = pkt.expert("nomq.no_crypto")
    assert "lua-luaossl" in msg


def test_unusable_config_file_is_reported(tmp):
    kat = v2_vectors()
    v = kat["vectors"][0]
    write_pcap(tmp / "one.pcap", [(v["inputs"]["timestamp"], bytes.fromhex(v["packet"]), PUB, SUB)])
    bad = tmp / "bad.json"
    bad.write_text('{"encryption_key": "00", "hmac_key": "00"}')
    (pkt,) = dissect(tmp / "one.pcap", config_prefs(bad, tmp / "missing.json"))
    msgs = pkt.expert("nomq.config_error")
    assert len(msgs) == 2
    assert "encryption_key: must be 64 hex digits" in msgs[0] and "cannot open" in msgs[1]
    assert pkt.get("nomq.mac_status") == "2"
    # The original's config files it refuses itself (legacy-v1.json config_negative_vectors).
    reasons = {"config_bad_padding": "incorrect padding in config data",
               "config_not_block_multiple": "invalid encrypted config data length",
               "config_short_keys": "encryption_key: must be 64 hex digits"}
    for v in v1_vectors()["config_negative_vectors"]:
        path = tmp / (v["name"] + ".cfg")
        path.write_text(v["file_text"])
        (pkt,) = dissect(tmp / "one.pcap", config_prefs(path))
        (msg,) = pkt.expert("nomq.config_error")
        assert reasons.pop(v["name"]) in msg, (v["name"], msg)
    assert not reasons


# --- garbage ----------------------------------------------------------------------------------

def test_garbage_datagrams_do_not_break_the_dissector(tmp):
    rng = random.Random(17)
    kat = v2_vectors()
    lv = v1_vectors()
    good = [bytes.fromhex(v["packet"]) for v in kat["vectors"]] + \
           [bytes.fromhex(v["packet"]) for v in lv["packet_vectors"]]
    datagrams = []
    for version in (1, 2):
        for n in list(range(0, 120)) + [133, 149, 1157, 2048, 2100]:
            datagrams.append(b"NM" + bytes([version]) + bytes(rng.randrange(256) for _ in range(max(0, n - 3))))
    for g in good:  # truncated at every length, and with bytes appended
        for cut in range(0, len(g), 7):
            datagrams.append(g[:cut])
        datagrams.append(g + b"\x00")
    for g in good[:8]:  # random bit flips of valid packets, every header field included
        for _ in range(40):
            b = bytearray(g)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            datagrams.append(bytes(b))
    special = [b"NM\x02\x09" + bytes(97), b"NM\x01\x01" + b"\xff" * 81, b"NM\x02\x01" + b"\xff" * 49 +
               b"\x00\x00" + bytes(32)]
    datagrams += special
    records = [(1700000000 + i * 0.001, d, PUB, SUB) for i, d in enumerate(datagrams)]
    write_pcap(tmp / "garbage.pcap", records)
    cfg = write_json_config(tmp / "k.json", kat["keys"]["encryption_key"], kat["keys"]["hmac_key"])
    cfg1 = write_json_config(tmp / "k1.json", lv["keys"]["encryption_key"], lv["keys"]["hmac_key"],
                             wire="v1")
    packets = dissect(tmp / "garbage.pcap", config_prefs(cfg, cfg1))
    assert len(packets) == len(datagrams)
    nomq_frames = [p for p in packets if "nomq" in p.protocols]
    assert len(nomq_frames) > 1000
    for p, d in zip(packets, datagrams):
        if len(d) >= 3 and d[:2] == b"NM" and d[2] in (1, 2):
            assert "nomq" in p.protocols, p.number
            if len(d) < 53:
                assert p.expert("nomq.malformed"), (p.number, d.hex())
    # The text tree too (a different code path in tshark: every item's text is built), in one
    # pass as well as two (the per-capture state is then filled and read in the same pass).
    for two_pass in (True, False):
        text = tshark(tmp / "garbage.pcap", config_prefs(cfg, cfg1), ["-V"], two_pass=two_pass)
        assert text.count("NoMQ v") >= len(nomq_frames)


# --- live captures of real nomq traffic on loopback --------------------------------------------

def free_udp_ports(n):
    socks, ports = [], []
    while len(ports) < n:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        if s.getsockname()[1] not in ports:
            ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Capture:
    """dumpcap on lo, only this test's ports: traffic of other tests on the host stays out."""

    def __init__(self, path, ports):
        assert DUMPCAP, "dumpcap (package wireshark-common, a dependency of tshark) is missing"
        flt = "udp and (%s)" % " or ".join("port %d" % p for p in ports)
        self.path = path
        self.proc = subprocess.Popen([DUMPCAP, "-i", "lo", "-f", flt, "-P", "-w", str(path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line, deadline = "", time.time() + STEP
        while "Capturing on" not in line and time.time() < deadline:
            line = self.proc.stderr.readline()
            if line == "" and self.proc.poll() is not None:
                break
        assert "Capturing on" in line, "dumpcap did not start (capture on lo needs root or " \
            "CAP_NET_RAW): %s%s" % (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        time.sleep(0.3)

    def stop(self):
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=STEP)
        assert self.path.exists()


def run_nomq(args, timeout=STEP):
    p = subprocess.run([NOMQ] + args, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "nomq %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr)
    return p


def start_sub(args):
    p = subprocess.Popen([NOMQ, "sub"] + args + ["-d"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline, seen = time.time() + STEP, []
    while time.time() < deadline:
        line = p.stderr.readline()
        if line == "":
            break
        seen.append(line)
        if "ready" in line:
            return p
    p.kill()
    raise AssertionError("nomq sub did not get ready:\n" + "".join(seen))


def finish(p):
    out, err = p.communicate(timeout=STEP)
    assert p.returncode == 0, "nomq sub: exit %d\n%s%s" % (p.returncode, out, err)
    return out


# Run by hand without a build, the live tests are skipped; CTest names the binary (NOMQ_BIN),
# and then a missing one fails them.
needs_nomq = pytest.mark.skipif("NOMQ_BIN" not in os.environ and not os.access(NOMQ, os.X_OK),
                                reason="the nomq binary is not built (set NOMQ_BIN): " + NOMQ)

MESSAGES = {0: "qos zero", 1: "qos one", 2: "qos two: é ✓"}


def live_capture(tmp, wire, master=None):
    """sub on sensors/temp; pub at QoS 0, 1 and 2; the sub leaves. Returns pcap and keys.
    `master`: the nodes use that master-secret config instead of two raw keys."""
    group, sub_port, pub_port = free_udp_ports(3)
    enc, mac = random_keys()
    common = {"wire": wire, "group": "127.255.255.255", "ip": "0.0.0.0", "port": group,
              "heartbeat_interval_s": 30}
    if master:
        sub_cfg = write_master_config(tmp / "sub.json", master, unicast_port=sub_port, **common)
        pub_cfg = write_master_config(tmp / "pub.json", master, unicast_port=pub_port, **common)
    else:
        sub_cfg = write_json_config(tmp / "sub.json", enc, mac, unicast_port=sub_port, **common)
        pub_cfg = write_json_config(tmp / "pub.json", enc, mac, unicast_port=pub_port, **common)
    cap = Capture(tmp / ("live-%s.pcap" % wire), [group, sub_port, pub_port])
    try:
        sub = start_sub(["-c", str(sub_cfg), "-t", "sensors/temp", "-C", "3", "-W", str(3 * STEP), "-v"])
        for qos in (0, 1, 2):
            args = ["pub", "-c", str(pub_cfg), "-t", "sensors/temp", "-m", MESSAGES[qos], "-q", str(qos),
                    "--priority", str(4 + qos), "--ttl", str(600 + qos)]
            if wire == "v1":
                args += ["-h", "127.0.0.1"]  # v1 has no discovery: straight to the subscriber
            run_nomq(args)
            time.sleep(0.2)
        out = finish(sub)
    finally:
        cap.stop()
    assert sorted(out.splitlines()) == sorted("sensors/temp " + m for m in MESSAGES.values())
    return cap.path, enc, mac, (group, sub_port, pub_port)


def check_live(packets, wire, ports):
    version = "1" if wire == "v1" else "2"
    group, sub_port, pub_port = ports
    nomq_packets = [p for p in packets if "nomq" in p.protocols]
    assert nomq_packets, "no NoMQ packet captured"
    by_type = {}
    for p in nomq_packets:
        assert p.get("nomq.version") == version
        assert p.get("nomq.mac_status") == "1", (p.number, p.experts)
        assert not p.expert("nomq.timestamp_stale") and not p.expert("nomq.timestamp_future")
        assert not p.expert("nomq.replay") and not p.expert("nomq.malformed"), p.experts
        ts = int(p.get("nomq.timestamp_raw"))
        assert abs(ts - time.time()) < 600
        assert p.get("nomq.timestamp") == ws_time(ts)
        assert int(p.get("nomq.length")) % 16 == 0 and int(p.get("nomq.padding")) in range(1, 17)
        by_type.setdefault(TYPES_BY_CODE[int(p.get("nomq.type"))], []).append(p)
    publishes = {int(p.get("nomq.qos")): p for p in by_type["PUBLISH"]}
    assert sorted(publishes) == [0, 1, 2]
    temp_id = colon_hex(hashlib.sha256(b"sensors/temp").digest()[:16].hex())
    for qos, p in publishes.items():
        assert p.get("nomq.message") == MESSAGES[qos]
        assert p.get("nomq.priority") == str(4 + qos)
        assert p.get("nomq.ttl") == str(600 + qos)
        assert p.get("nomq.retain") == "0"
        assert p.get("nomq.channel_id") == temp_id
        if wire == "v2":
            assert p.get("nomq.channel") == "sensors/temp"
        else:
            assert p.get("nomq.layout") == "gap20"
            assert p.get("nomq.msg_len") == str(len(MESSAGES[qos].encode()))
    for t in ("ACK", "PUBREC", "PUBREL", "PUBCOMP"):
        assert by_type.get(t), "no %s captured" % t
        for p in by_type[t]:
            assert p.get("nomq.channel_id") == temp_id
    ack = by_type["ACK"][0]
    assert ack.get("nomq.response_to") == str(publishes[1].number)
    if wire == "v2":  # v2 replies carry the priority of the PUBLISH they answer
        assert ack.get("nomq.priority") == str(4 + 1)
        for t in ("PUBREC", "PUBREL", "PUBCOMP"):
            assert {p.get("nomq.priority") for p in by_type[t]} == {str(4 + 2)}
    else:  # v1: ACK carries QoS 1, the others 0 (as the original)
        assert ack.get("nomq.flags") == "0x01" and ack.get("nomq.qos") == "1"
    q2 = publishes[2]
    rec, rel, comp = by_type["PUBREC"][0], by_type["PUBREL"][0], by_type["PUBCOMP"][0]
    assert rec.get("nomq.response_to") == str(q2.number)
    assert rel.get("nomq.response_to") == str(rec.number)
    assert comp.get("nomq.response_to") == str(rel.number)
    assert comp.get("nomq.qos2.publish") == str(q2.number)
    assert q2.get("nomq.response_in") == str(rec.number)
    assert comp.expert("nomq.qos2_complete")
    for p in (rec, rel, comp):
        assert 0 <= float(p.get("nomq.response_time")) < STEP
    link = "nomq.acked_id" if wire == "v2" else "nomq.packet_id"
    target = q2.get("nomq.message_id") if wire == "v2" else q2.get("nomq.packet_id")
    assert {p.get(link) for p in (rec, rel, comp)} == {target}
    if wire == "v2":
        for t in ("SUBSCRIBE", "UNSUBSCRIBE", "HEARTBEAT"):
            assert by_type.get(t), "no %s captured" % t
        for p in by_type["SUBSCRIBE"] + by_type["UNSUBSCRIBE"]:
            assert p.get("nomq.channel") == "sensors/temp"
        assert any(p.get("nomq.want_retained") == "1" for p in by_type["SUBSCRIBE"])
        assert any(p.get("nomq.solicit") == "1" for p in by_type["HEARTBEAT"])
        seqs = [(p.get("nomq.session"), p.get("nomq.seq")) for p in nomq_packets]
        assert len(set(seqs)) == len(seqs)
    return by_type


TYPES_BY_CODE = {v: k for k, v in TYPES.items()}


@needs_nomq
@pytest.mark.parametrize("wire", ["v2", "v1"])
def test_live_capture_decrypted_with_the_right_keys(tmp, wire):
    pcap, enc, mac, ports = live_capture(tmp, wire)
    if wire == "v2":
        keyfile = write_json_config(tmp / "keys.json", enc, mac)
    else:  # the original's obfuscated format, as a device's nomq_config.json
        keyfile = write_legacy_config(tmp / "nomq_config.json", enc, mac)
    packets = dissect(pcap, config_prefs(keyfile))
    check_live(packets, wire, ports)
    # The wrong keys: every datagram is flagged, nothing is decrypted.
    wrong = write_json_config(tmp / "wrong.json", *random_keys())
    packets = [p for p in dissect(pcap, config_prefs(wrong)) if "nomq" in p.protocols]
    assert packets
    for p in packets:
        assert p.get("nomq.mac_status") == "0"
        assert len(p.expert("nomq.mac_bad")) == 1
        assert not p.has("nomq.plaintext") and not p.has("nomq.message")
    # A display filter on the decoded capture.
    flt = dissect(pcap, config_prefs(keyfile), display_filter='nomq.type == "PUBLISH" && nomq.qos == 2')
    assert [p.get("nomq.message") for p in flt] == [MESSAGES[2]]


@needs_nomq
def test_live_capture_with_a_master_secret_config(tmp):
    """Nodes whose keys are derived from a master secret (docs/protocol.md, key schedule): the
    dissector derives the same keys (wire_key_sets); another group id or epoch derives others."""
    master = {"master_secret": os.urandom(32).hex(), "group_id": "plant-3", "key_epoch": 2}
    pcap, _, _, ports = live_capture(tmp, "v2", master=master)
    keyfile = write_master_config(tmp / "keys.json", master)
    check_live(dissect(pcap, config_prefs(keyfile)), "v2", ports)
    for i, other in enumerate((dict(master, group_id="plant-4"), dict(master, key_epoch=3))):
        wrong = write_master_config(tmp / ("other%d.json" % i), other)
        packets = [p for p in dissect(pcap, config_prefs(wrong)) if "nomq" in p.protocols]
        assert packets
        assert all(p.get("nomq.mac_status") == "0" for p in packets)


PEER = ROOT / "tests" / "legacy" / "nomq_legacy_peer.py"


@needs_nomq
def test_live_capture_of_an_original_device_publishing_to_nomq(tmp):
    """The device model of tests/legacy (written from LEGACY-WIRE-FORMAT.md) publishes at QoS 2
    to `nomq sub --wire v1`: its SUBSCRIBE to itself and its device16 PUBLISH, which nomq never
    sends, on the wire; keys from the device's own config file (the original's format)."""
    group, sub_port, dev_port = free_udp_ports(3)
    enc, mac = random_keys()
    dev_cfg = write_legacy_config(tmp / "nomq_config.json", enc, mac, port=dev_port)
    sub_cfg = write_json_config(tmp / "sub.json", enc, mac, wire="v1", group="127.255.255.255",
                                port=group, unicast_port=sub_port)
    cap = Capture(tmp / "device.pcap", [group, sub_port, dev_port])
    try:
        sub = start_sub(["-c", str(sub_cfg), "-t", "sensors/temp", "-C", "1", "-W", str(STEP), "-v"])
        dev = subprocess.run([sys.executable, str(PEER), "--config", str(dev_cfg), "pub", "-t",
                              "sensors/temp", "-m", "temperature=21.5", "-q", "2", "--priority", "3",
                              "--to", "127.0.0.1:%d" % group, "--port", str(dev_port),
                              "--subscribe-self", "--wait", str(STEP)],
                             capture_output=True, text=True, timeout=2 * STEP)
        out = finish(sub)
    finally:
        cap.stop()
    assert dev.returncode == 0, dev.stdout + dev.stderr
    assert out == "sensors/temp temperature=21.5\n"
    packets = [p for p in dissect(cap.path, config_prefs(dev_cfg)) if "nomq" in p.protocols]
    by_type = {}
    for p in packets:
        assert p.get("nomq.version") == "1"
        assert p.get("nomq.mac_status") == "1" and p.get("nomq.key_set") == "nomq_config.json"
        by_type.setdefault(TYPES_BY_CODE[int(p.get("nomq.type"))], []).append(p)
    assert sorted(by_type) == ["PUBCOMP", "PUBLISH", "PUBREC", "PUBREL", "SUBSCRIBE"]
    (subscribe,) = by_type["SUBSCRIBE"]
    assert subscribe.get("nomq.channel") == "sensors/temp"
    assert subscribe.get("nomq.priority") == "3" and subscribe.get("nomq.flags") == "0x03"
    assert subscribe.get("nomq.ttl") == "3600"
    (publish,) = by_type["PUBLISH"]
    assert publish.get("nomq.layout") == "device16" and not publish.has("nomq.gap")
    assert publish.get("nomq.message") == "temperature=21.5"
    assert publish.get("nomq.msg_len") == "16"
    assert publish.get("nomq.qos") == "2" and publish.get("nomq.priority") == "3"
    assert publish.get("nomq.inner_timestamp") == publish.get("nomq.timestamp_raw")
    rec, rel, comp = by_type["PUBREC"][0], by_type["PUBREL"][0], by_type["PUBCOMP"][0]
    for p in (rec, rel, comp):
        assert p.get("nomq.acked_id") == publish.get("nomq.packet_id") == p.get("nomq.packet_id")
        assert p.get("nomq.flags") == "0x00"
    assert rec.get("nomq.response_to") == str(publish.number)
    assert rel.get("nomq.response_to") == str(rec.number)
    assert comp.get("nomq.response_to") == str(rel.number)
    assert comp.expert("nomq.qos2_complete")
    # The device's replies carry its own session, nomq's replies nomq's.
    assert rel.get("nomq.session") == publish.get("nomq.session") == subscribe.get("nomq.session")
    assert rec.get("nomq.session") == comp.get("nomq.session") != publish.get("nomq.session")
