#!/usr/bin/env python3
"""`nomq config`, `nomq decode` from stdin and captures, `nomq sub -F` checks (issue 15 §3).

Usage: cli_parity_test.py NOMQ_BINARY VECTORS_JSON CASE
No network: each case runs nomq as a subprocess on files it writes.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

NOMQ = ""
VECTORS = {}
FAILURES = []


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL:", what)


def run(*args, stdin="", binary_stdin=None):
    if binary_stdin is not None:
        p = subprocess.run([NOMQ, *args], capture_output=True, input=binary_stdin, timeout=30)
        return p.returncode, p.stdout.decode(), p.stderr.decode()
    p = subprocess.run([NOMQ, *args], capture_output=True, text=True, input=stdin, timeout=30)
    return p.returncode, p.stdout, p.stderr


def keygen(d, name, *extra):
    path = os.path.join(d, name)
    rc, out, err = run("keygen", "-o", path, *extra)
    check(rc == 0, "keygen %s: %d %r" % (extra, rc, err))
    return path


def case_config_show_masks_keys():
    with tempfile.TemporaryDirectory() as d:
        cfg = keygen(d, "n.json", "--group", "127.255.255.255", "-p", "9000", "--raw-keys")
        with open(cfg) as f:
            raw = json.load(f)
        rc, out, err = run("config", "show", "-c", cfg)
        check(rc == 0, "show: exit %d %r" % (rc, err))
        shown = json.loads(out)
        for k in ("encryption_key", "hmac_key"):
            check(shown[k] == raw[k][:4] + "…(32 bytes, masked)", "show: %s %r" % (k, shown[k]))
            check(raw[k] not in out and raw[k][4:12] not in out, "show: %s leaks" % k)
        check(shown["group"] == "127.255.255.255" and shown["port"] == 9000 and shown["wire"] == "v2",
              "show: %r" % shown)
        check("max_channels" in shown and "discovery_settle_ms" in shown, "show: not every key: %r" % sorted(shown))
        check(err == "%s: JSON format\n" % cfg, "show: stderr %r" % err)
        rc, out, err = run("config", "show", "-c", cfg, "--reveal", "--wire", "v1")
        shown = json.loads(out)
        check(rc == 0 and shown["encryption_key"] == raw["encryption_key"] and shown["wire"] == "v1",
              "show --reveal --wire v1: %d %r" % (rc, out))
        # The master-secret form (keygen's default): the secret is masked too.
        master = keygen(d, "m.json", "--group", "127.255.255.255")
        with open(master) as f:
            secret = json.load(f)["master_secret"]
        rc, out, err = run("config", "show", "-c", master)
        check(rc == 0 and json.loads(out)["master_secret"] == secret[:4] + "…(32 bytes, masked)"
              and secret[4:12] not in out, "show master: %d %r" % (rc, out))
        rc, out, err = run("config", "show", "-c", os.path.join(d, "missing.json"))
        check(rc == 2 and err.startswith("Error: ") and "No such file or directory" in err, "missing: %d %r" % (rc, err))


def case_config_convert_both_ways():
    with tempfile.TemporaryDirectory() as d:
        legacy = keygen(d, "nomq_config.json", "--legacy", "-p", "8888")
        js = os.path.join(d, "from-legacy.json")
        rc, out, err = run("config", "convert", "-c", legacy, "-o", js)
        check(rc == 0 and "Wrote %s (JSON format, wire v1" % js in out, "legacy->json: %d %r %r" % (rc, out, err))
        check(oct(os.stat(js).st_mode & 0o777) == "0o600", "mode %o" % os.stat(js).st_mode)
        rc, a, _ = run("config", "show", "-c", legacy, "--reveal")
        rc2, b, err = run("config", "show", "-c", js, "--reveal")
        check(rc == 0 and rc2 == 0 and json.loads(a) == json.loads(b), "legacy and converted differ:\n%s\n%s" % (a, b))
        check(json.loads(b)["wire"] == "v1", "converted wire %r" % json.loads(b)["wire"])
        back = os.path.join(d, "back.legacy")
        rc, out, err = run("config", "convert", "-c", js, "-o", back)
        check(rc == 0, "json->legacy: %d %r" % (rc, err))
        rc, c, _ = run("config", "show", "-c", back, "--reveal")
        check(json.loads(c) == json.loads(a), "round trip differs")
        # A JSON config with what the original's format cannot hold: refused, named; --force drops.
        v2 = keygen(d, "v2.json", "--group", "127.255.255.255", "--raw-keys")
        out_path = os.path.join(d, "v2.legacy")
        rc, out, err = run("config", "convert", "-c", v2, "-o", out_path)
        check(rc == 2 and "cannot hold" in err and 'wire "v2"' in err and 'group "127.255.255.255"' in err,
              "v2->legacy: %d %r" % (rc, err))
        check(not os.path.exists(out_path), "written anyway")
        rc, out, err = run("config", "convert", "-c", v2, "-o", out_path, "--force")
        check(rc == 0 and err.startswith("WARNING: not stored in the original's format:") and 'wire "v2"' in err,
              "--force: %d %r" % (rc, err))
        # A master secret has no place in the original's format: refused, named, nothing written.
        master = keygen(d, "master.json", "--group", "127.255.255.255")
        rc, out, err = run("config", "convert", "-c", master, "-o", os.path.join(d, "m.legacy"), "--force")
        check(rc != 0 and "master_secret" in err and not os.path.exists(os.path.join(d, "m.legacy")),
              "master->legacy: %d %r" % (rc, err))
        rc, out, err = run("config", "convert", "-c", legacy, "-o", js)
        check(rc == 1 and "exists" in err, "existing output: %d %r" % (rc, err))


def vectors_for_capture():
    """Packet vectors with the sample keys and the 1970 epoch, within 20 s of the first."""
    k = VECTORS["keys"]
    vs = [v for v in VECTORS["packet_vectors"]
          if v["encryption_key"] == k["encryption_key"] and v["hmac_key"] == k["hmac_key"]
          and "epoch2000" not in v["name"]]
    first = vs[0]["sender_clock"]
    return [v for v in vs if v["sender_clock"] - first < 20][:8]


def config_with_sample_keys(d):
    k = VECTORS["keys"]
    path = os.path.join(d, "v1.json")
    with open(path, "w") as f:
        json.dump({"encryption_key": k["encryption_key"], "hmac_key": k["hmac_key"], "wire": "v1"}, f)
    os.chmod(path, 0o600)
    return path


def frame(payload, src_port=40000, dst_port=8888):
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 255, 255, 255])) + udp
    eth = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip


def write_pcap(path, packets):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for t, data in packets:
            f.write(struct.pack("<IIII", int(t), int(round((t - int(t)) * 1e6)), len(data), len(data)))
            f.write(data)


def write_pcapng(path, packets):
    def block(kind, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("<HHI", 1, 0, 65535)))  # Ethernet, microsecond stamps
        for t, data in packets:
            us = int(round(t * 1e6))
            f.write(block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(data), len(data)) + data))


def case_decode_stdin_and_captures():
    vs = vectors_for_capture()
    check(len(vs) >= 4, "only %d vectors" % len(vs))
    with tempfile.TemporaryDirectory() as d:
        cfg = config_with_sample_keys(d)
        now = repr(vs[0]["sender_clock"] + 10)
        rc, want, err = run("decode", "-c", cfg, "--now", now, *[v["packet"] for v in vs])
        check(rc == 0 and len(want.splitlines()) == len(vs), "hex args: %d %r" % (rc, err))
        # Hex on stdin, one per line, and whitespace-separated.
        rc, out, err = run("decode", "-c", cfg, "--now", now, stdin="\n".join(v["packet"] for v in vs) + "\n")
        check(rc == 0 and out == want, "stdin lines: %d %r %r" % (rc, out[:200], err))
        rc, out, err = run("decode", "-c", cfg, "--now", now, stdin="  ".join(v["packet"] for v in vs))
        check(rc == 0 and out == want, "stdin spaces: %d %r" % (rc, err))
        rc, out, err = run("decode", "-c", cfg, "--now", now, stdin=vs[0]["packet"] + "\nzz\n")
        check(rc == 2 and err.startswith("Error: stdin datagram 2: not hex"), "stdin bad hex: %d %r" % (rc, err))
        # Captures: each datagram judged at its capture time (its sender's clock), no --now.
        packets = [(v["sender_clock"], frame(bytes.fromhex(v["packet"]))) for v in vs]
        packets.insert(1, (vs[0]["sender_clock"], b"\x00" * 14))  # not IP: skipped, still a frame
        for name, writer in (("cap.pcap", write_pcap), ("cap.pcapng", write_pcapng)):
            path = os.path.join(d, name)
            writer(path, packets)
            rc, out, err = run("decode", "-c", cfg, "--pcap", path)
            check(rc == 0, "%s: exit %d %r" % (name, rc, err))
            got = [json.loads(l) for l in out.splitlines()]
            exp = [json.loads(l) for l in want.splitlines()]
            check(len(got) == len(exp), "%s: %d lines" % (name, len(got)))
            for i, (g, e) in enumerate(zip(got, exp)):
                frame_no = i + 1 if i == 0 else i + 2
                check(g.pop("frame") == frame_no and g.pop("from") == "127.0.0.1:40000"
                      and g.pop("to") == "127.255.255.255:8888", "%s: capture fields %d" % (name, i))
                check(g == e, "%s: datagram %d differs:\n%r\n%r" % (name, i, g, e))
            with open(path, "rb") as f:  # the same from stdin
                rc, out2, err = run("decode", "-c", cfg, "--pcap", "-", binary_stdin=f.read())
            check(rc == 0 and out2 == out, "%s from stdin: %d %r" % (name, rc, err))
            rc, out3, err = run("decode", "-c", cfg, "--pcap", path, "--port", "9999")
            check(rc == 0 and out3 == "", "%s --port 9999: %d %r %r" % (name, rc, out3, err))
        # A tampered datagram in a capture: rejected, naming the frame.
        bad = bytearray(bytes.fromhex(vs[0]["packet"]))
        bad[-1] ^= 1
        path = os.path.join(d, "bad.pcap")
        write_pcap(path, [(vs[0]["sender_clock"], frame(bytes(bad)))])
        rc, out, err = run("decode", "-c", cfg, "--pcap", path)
        check(rc == 1 and err == "rejected: bad_mac (frame 1, 127.0.0.1:40000 -> 127.255.255.255:8888)\n",
              "tampered: %d %r" % (rc, err))


def case_sub_format_checked_before_start():
    with tempfile.TemporaryDirectory() as d:
        cfg = keygen(d, "n.json", "--group", "127.255.255.255", "-p", "0")
        for fmt, says in (("%t %z", "-F: unknown specifier '%z'"), ("100%", "-F: '%' at the end")):
            rc, out, err = run("sub", "-c", cfg, "-t", "a", "-F", fmt)
            check(rc == 2 and err.startswith("Error: " + says) and err.endswith("Use 'nomq sub --help' to see usage.\n"),
                  "-F %r: %d %r" % (fmt, rc, err))
        rc, out, err = run("sub", "-c", cfg, "-t", "a", "-R", "--retained-only")
        check(rc == 2 and "cannot be combined" in err, "-R with --retained-only: %d %r" % (rc, err))
        rc, out, err = run("sub", "--help")
        for opt in ("--group", "--unicast-port", "--ready", "-R", "--retained-only", "-N", "-T", "%I", "%j", "%X"):
            check(opt in out, "sub --help lacks %s" % opt)
        rc, out, err = run("pub", "--help")
        for opt in ("--group", "--unicast-port"):
            check(opt in out, "pub --help lacks %s" % opt)
        rc, out, err = run("--help")
        for cmd in ("config", "decode", "demo", "keygen", "pub", "sim", "sub"):
            check(("\n  %s " % cmd) in out, "nomq --help lacks %s: %r" % (cmd, out))


def main():
    global NOMQ, VECTORS
    NOMQ = sys.argv[1]
    with open(sys.argv[2]) as f:
        VECTORS = json.load(f)
    fn = globals().get("case_" + sys.argv[3])
    if fn is None:
        print("no case", sys.argv[3])
        return 2
    fn()
    print("%s: %s" % (sys.argv[3], "FAILED" if FAILURES else "ok"))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
