#!/usr/bin/env python3
"""A test peer that behaves like an original MicroPython NoMQ device (wire v1).

Written from tests/vectors/LEGACY-WIRE-FORMAT.md (the section numbers in the comments refer to
it), not from the C++ of this repository, so that the C++ v1 codec and the `nomq` tool can be
checked against a second, independent reading of the format.  It lives in tests/ and is not part
of the product.

What it models:
  * the codec of revision 8c6e21b (HEAD): header, IV sent twice, AES-256-CBC, the keyed hash
    SHA-256(data || hmac_key) that the original calls "HMAC";
  * the receiver of HEAD (message read at plaintext offset 20, length check) and, with
    --revision ea96327, the receiver of revisions ea96327..1f97757 (no length check);
  * the sender (16-byte inner header "device16"), its pending table of 50 and its QoS 2 state
    machine, without retransmission;
  * the checks in the order of section 8, the nonce cache (100 entries, 30 s purge), replies to
    the datagram's source address, the drop of every packet whose channel the node has not
    subscribed to itself (so a publisher sees ACK/PUBREC/PUBCOMP only with --subscribe-self);
  * the clock epoch (1970, or 2000 as on ESP32/ESP8266 MicroPython);
  * the obfuscated config file of section 10.

Run `nomq_legacy_peer.py --help` for the command line.  Every event is printed as one JSON line
on stdout and flushed, so tests can synchronise on lines instead of sleeping.

Safety: the peer binds to 127.0.0.1 by default and refuses to send to or bind on anything but a
loopback address unless --namespace-test is given (for tests that create their own network
namespaces).
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, NoReturn, Optional

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# --- constants (sections 2, 6, 8, 9, 10) --------------------------------------------------------
MAGIC = b"NM"
VERSION = 1
HEADER_LEN = 53
MAC_LEN = 32
MIN_DATAGRAM = 85
TIMESTAMP_WINDOW = 30
NONCE_CACHE_SIZE = 100
NONCE_CACHE_AGE = 30
MAX_PENDING = 50
MAX_QOS2_RECEIVER_STATES = 50
MAX_RETAINED_PER_CHANNEL = 5
MAX_CHANNELS = 20
MAX_MESSAGE_CHARS = 1024
SESSION_TIMEOUT = 300
DEFAULT_TTL = 3600
RECV_BUFFER = 2048
EPOCH_2000_OFFSET = 946684800
ORIGINAL_PACING_S = 0.1

PUBLISH, SUBSCRIBE, ACK, UNSUBSCRIBE, HEARTBEAT, PUBREC, PUBREL, PUBCOMP = range(1, 9)
TYPE_NAMES = {PUBLISH: "PUBLISH", SUBSCRIBE: "SUBSCRIBE", ACK: "ACK", UNSUBSCRIBE: "UNSUBSCRIBE",
              HEARTBEAT: "HEARTBEAT", PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP"}

CONFIG_KEY = hashlib.sha256(b"nomq_config_key").digest()
# The keys of the original's utils/config_gen.py (the vectors use them).
SAMPLE_ENCRYPTION_KEY = "0123456789abcdef" * 4
SAMPLE_HMAC_KEY = "abcdef0123456789" * 4

# Rejection reasons: the vectors' tags and the original's log text for each.
REASONS = {
    "too_short": "Packet too short",
    "bad_magic": "Invalid magic number",
    "bad_version": "Unsupported protocol version",
    "stale_timestamp": "Possible replay attack",
    "bad_length": "Invalid packet length",
    "bad_mac": "HMAC verification failed",
    "bad_padding": "Invalid padding",
    "bad_block_size": "Packet parsing error: blksize",
    "empty_plaintext": "Unexpected error",
    "unknown_channel": "Missing channel",
    "publish_bad_msg_len": "Invalid message length",
    "publish_bad_utf8": "Message decode error",
    "publish_payload_short": "Invalid payload",
    "replay_nonce": "Replay attack detected",
}

# head: 1662f8a..8c6e21b (offset 20, length check). ea96327: ea96327..1f97757 (offset 20, no length
# check). 4336f1a: the first revision with today's header, reading the message at offset 16; only
# the two outcomes of section 7's table are documented for it, so its mode reproduces exactly
# those (no length check; the short-payload check of the later revisions is kept).
REVISIONS = ("head", "ea96327", "4336f1a")


class Drop(Exception):
    """A datagram the original would drop; `tag` is one of REASONS."""

    def __init__(self, tag: str):
        super().__init__(REASONS[tag])
        self.tag = tag


class ConfigError(Exception):
    """A config file the original refuses to start with."""


# --- primitives (section 3) ---------------------------------------------------------------------
def channel_id(name: str) -> bytes:
    return hashlib.sha256(name.encode("utf-8")).digest()[:16]


def keyed_hash(data: bytes, hmac_key: bytes) -> bytes:
    # Not HMAC: a plain SHA-256 with the key appended (section 3).
    return hashlib.sha256(data + hmac_key).digest()


def pkcs7_pad(data: bytes) -> bytes:
    n = 16 - len(data) % 16
    return data + bytes([n]) * n


def pkcs7_unpad_or_none(data: bytes) -> Optional[bytes]:
    if not data:
        return None
    n = data[-1]
    if n < 1 or n > 16 or data[-n:] != bytes([n]) * n:
        return None
    return data[:-n]


def aes_cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()


def publish_flags(qos: int, retain: bool, priority: int) -> int:
    return (qos & 3) | (0x04 if retain else 0) | (min(max(priority, 0), 15) << 4)


def subscribe_flags(priority: int) -> int:
    # Low nibble, neither clamped nor shifted (section 5).
    return priority & 0x0F


def device16_plaintext(timestamp: int, nonce: int, message: bytes) -> bytes:
    return struct.pack(">QII", timestamp, nonce, len(message)) + message


def gap20_plaintext(timestamp: int, nonce: int, message: bytes, gap: bytes = b"\0" * 4) -> bytes:
    # Not something an original sender produces: the layout a HEAD receiver reads intact.
    return struct.pack(">QII", timestamp, nonce, len(message)) + gap + message


def encode(ptype: int, flags: int, packet_id: int, session_id: int, ttl: int, timestamp: int,
           iv: bytes, chan_id: bytes, plaintext: bytes, enc_key: bytes, hmac_key: bytes) -> bytes:
    """One datagram as the original builds it (section 2): the IV goes in the header and again in
    front of the ciphertext; the keyed hash covers everything before it."""
    ciphertext = aes_cbc(enc_key, iv, pkcs7_pad(plaintext), encrypt=True)
    payload = iv + ciphertext
    head = (MAGIC + struct.pack(">BBBIIH", VERSION, ptype, flags, packet_id, session_id, ttl) + iv
            + struct.pack(">I", timestamp) + chan_id + struct.pack(">H", len(payload)))
    assert len(head) == HEADER_LEN
    body = head + payload
    return body + keyed_hash(body, hmac_key)


@dataclass
class Packet:
    ptype: int
    flags: int
    packet_id: int
    session_id: int
    ttl: int
    header_iv: bytes
    timestamp: int
    chan_id: bytes
    plaintext: bytes


def decode(datagram: bytes, now: float, enc_key: bytes, hmac_key: bytes) -> Packet:
    """Steps 1-8 of section 8, in the original's order.  Raises Drop."""
    if len(datagram) < MIN_DATAGRAM:
        raise Drop("too_short")
    if datagram[0:2] != MAGIC:
        raise Drop("bad_magic")
    if datagram[2] != VERSION:
        raise Drop("bad_version")
    ptype, flags, packet_id, session_id, ttl = struct.unpack(">BBIIH", datagram[3:15])
    header_iv = datagram[15:31]
    (timestamp,) = struct.unpack(">I", datagram[31:35])
    # Before the MAC, with the receiver's fractional clock: exactly 30 s passes, 30.5 does not.
    if abs(now - timestamp) > TIMESTAMP_WINDOW:
        raise Drop("stale_timestamp")
    chan_id = datagram[35:51]
    (length,) = struct.unpack(">H", datagram[51:53])
    if len(datagram) < HEADER_LEN + length + MAC_LEN:
        raise Drop("bad_length")
    body = datagram[:HEADER_LEN + length]
    # "The MAC" is everything after the payload: one trailing byte makes it fail.
    if datagram[HEADER_LEN + length:] != keyed_hash(body, hmac_key):
        raise Drop("bad_mac")
    payload = datagram[HEADER_LEN:HEADER_LEN + length]
    iv, ciphertext = payload[:16], payload[16:]
    if len(iv) != 16 or len(ciphertext) % 16 != 0:
        raise Drop("bad_block_size")
    if not ciphertext:
        raise Drop("empty_plaintext")
    plaintext = pkcs7_unpad_or_none(aes_cbc(enc_key, iv, ciphertext, encrypt=False))
    if plaintext is None:
        raise Drop("bad_padding")
    return Packet(ptype, flags, packet_id, session_id, ttl, header_iv, timestamp, chan_id, plaintext)


def read_publish(plaintext: bytes, revision: str) -> tuple[int, str]:
    """Returns (nonce, message) as the given receiver revision reads it (section 7)."""
    if len(plaintext) < 20:
        raise Drop("publish_payload_short")
    _, nonce, msg_len = struct.unpack(">QII", plaintext[:16])
    start = 16 if revision == "4336f1a" else 20
    raw = plaintext[start:start + msg_len]
    if revision == "head" and len(raw) < msg_len:
        raise Drop("publish_bad_msg_len")
    try:
        return nonce, raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Drop("publish_bad_utf8") from None


# --- config file (section 10) -------------------------------------------------------------------
def read_config_text(text: str) -> dict:
    try:
        blob = base64.b64decode(text.strip(), validate=True)
    except ValueError as e:
        raise ConfigError(f"Failed to load config: not base64 ({e})") from None
    if len(blob) < 16 or len(blob) % 16 != 0:
        raise ConfigError("Failed to load config: Invalid encrypted config data length")
    if len(blob) == 16:
        raise ConfigError("Failed to load config: Incorrect padding in config data")
    plain = pkcs7_unpad_or_none(aes_cbc(CONFIG_KEY, blob[:16], blob[16:], encrypt=False))
    if plain is None:
        raise ConfigError("Failed to load config: Incorrect padding in config data")
    try:
        cfg = json.loads(plain.decode("utf-8"))
    except ValueError as e:
        raise ConfigError(f"Failed to load config: invalid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise ConfigError("Failed to load config: JSON is not an object")
    try:
        enc = bytes.fromhex(cfg["encryption_key"])
        mac = bytes.fromhex(cfg["hmac_key"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("Failed to load config: Encryption and HMAC keys must be 32 bytes") from None
    if len(enc) != 32 or len(mac) != 32:
        raise ConfigError("Failed to load config: Encryption and HMAC keys must be 32 bytes")
    cfg.setdefault("ip", "0.0.0.0")
    cfg.setdefault("port", 8888)
    cfg.setdefault("use_ipv6", False)
    return cfg


def write_config_text(ip: str, port: int, use_ipv6: bool, encryption_key: str, hmac_key: str,
                      iv: Optional[bytes] = None) -> str:
    # Key order and separators of CPython's json.dumps of the original's dictionary.
    data = {"ip": ip, "port": port, "use_ipv6": use_ipv6, "encryption_key": encryption_key,
            "hmac_key": hmac_key}
    iv = os.urandom(16) if iv is None else iv
    ct = aes_cbc(CONFIG_KEY, iv, pkcs7_pad(json.dumps(data).encode("utf-8")), encrypt=True)
    return base64.b64encode(iv + ct).decode("ascii") + "\n"


# --- the node (sections 6, 8, 9) ----------------------------------------------------------------
@dataclass
class PendingEntry:
    packet_id: int
    channel: str
    qos: int
    state: str  # "PUBLISH_SENT" until ACK (QoS 1) / PUBREC (QoS 2); then "PUBREL_SENT"
    timestamp: float
    ttl: int
    dest: tuple
    done: bool = False
    final: str = ""


@dataclass
class Node:
    """One original node: its subscriptions, nonce cache, pending and QoS 2 tables, retained store.

    `clock()` gives Unix time (float); the node's own time is that minus the epoch offset.
    `rand(n)` gives n random bytes; every draw the original makes goes through it, in the
    original's order, so tests can inject the vectors' recorded draws.
    `send(datagram, addr)` puts a datagram on the wire.  Every call returns a list of events
    (dicts), the same ones the command line prints."""

    enc_key: bytes
    hmac_key: bytes
    own_addr: tuple
    clock: Callable[[], float] = time.time
    rand: Callable[[int], bytes] = os.urandom
    send: Callable[[bytes, tuple], None] = lambda d, a: None
    revision: str = "head"
    epoch: int = 1970
    session_id: int = 0
    session_start: float = 0.0
    subscriptions: dict = field(default_factory=dict)  # chan_id -> (name, stored priority)
    nonce_cache: list = field(default_factory=list)  # [(nonce, receipt time)]
    pending: "collections.OrderedDict[int, PendingEntry]" = field(
        default_factory=collections.OrderedDict)
    qos2_receiver: "collections.OrderedDict[int, str]" = field(
        default_factory=collections.OrderedDict)
    retained: dict = field(default_factory=dict)  # channel -> [(datagram, timestamp, ttl)]
    untracked: int = 0
    # Not the original: replies to leave unsent, as if the network lost them (loss tests).
    lose_replies: int = 0
    lose_types: list = field(default_factory=list)  # lose the first reply of each type listed

    def __post_init__(self):
        if self.revision not in REVISIONS:
            raise ValueError(f"unknown revision {self.revision!r}")
        if self.epoch not in (1970, 2000):
            raise ValueError("epoch must be 1970 or 2000")
        self.session_id = self._u32()
        self.session_start = self.now()

    def now(self) -> float:
        return self.clock() - (EPOCH_2000_OFFSET if self.epoch == 2000 else 0)

    def _u32(self) -> int:
        return struct.unpack(">I", self.rand(4))[0]

    def _packet(self, ptype, flags, packet_id, ttl, chan_id, plaintext, now) -> bytes:
        iv = self.rand(16)
        return encode(ptype, flags, packet_id, self.session_id, ttl, int(now), iv, chan_id,
                      plaintext, self.enc_key, self.hmac_key)

    # --- sender side
    def subscribe(self, channel: str, priority: int = 0) -> list:
        cid = channel_id(channel)
        if cid not in self.subscriptions and len(self.subscriptions) >= MAX_CHANNELS:
            return [{"event": "error", "error": "Maximum channels reached", "channel": channel}]
        self.subscriptions[cid] = (channel, min(max(priority, 0), 15))
        now = self.now()
        datagram = self._packet(SUBSCRIBE, subscribe_flags(priority), self._u32(), DEFAULT_TTL,
                                cid, channel.encode("utf-8"), now)
        # Sent to the node's own address (section 9): a local filter, nothing reaches others.
        self.send(datagram, self.own_addr)
        events = [{"event": "subscribed", "channel": channel}]
        for old, _, _ in self.retained.get(channel, []):
            self.send(old, self.own_addr)  # byte for byte, old timestamp and nonce
            events.append({"event": "retained_resent", "channel": channel})
        return events

    def unsubscribe(self, channel: str) -> list:
        cid = channel_id(channel)
        self.subscriptions.pop(cid, None)
        datagram = self._packet(UNSUBSCRIBE, 0, self._u32(), DEFAULT_TTL, cid,
                                channel.encode("utf-8"), self.now())
        self.send(datagram, self.own_addr)
        return [{"event": "unsubscribed", "channel": channel}]

    def publish(self, channel: str, message: str, qos: int = 0, retain: bool = False,
                ttl: int = DEFAULT_TTL, priority: int = 0, dest: tuple = ("255.255.255.255", 8888),
                inner_layout: str = "device16") -> tuple[int, list]:
        """Sends one PUBLISH, once.  Returns (packet_id, events).  `inner_layout` other than
        device16 is NOT something an original sender does; it exists to build vectors."""
        if len(message) > MAX_MESSAGE_CHARS:
            raise ValueError(f"message longer than {MAX_MESSAGE_CHARS} characters")
        if not 0 <= ttl <= 0xFFFF:
            raise ValueError("ttl must fit 16 bits (the original raises OverflowError)")
        if qos not in (0, 1, 2, 3):
            raise ValueError("qos must be 0..3")
        now = self.now()
        if now - self.session_start > SESSION_TIMEOUT:
            self.session_id = self._u32()
            self.session_start = now
            self.nonce_cache.clear()
        packet_id = self._u32()
        nonce = self._u32()
        raw = message.encode("utf-8")
        plaintext = (device16_plaintext(int(now), nonce, raw) if inner_layout == "device16"
                     else gap20_plaintext(int(now), nonce, raw))
        datagram = self._packet(PUBLISH, publish_flags(qos, retain, priority), packet_id, ttl,
                                channel_id(channel), plaintext, now)
        events = []
        if retain:
            kept = self.retained.setdefault(channel, [])
            kept.append((datagram, now, ttl))
            del kept[:-MAX_RETAINED_PER_CHANNEL]
        if qos in (1, 2):
            if len(self.pending) < MAX_PENDING:
                self.pending[packet_id] = PendingEntry(packet_id, channel, qos, "PUBLISH_SENT",
                                                       now, ttl, dest)
            else:
                self.untracked += 1
                events.append({"event": "untracked", "packet_id": packet_id,
                               "why": f"{MAX_PENDING} publishes already pending"})
        self.send(datagram, dest)
        events.append({"event": "published", "packet_id": packet_id, "channel": channel, "qos": qos,
                       "nonce": nonce, "to": f"{dest[0]}:{dest[1]}"})
        return packet_id, events

    def heartbeat_response(self, addr: tuple) -> None:
        datagram = self._packet(HEARTBEAT, 0, self._u32(), DEFAULT_TTL, bytes(16), b"", self.now())
        self.send(datagram, addr)

    def _reply(self, ptype: int, packet_id: int, chan_id: bytes, addr: tuple, now: float) -> dict:
        datagram = self._packet(ptype, 1 if ptype == ACK else 0, packet_id, DEFAULT_TTL, chan_id,
                                struct.pack(">I", packet_id), now)
        if self.lose_replies > 0 or TYPE_NAMES[ptype] in self.lose_types:
            if TYPE_NAMES[ptype] in self.lose_types:
                self.lose_types.remove(TYPE_NAMES[ptype])
            else:
                self.lose_replies -= 1
            return {"event": "reply_lost", "type": TYPE_NAMES[ptype], "packet_id": packet_id,
                    "to": f"{addr[0]}:{addr[1]}"}
        self.send(datagram, addr)
        return {"event": "sent", "type": TYPE_NAMES[ptype], "packet_id": packet_id,
                "to": f"{addr[0]}:{addr[1]}"}

    # --- receiver side
    def receive(self, datagram: bytes, src: tuple) -> list:
        """One datagram through section 8.  Returns the events it caused."""
        datagram = datagram[:RECV_BUFFER]
        now = self.now()
        frm = f"{src[0]}:{src[1]}"
        try:
            pkt = decode(datagram, now, self.enc_key, self.hmac_key)
            if pkt.chan_id not in self.subscriptions:
                raise Drop("unknown_channel")
            events = self._dispatch(pkt, src, now)
        except Drop as d:
            return [{"event": "drop", "reason": d.tag, "log": REASONS[d.tag], "from": frm}]
        self._housekeeping(now)
        return events

    def _dispatch(self, pkt: Packet, src: tuple, now: float) -> list:
        frm = f"{src[0]}:{src[1]}"
        tname = TYPE_NAMES.get(pkt.ptype, f"type{pkt.ptype}")
        if pkt.ptype == PUBLISH:
            nonce, message = read_publish(pkt.plaintext, self.revision)
            if any(n == nonce for n, _ in self.nonce_cache):
                raise Drop("replay_nonce")
            self.nonce_cache = [(n, t) for n, t in self.nonce_cache if now - t <= NONCE_CACHE_AGE]
            self.nonce_cache.append((nonce, now))
            del self.nonce_cache[:-NONCE_CACHE_SIZE]
            qos = pkt.flags & 3
            events = [{"event": "message", "channel": self.subscriptions[pkt.chan_id][0],
                       "message": message, "qos": qos, "retain": bool(pkt.flags & 4),
                       "priority": pkt.flags >> 4, "packet_id": pkt.packet_id, "from": frm}]
            # Delivered first, answered after (section 8, step 11).
            if qos == 1:
                events.append(self._reply(ACK, pkt.packet_id, pkt.chan_id, src, now))
            elif qos == 2:
                self.qos2_receiver[pkt.packet_id] = "PUBREC_SENT"
                self.qos2_receiver.move_to_end(pkt.packet_id)
                while len(self.qos2_receiver) > MAX_QOS2_RECEIVER_STATES:
                    self.qos2_receiver.popitem(last=False)
                events.append(self._reply(PUBREC, pkt.packet_id, pkt.chan_id, src, now))
            return events
        if pkt.ptype == ACK:
            entry = self.pending.pop(pkt.packet_id, None)
            if entry is None:
                return [{"event": "no_effect", "type": tname, "packet_id": pkt.packet_id,
                         "from": frm}]
            entry.done, entry.final = True, "ACKED"
            return [{"event": "ack_received", "packet_id": pkt.packet_id, "from": frm}]
        if pkt.ptype == PUBREC:
            entry = self.pending.get(pkt.packet_id)
            if entry is None or entry.state != "PUBLISH_SENT":
                return [{"event": "no_effect", "type": tname, "packet_id": pkt.packet_id,
                         "from": frm}]
            event = self._reply(PUBREL, pkt.packet_id, pkt.chan_id, src, now)
            entry.state = "PUBREL_SENT"
            return [{"event": "pubrec_received", "packet_id": pkt.packet_id, "from": frm}, event]
        if pkt.ptype == PUBREL:
            if self.qos2_receiver.get(pkt.packet_id) != "PUBREC_SENT":
                return [{"event": "no_effect", "type": tname, "packet_id": pkt.packet_id,
                         "from": frm}]
            event = self._reply(PUBCOMP, pkt.packet_id, pkt.chan_id, src, now)
            del self.qos2_receiver[pkt.packet_id]
            return [{"event": "pubrel_received", "packet_id": pkt.packet_id, "from": frm}, event]
        if pkt.ptype == PUBCOMP:
            entry = self.pending.get(pkt.packet_id)
            if entry is None or entry.state != "PUBREL_SENT":
                return [{"event": "no_effect", "type": tname, "packet_id": pkt.packet_id,
                         "from": frm}]
            del self.pending[pkt.packet_id]
            entry.done, entry.final = True, "COMPLETED"
            return [{"event": "qos2_complete", "packet_id": pkt.packet_id, "from": frm}]
        if pkt.ptype == HEARTBEAT:
            # Unreachable in the original (a zero channel id never matches a subscription), kept
            # for completeness.
            self.heartbeat_response(src)
            return [{"event": "sent", "type": "HEARTBEAT", "to": frm}]
        return [{"event": "no_effect", "type": tname, "packet_id": pkt.packet_id, "from": frm}]

    def _housekeeping(self, now: float) -> None:
        for pid in [p for p, e in self.pending.items() if now - e.timestamp > e.ttl]:
            del self.pending[pid]
        for channel, kept in self.retained.items():
            kept[:] = [k for k in kept if now - k[1] <= k[2]]


# --- vector checks (used by `selftest` and by test_legacy_peer.py) ------------------------------
class Draws:
    """A rand() that hands out recorded draws in order and insists on their sizes."""

    def __init__(self, draws=()):
        self.queue = [bytes.fromhex(h) for _, h in draws]
        self.labels = [label for label, _ in draws]
        self.fallback_counter = 0

    def load(self, draws) -> None:
        self.queue = [bytes.fromhex(h) for _, h in draws]
        self.labels = [label for label, _ in draws]

    def __call__(self, n: int) -> bytes:
        if self.queue:
            value = self.queue.pop(0)
            label = self.labels.pop(0)
            if len(value) != n:
                raise AssertionError(f"draw {label} has {len(value)} bytes, the code asked {n}")
            return value
        # Draws the vectors did not record (set-up only): deterministic filler.
        self.fallback_counter += 1
        return hashlib.sha256(b"peer-fallback|%d" % self.fallback_counter).digest()[:n]


class Clock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def instance_session_draw(vectors: dict, name: str):
    return vectors["instances"][name]["random_draws"]


def make_node(vectors: dict, instance: Optional[str], clock_t: float, revision: str = "head",
              epoch: int = 1970, subscriptions=(), own_addr=("127.0.0.1", 0)):
    """A node with the vectors' keys; `instance` A/B/R gives it that instance's session id."""
    sent = []
    draws = Draws(instance_session_draw(vectors, instance) if instance else ())
    clock = Clock(clock_t)
    node = Node(bytes.fromhex(vectors["keys"]["encryption_key"]),
                bytes.fromhex(vectors["keys"]["hmac_key"]), own_addr, clock=clock, rand=draws,
                send=lambda d, a: sent.append((d, a)), revision=revision, epoch=epoch)
    # Subscriptions made before the vectors' draws start (set-up, filler randomness).
    for ch in subscriptions:
        node.subscriptions[channel_id(ch)] = (ch, 0)
    return node, draws, clock, sent


def build_packet_vector(vectors: dict, v: dict) -> bytes:
    """Rebuilds one packet vector by running the node's own sender code with the recorded draws."""
    inp = v["inputs"]
    ptype = inp["packet_type"]
    epoch = 2000 if inp["timestamp"] != int(v["sender_clock"]) else 1970
    sender = v["sender"] if v["sender"] in vectors["instances"] else "A"
    # sender_clock is Unix time; an epoch-2000 node subtracts the offset itself.
    node, draws, clock, sent = make_node(vectors, sender, v["sender_clock"], epoch=epoch)
    node.enc_key = bytes.fromhex(v["encryption_key"])
    node.hmac_key = bytes.fromhex(v["hmac_key"])
    draws.load(v["random_draws"])
    dest = tuple(v["sent_to"])
    if ptype == PUBLISH:
        pub = inp["publish"]
        layout = "gap20" if pub["inner_layout"].startswith("gap20") else "device16"
        node.publish(inp["channel"], pub["message"], qos=inp["qos"], retain=inp["retain"],
                     ttl=inp["ttl"], priority=inp["priority_arg"], dest=dest, inner_layout=layout)
    elif ptype == SUBSCRIBE:
        node.own_addr = dest
        node.subscribe(inp["channel"], inp["priority_arg"])
    elif ptype == UNSUBSCRIBE:
        node.own_addr = dest
        node.unsubscribe(inp["channel"])
    elif ptype == HEARTBEAT:
        node.heartbeat_response(dest)
    else:
        node._reply(ptype, inp["packet_id"], channel_id(inp["channel"]), dest, node.now())
    if draws.queue:
        raise AssertionError(f"{v['name']}: draws left unused: {draws.labels}")
    if len(sent) != 1 or sent[0][1] != dest:
        raise AssertionError(f"{v['name']}: expected one datagram to {dest}, got {sent}")
    return sent[0][0]


def receiver_verdict(vectors: dict, v: dict, revision: str = "head"):
    """Feeds a negative/quirk vector to a receiver R.  Returns (reasons, delivered, events)."""
    node, _, clock, sent = make_node(vectors, "R", v["receiver_clock"], revision=revision,
                                     subscriptions=v["receiver_subscriptions"])
    datagrams = v.get("datagrams_in_order") or [v["packet"]]
    reasons, delivered, events = [], [], []
    for hexd in datagrams:
        ev = node.receive(bytes.fromhex(hexd), ("127.0.0.1", 40001))
        events += ev
        for e in ev:
            if e["event"] == "drop":
                reasons.append(e["reason"])
            elif e["event"] == "message":
                delivered.append({"channel": e["channel"], "message": e["message"]})
                reasons.append("accepted")
            elif e["event"] == "no_effect":
                reasons.append("accepted_no_effect")
    return reasons, delivered, events


def vector_checks(vectors: dict):
    """Yields (name, ok, detail) for every check of the peer against legacy-v1.json."""
    by_name = {v["name"]: v for v in vectors["packet_vectors"]}
    for v in vectors["packet_vectors"]:
        try:
            got = build_packet_vector(vectors, v).hex()
            yield ("packet/" + v["name"], got == v["packet"], "" if got == v["packet"] else got)
        except AssertionError as e:
            yield ("packet/" + v["name"], False, str(e))
        if "head_receiver" in v:
            hr = v["head_receiver"]
            epoch = 2000 if v["inputs"]["timestamp"] != int(v["sender_clock"]) else 1970
            node, _, _, sent = make_node(vectors, "R", hr["receiver_clock"], epoch=epoch,
                                         subscriptions=["sensors/temp"])
            ev = node.receive(bytes.fromhex(v["packet"]), ("127.0.0.1", 40001))
            delivered = [{"channel": e["channel"], "message": e["message"]} for e in ev
                         if e["event"] == "message"]
            replies = [e["type"] for e in ev if e["event"] == "sent"]
            ok = delivered == hr["delivered"] and replies == hr["replies"]
            yield ("head_receiver/" + v["name"], ok, json.dumps(ev))
    for v in vectors["negative_vectors"] + vectors["receiver_quirk_vectors"]:
        reasons, delivered, events = receiver_verdict(vectors, v)
        if v["reason"] == "replay_nonce":
            ok = reasons == ["accepted", "replay_nonce"]
        else:
            ok = reasons == [v["reason"]]
        ok = ok and delivered == v["delivered"]
        yield ("receiver/" + v["name"], ok, json.dumps(events))
    for seq in vectors["sequences"]:
        ok, detail = check_sequence(vectors, seq, by_name)
        yield ("sequence/" + seq["name"], ok, detail)
    for c in vectors["config_vectors"]:
        try:
            cfg = read_config_text(c["file_text"])
            ok = all(cfg[k] == val for k, val in c["config"].items())
        except ConfigError as e:
            ok, cfg = False, str(e)
        yield ("config_read/" + c["name"], ok, json.dumps(cfg))
        conf = c["config"]
        text = write_config_text(conf["ip"], conf["port"], conf["use_ipv6"],
                                 conf["encryption_key"], conf["hmac_key"],
                                 iv=bytes.fromhex(c["iv"]))
        yield ("config_write/" + c["name"], text == c["file_text"], text)
    for c in vectors["config_negative_vectors"]:
        try:
            read_config_text(c["file_text"])
            yield ("config_reject/" + c["name"], False, "accepted")
        except ConfigError as e:
            expected = c["original_log"][0].replace("[ERROR] ", "")
            yield ("config_reject/" + c["name"], str(e) == expected, str(e))


def check_sequence(vectors: dict, seq: dict, by_name: dict):
    """Replays a recorded exchange between instances A and B; replies must match byte for byte
    (the vectors record the repliers' IV draws, which are injected)."""
    name = seq["name"]
    if name == "retained_resend_on_local_subscribe":
        pub, sub = by_name["retained_publish"], by_name["subscribe_status"]
        node, draws, clock, sent = make_node(vectors, "A", pub["sender_clock"],
                                             own_addr=tuple(sub["sent_to"]))
        draws.load(pub["random_draws"])
        node.publish("status/door", pub["inputs"]["publish"]["message"], qos=0, retain=True,
                     dest=tuple(pub["sent_to"]))
        clock.t = sub["sender_clock"]
        draws.load(sub["random_draws"])
        node.subscribe("status/door", 0)
        want = [(d["packet"], tuple(d["to"])) for d in seq["datagrams_sent_by_A"]]
        got = [(d.hex(), a) for d, a in sent[1:]]
        return got == want, json.dumps([g[0][:40] for g in got])
    # qos1_exchange / qos2_exchange
    first = by_name[seq["steps"][0]["reply"]]
    orig = by_name[{"qos1_exchange": "publish_q1_p5", "qos2_exchange": "publish_q2_p0"}[name]]
    a, a_draws, a_clock, a_sent = make_node(vectors, "A", orig["sender_clock"],
                                            subscriptions=["sensors/temp"],
                                            own_addr=("127.0.0.1", 47001))
    b, b_draws, b_clock, b_sent = make_node(vectors, "B", first["sender_clock"],
                                            subscriptions=["sensors/temp"],
                                            own_addr=("127.0.0.1", 47002))
    a_draws.load(orig["random_draws"])
    inp = orig["inputs"]
    a.publish(inp["channel"], inp["publish"]["message"], qos=inp["qos"], retain=inp["retain"],
              ttl=inp["ttl"], priority=inp["priority_arg"], dest=("127.0.0.1", 47002))
    nodes = {"A": (a, a_draws, a_clock, a_sent, ("127.0.0.1", 47001)),
             "B": (b, b_draws, b_clock, b_sent, ("127.0.0.1", 47002))}
    problems = []
    for step in seq["steps"]:
        node, draws, clock, sent, _ = nodes[step["to"]]
        other = nodes["A" if step["to"] == "B" else "B"][4]
        reply = by_name.get(step["reply"]) if step["reply"] else None
        if reply:
            clock.t = reply["sender_clock"]
            draws.load(reply["random_draws"])
        else:
            clock.t = clock.t + 1.0
        before = len(sent)
        events = node.receive(bytes.fromhex(step["datagram"]), other)
        delivered = [{"channel": e["channel"], "message": e["message"]} for e in events
                     if e["event"] == "message"]
        if delivered != step["delivered"]:
            problems.append(f"{step['step']}: delivered {delivered}")
        out = sent[before:]
        if reply:
            if len(out) != 1 or out[0][0].hex() != reply["packet"] or out[0][1] != other:
                problems.append(f"{step['step']}: reply {[o[0].hex() for o in out]}")
        elif out:
            problems.append(f"{step['step']}: unexpected reply")
    if a.pending:
        problems.append(f"A still has pending {list(a.pending)}")
    if b.qos2_receiver:
        problems.append(f"B still has QoS 2 state {dict(b.qos2_receiver)}")
    return not problems, "; ".join(problems)


# --- command line -------------------------------------------------------------------------------
def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail_usage(msg: str) -> NoReturn:
    sys.stderr.write(f"nomq_legacy_peer: {msg}\n")
    sys.exit(2)


def check_address(host: str, namespace_test: bool, what: str) -> None:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        fail_usage(f"{what} {host!r} is not an IP address")
    if not addr.is_loopback and not namespace_test:
        fail_usage(f"{what} {host} is not a loopback address (use --namespace-test only inside "
                   "a network namespace the test created)")


def load_keys(args) -> tuple[bytes, bytes, dict]:
    if args.sample_keys:
        cfg = {"ip": "0.0.0.0", "port": 8888, "use_ipv6": False,
               "encryption_key": SAMPLE_ENCRYPTION_KEY, "hmac_key": SAMPLE_HMAC_KEY}
    else:
        if not args.config:
            fail_usage("give --config FILE or --sample-keys")
        try:
            with open(args.config, encoding="ascii") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            fail_usage(f"cannot read config {args.config}: {e}")
        try:
            cfg = read_config_text(text)
        except ConfigError as e:
            fail_usage(f"{args.config}: {e}")
    return bytes.fromhex(cfg["encryption_key"]), bytes.fromhex(cfg["hmac_key"]), cfg


def open_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        fail_usage(f"cannot bind {host}:{port}: {e}")
    return sock


def make_cli_node(args, sock: socket.socket, enc: bytes, mac: bytes) -> Node:
    offset = args.clock_offset

    def send(datagram: bytes, addr: tuple) -> None:
        check_address(addr[0], args.namespace_test, "destination")
        try:
            sock.sendto(datagram, addr[:2])
        except OSError as e:
            emit({"event": "send_error", "error": str(e), "to": f"{addr[0]}:{addr[1]}"})

    return Node(enc, mac, sock.getsockname()[:2], clock=lambda: time.time() + offset,
                send=send, revision=args.revision, epoch=args.epoch,
                lose_replies=args.lose_replies, lose_types=list(args.lose_type))


def serve(node: Node, sock: socket.socket, deadline: float, stop: Callable[[], bool],
          pacing: bool, on_events: Callable[[list], None]) -> bool:
    """Receives until stop() or the deadline.  Returns stop()'s final value."""
    while not stop():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            continue
        datagram, src = sock.recvfrom(RECV_BUFFER)
        on_events(node.receive(datagram, src))
        if pacing:
            time.sleep(ORIGINAL_PACING_S)  # the original's listen loop sleeps 0.1 s per packet
    return True


def cmd_sub(args) -> int:
    enc, mac, cfg = load_keys(args)
    host = args.bind
    check_address(host, args.namespace_test, "bind address")
    port = cfg["port"] if args.port is None else args.port
    sock = open_socket(host, port)
    node = make_cli_node(args, sock, enc, mac)
    for ch in args.topic:
        for e in node.subscribe(ch, args.priority):
            emit(e)
    count = {"messages": 0}

    def on_events(events):
        for e in events:
            emit(e)
            if e["event"] == "message":
                count["messages"] += 1

    # The node's SUBSCRIBE packets to itself are processed first, as in the original.
    bound = node.own_addr
    emit({"event": "ready", "host": bound[0], "port": bound[1], "revision": args.revision,
          "epoch": args.epoch, "session_id": node.session_id,
          "channels": list(args.topic), "pacing": args.original_pacing})
    deadline = time.monotonic() + args.wait if args.wait else float("inf")
    want = args.count

    def reached():
        return want is not None and count["messages"] >= want

    ok = serve(node, sock, deadline, reached, args.original_pacing, on_events)
    if not ok and want is not None:
        emit({"event": "timeout", "messages": count["messages"], "wanted": want})
        return 3
    # Stay for the rest of any QoS 2 handshake we are the receiver of (PUBREL -> PUBCOMP).
    linger_end = time.monotonic() + args.linger
    serve(node, sock, linger_end, lambda: not node.qos2_receiver, args.original_pacing, on_events)
    emit({"event": "exit", "messages": count["messages"],
          "qos2_open": sorted(node.qos2_receiver)})
    return 0


def cmd_pub(args) -> int:
    enc, mac, cfg = load_keys(args)
    try:
        host, port_text = args.to.rsplit(":", 1)
        dest = (host.strip("[]"), int(port_text))
    except ValueError:
        fail_usage(f"--to {args.to!r} is not HOST:PORT")
    check_address(dest[0], args.namespace_test, "destination")
    check_address(args.bind, args.namespace_test, "bind address")
    sock = open_socket(args.bind, args.port or 0)
    node = make_cli_node(args, sock, enc, mac)
    dropped = []

    def on_events(events):
        for e in events:
            emit(e)
            if e["event"] == "drop":
                dropped.append(e["reason"])
                if args.stop_on_drop:
                    stop_now["yes"] = True

    if args.subscribe_self:
        for e in node.subscribe(args.topic, args.priority):
            emit(e)
    try:
        packet_id, events = node.publish(args.topic, args.message, qos=args.qos,
                                         retain=args.retain, ttl=args.ttl,
                                         priority=args.priority, dest=dest)
    except ValueError as e:
        fail_usage(str(e))
    for e in events:
        emit(e)
    entry = node.pending.get(packet_id)

    stop_now = {"yes": False}

    def finished():
        return entry is None or entry.done or stop_now["yes"]

    if args.qos in (1, 2):
        serve(node, sock, time.monotonic() + args.wait, finished, args.original_pacing, on_events)
    if entry is None:
        state = "SENT" if args.qos in (0, 3) else "UNTRACKED"
        complete = args.qos in (0, 3)
    else:
        state = entry.final or entry.state
        complete = entry.done
    emit({"event": "final", "packet_id": packet_id, "qos": args.qos, "state": state,
          "complete": complete, "subscribed_self": args.subscribe_self,
          "replies_dropped": dropped})
    return 0 if complete else 1


def cmd_mkconfig(args) -> int:
    enc = SAMPLE_ENCRYPTION_KEY if args.sample_keys else os.urandom(32).hex()
    mac = SAMPLE_HMAC_KEY if args.sample_keys else os.urandom(32).hex()
    text = write_config_text(args.ip, args.cfg_port, args.ipv6, enc, mac)
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
    emit({"event": "config_written", "file": args.output, "ip": args.ip, "port": args.cfg_port})
    return 0


def cmd_showconfig(args) -> int:
    _, _, cfg = load_keys(args)
    emit({"event": "config", **cfg})
    return 0


def cmd_selftest(args) -> int:
    path = args.vectors or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                        "vectors", "legacy-v1.json")
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    failed = 0
    total = 0
    for name, ok, detail in vector_checks(vectors):
        total += 1
        if not ok:
            failed += 1
            emit({"event": "selftest_fail", "check": name, "detail": detail[:400]})
    emit({"event": "selftest", "checks": total, "failed": failed})
    return 0 if failed == 0 else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nomq_legacy_peer.py",
        description="Behaves like an original MicroPython NoMQ device (wire v1). Test use only.")
    p.add_argument("--config", help="the original's obfuscated nomq_config.json")
    p.add_argument("--sample-keys", action="store_true",
                   help="use the sample keys of the original's config_gen.py instead of --config")
    p.add_argument("--epoch", type=int, choices=(1970, 2000), default=1970,
                   help="clock epoch: 2000 as ESP32/ESP8266 MicroPython (default 1970)")
    p.add_argument("--revision", choices=REVISIONS, default="head",
                   help="receiver revision: head (1662f8a..8c6e21b, offset 20, length check), "
                        "ea96327 (ea96327..1f97757, offset 20, no length check) or 4336f1a "
                        "(offset 16) (default head)")
    p.add_argument("--clock-offset", type=float, default=0.0,
                   help="seconds added to this peer's clock, to test skew (default 0)")
    p.add_argument("--bind", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--original-pacing", action="store_true",
                   help="sleep 0.1 s after every received packet, as the original's loop does")
    p.add_argument("--lose-replies", type=int, default=0, metavar="N",
                   help="NOT the original: leave this node's first N replies unsent, as if the "
                        "network lost them (default 0)")
    p.add_argument("--lose-type", action="append", default=[], metavar="TYPE",
                   choices=("ACK", "PUBREC", "PUBREL", "PUBCOMP"),
                   help="NOT the original: leave the first reply of this type unsent (repeatable)")
    p.add_argument("--namespace-test", action="store_true",
                   help="allow non-loopback addresses (only inside namespaces a test created)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sub", help="subscribe and print what the device would deliver")
    s.add_argument("-t", "--topic", action="append", required=True, help="channel (repeatable)")
    s.add_argument("-C", "--count", type=int, help="exit 0 after this many messages")
    s.add_argument("-W", "--wait", type=float, help="exit 3 if -C messages did not come in time")
    s.add_argument("--port", type=int, help="port to bind (default: the config's port)")
    s.add_argument("--priority", type=int, default=0, help="subscription priority (default 0)")
    s.add_argument("--linger", type=float, default=5.0,
                   help="after -C, at most this long to finish open QoS 2 handshakes (default 5)")
    s.set_defaults(func=cmd_sub)

    u = sub.add_parser("pub", help="publish once, as the original's publish() does")
    u.add_argument("-t", "--topic", required=True)
    u.add_argument("-m", "--message", required=True)
    u.add_argument("-q", "--qos", type=int, choices=(0, 1, 2, 3), default=0)
    u.add_argument("-r", "--retain", action="store_true")
    u.add_argument("--priority", type=int, default=0)
    u.add_argument("--ttl", type=int, default=DEFAULT_TTL)
    u.add_argument("--to", required=True, help="HOST:PORT to send to (loopback)")
    u.add_argument("--port", type=int, help="local port (default: any)")
    u.add_argument("--subscribe-self", action="store_true",
                   help="subscribe to the channel first, so that replies are not dropped")
    u.add_argument("--wait", type=float, default=3.0,
                   help="seconds to wait for the QoS handshake (default 3)")
    u.add_argument("--stop-on-drop", action="store_true",
                   help="stop waiting at the first reply this node drops (it will not complete)")
    u.set_defaults(func=cmd_pub)

    m = sub.add_parser("mkconfig", help="write a config file in the original's format")
    m.add_argument("-o", "--output", required=True)
    m.add_argument("--ip", default="0.0.0.0")
    m.add_argument("--port", dest="cfg_port", type=int, default=8888)
    m.add_argument("--ipv6", action="store_true")
    m.add_argument("--sample-keys", action="store_true")
    m.set_defaults(func=cmd_mkconfig)

    c = sub.add_parser("showconfig", help="read a config file and print it as JSON")
    c.set_defaults(func=cmd_showconfig)

    t = sub.add_parser("selftest", help="check the peer against legacy-v1.json")
    t.add_argument("--vectors", help="path to legacy-v1.json")
    t.set_defaults(func=cmd_selftest)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
