#!/usr/bin/env python3
"""Independent check of the wire v2 known-answer vectors (v2-kat.json).

Rebuilds every packet from its recorded inputs following docs/protocol.md, with
python3-cryptography for AES-256-CBC and the standard library for HMAC-SHA256, and compares
byte for byte. Shares no code with the C++ codec. Then opens each packet the way a receiver
does (MAC, decrypt, PKCS#7, body) and checks that it yields the inputs again.

Usage: check_v2_kat.py PATH/TO/v2-kat.json     (exit 0: all match; 1: a mismatch, named)
"""
import hashlib
import hmac
import json
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MAGIC = b"NM"
VERSION = 0x02
PUBLISH, SUBSCRIBE, ACK, UNSUBSCRIBE, HEARTBEAT, PUBREC, PUBREL, PUBCOMP = range(1, 9)
TYPE_NAMES = {1: "PUBLISH", 2: "SUBSCRIBE", 3: "ACK", 4: "UNSUBSCRIBE", 5: "HEARTBEAT",
              6: "PUBREC", 7: "PUBREL", 8: "PUBCOMP"}


def channel_id(name: str) -> bytes:
    return hashlib.sha256(name.encode("utf-8")).digest()[:16]


def body(inputs: dict) -> bytes:
    t = inputs["packet_type"]
    if t == PUBLISH:
        name = inputs["channel"].encode("utf-8")
        return (struct.pack(">IB", inputs["message_id"], len(name)) + name +
                bytes.fromhex(inputs["message_hex"]))
    if t in (SUBSCRIBE, UNSUBSCRIBE):
        name = inputs["channel"].encode("utf-8")
        return struct.pack(">B", len(name)) + name
    if t in (ACK, PUBREC, PUBREL, PUBCOMP):
        return struct.pack(">I", inputs["acked_id"])
    if t == HEARTBEAT:
        return b""
    raise ValueError(f"type {t}")


def pkcs7(data: bytes) -> bytes:
    pad = 16 - len(data) % 16
    return data + bytes([pad]) * pad


def build(inputs: dict, enc_key: bytes, mac_key: bytes) -> bytes:
    iv = bytes.fromhex(inputs["iv"])
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(pkcs7(body(inputs))) + encryptor.finalize()
    header = (MAGIC + struct.pack(">BBBIIH", VERSION, inputs["packet_type"], inputs["flags"],
                                  inputs["packet_id"], inputs["session_id"], inputs["ttl"]) +
              iv + struct.pack(">I", inputs["timestamp"]) +
              bytes.fromhex(inputs["channel_id"]) + struct.pack(">H", len(ciphertext)))
    assert len(header) == 53
    signed = header + ciphertext
    return signed + hmac.new(mac_key, signed, hashlib.sha256).digest()


def open_packet(packet: bytes, enc_key: bytes, mac_key: bytes) -> dict:
    """A receiver's view: returns the parsed fields or raises ValueError(reason)."""
    if len(packet) < 101:
        raise ValueError("too_short")
    if packet[0:2] != MAGIC:
        raise ValueError("bad_magic")
    if packet[2] != VERSION:
        raise ValueError("bad_version")
    if not 1 <= packet[3] <= 8:
        raise ValueError("bad_type")
    (length,) = struct.unpack(">H", packet[51:53])
    if 53 + length + 32 != len(packet):
        raise ValueError("bad_length")
    if length == 0 or length % 16:
        raise ValueError("bad_block_size")
    expected = hmac.new(mac_key, packet[:53 + length], hashlib.sha256).digest()
    if not hmac.compare_digest(expected, packet[53 + length:]):
        raise ValueError("bad_mac")
    decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(packet[15:31])).decryptor()
    padded = decryptor.update(packet[53:53 + length]) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad_padding")
    pt = padded[:-pad]
    out = {"packet_type": packet[3], "flags": packet[4], "plaintext": pt.hex()}
    (out["packet_id"], out["session_id"], out["ttl"]) = struct.unpack(">IIH", packet[5:15])
    out["iv"] = packet[15:31].hex()
    (out["timestamp"],) = struct.unpack(">I", packet[31:35])
    out["channel_id"] = packet[35:51].hex()
    t = packet[3]
    if t == PUBLISH:
        if len(pt) < 5 or pt[4] == 0 or len(pt) < 5 + pt[4]:
            raise ValueError("bad_body")
        out["message_id"] = struct.unpack(">I", pt[:4])[0]
        out["channel"] = pt[5:5 + pt[4]].decode("utf-8")
        out["message_hex"] = pt[5 + pt[4]:].hex()
    elif t in (SUBSCRIBE, UNSUBSCRIBE):
        if len(pt) < 1 or pt[0] == 0 or len(pt) != 1 + pt[0]:
            raise ValueError("bad_body")
        out["channel"] = pt[1:].decode("utf-8")
    elif t in (ACK, PUBREC, PUBREL, PUBCOMP):
        if len(pt) != 4:
            raise ValueError("bad_body")
        out["acked_id"] = struct.unpack(">I", pt)[0]
    elif len(pt) != 0:
        raise ValueError("bad_body")
    if "channel" in out and channel_id(out["channel"]) != packet[35:51]:
        raise ValueError("bad_body")
    return out


def check(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        kat = json.load(f)
    if kat.get("format") != "nomq-v2-known-answer-vectors":
        print(f"{path}: not a v2 KAT file", file=sys.stderr)
        return 1
    enc_key = bytes.fromhex(kat["keys"]["encryption_key"])
    mac_key = bytes.fromhex(kat["keys"]["hmac_key"])
    failures = []
    types_seen = set()
    for v in kat["vectors"]:
        name, inputs = v["name"], v["inputs"]
        types_seen.add(inputs["packet_type"])
        try:
            expected_iv = hashlib.sha256(("nomq-v2-kat|" + name).encode()).digest()[:16]
            if inputs["iv"] != expected_iv.hex():
                raise AssertionError("iv is not SHA-256('nomq-v2-kat|' + name)[0:16]")
            if inputs["type_name"] != TYPE_NAMES[inputs["packet_type"]]:
                raise AssertionError("type_name")
            flags = inputs["flags"]
            if (flags & 3, bool(flags & 4), flags >> 4) != (
                    inputs["qos"], inputs["retain"], inputs["priority"]):
                raise AssertionError("flags disagree with qos/retain/priority")
            if inputs["channel"] and inputs["channel_id"] != channel_id(inputs["channel"]).hex():
                raise AssertionError("channel_id is not SHA-256(channel)[0:16]")
            if inputs["packet_type"] == HEARTBEAT and inputs["channel_id"] != "00" * 16:
                raise AssertionError("heartbeat channel id not zero")
            if body(inputs).hex() != v["plaintext"]:
                raise AssertionError("plaintext differs from the body built from inputs")
            packet = build(inputs, enc_key, mac_key)
            if packet.hex() != v["packet"]:
                raise AssertionError(f"packet differs:\n  want {v['packet']}\n  got  {packet.hex()}")
            if len(packet) != v["length"]:
                raise AssertionError("length")
            opened = open_packet(bytes.fromhex(v["packet"]), enc_key, mac_key)
            for key, value in opened.items():
                if key != "plaintext" and key in inputs and inputs[key] != value:
                    raise AssertionError(f"opened {key} = {value!r}, inputs say {inputs[key]!r}")
            # One flipped bit anywhere must fail the receiver's checks.
            tampered = bytearray(packet)
            tampered[len(tampered) // 2] ^= 1
            try:
                open_packet(bytes(tampered), enc_key, mac_key)
                raise AssertionError("a tampered packet opened")
            except ValueError:
                pass
        except AssertionError as e:
            failures.append(f"{name}: {e}")
    if types_seen != set(range(1, 9)):
        failures.append(f"not every packet type is covered: {sorted(types_seen)}")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    print(f"{len(kat['vectors']) - len(failures)}/{len(kat['vectors'])} v2 vectors rebuilt "
          "independently and opened")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(check(sys.argv[1]))
