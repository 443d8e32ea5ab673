#!/usr/bin/env python3
"""`nomq decode` and `nomq keygen` through the real executable.

Usage: decode_keygen_test.py NOMQ_BINARY VECTORS_JSON CASE
CASE is one of the functions named case_* below (without the prefix). Each case runs nomq as a
subprocess (no network), checks exit code, stdout and stderr exactly, and prints one line per
failed check; the exit status is 1 if any check failed.
"""

import json
import os
import stat
import subprocess
import sys
import tempfile

NOMQ = ""
VECTORS = {}
FAILURES = []

# Vector reason tags that are named differently by nomq (Errc names).
REASON_NAMES = {"replay_nonce": "replayed"}


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL:", what)


def run(*args, stdin=None):
    p = subprocess.run([NOMQ, *args], capture_output=True, text=True, input=stdin, timeout=30)
    return p.returncode, p.stdout, p.stderr


def write_config(directory, name, keys, extra=None, mode=0o600):
    cfg = {"encryption_key": keys[0], "hmac_key": keys[1]}
    cfg.update(extra or {})
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    os.chmod(path, mode)
    return path


def sample_keys():
    k = VECTORS["keys"]
    return k["encryption_key"], k["hmac_key"]


def case_decode_packet_vectors():
    """Every v1 packet vector is accepted and its header and body fields come back."""
    vectors = VECTORS["packet_vectors"]
    check(len(vectors) == 29, "29 packet vectors, found %d" % len(vectors))
    with tempfile.TemporaryDirectory() as d:
        for v in vectors:
            name = v["name"]
            inp = v["inputs"]
            cfg = write_config(d, name + ".json", (v["encryption_key"], v["hmac_key"]))
            args = ["decode", "--config", cfg, "--wire", "v1", "--now", repr(v["sender_clock"])]
            if "epoch2000" in name:
                args += ["--epoch", "2000"]
            rc, out, err = run(*args, v["packet"])
            check(rc == 0, "%s: exit %d (stderr %r)" % (name, rc, err))
            check(err == "", "%s: stderr %r" % (name, err))
            lines = out.splitlines()
            check(len(lines) == 1, "%s: %d stdout lines" % (name, len(lines)))
            if rc != 0 or len(lines) != 1:
                continue
            got = json.loads(lines[0])
            want = {
                "version": 1,
                "type": inp["type_name"],
                "flags": inp["flags"],
                "packet_id": inp["packet_id"],
                "session_id": inp["session_id"],
                "ttl": inp["ttl"],
                "timestamp": inp["timestamp"],
                "channel_id": inp["channel_id"],
                "qos": inp["flags"] & 3,
                "retain": bool(inp["flags"] & 4),
                "priority": inp["flags"] >> 4,
            }
            if inp["type_name"] in ("SUBSCRIBE", "UNSUBSCRIBE"):
                want["channel"] = inp["channel"]
            if inp["type_name"] == "PUBLISH":
                pub = inp["publish"]
                want["message"] = pub["message"]
                want["nonce"] = pub["inner_nonce"]
                want["message_id"] = pub["inner_nonce"]
                want["inner_timestamp"] = pub["inner_timestamp"]
                want["layout"] = "device16" if pub["inner_layout"].startswith("device16") else "gap20"
            if inp["type_name"] in ("ACK", "PUBREC", "PUBREL", "PUBCOMP"):
                want["acked_packet_id"] = int(inp["plaintext"], 16)
            for key, value in want.items():
                check(got.get(key) == value,
                      "%s: %s is %r, expected %r" % (name, key, got.get(key), value))


def case_decode_negative_vectors():
    """Every negative vector is rejected with its reason, from the command line."""
    vectors = VECTORS["negative_vectors"]
    check(len(vectors) == 25, "25 negative vectors, found %d" % len(vectors))
    with tempfile.TemporaryDirectory() as d:
        cfg = write_config(d, "r.json", sample_keys(), {"wire": "v1"})
        for v in vectors:
            name = v["name"]
            args = ["decode", "-c", cfg, "--now", repr(v["receiver_clock"])]
            for ch in v["receiver_subscriptions"]:
                args += ["-t", ch]
            if name == "device_layout_publish":
                # By design: we read the original sender's own layout, which the original's
                # receiver rejects (LEGACY-WIRE-FORMAT.md §7, DESIGN.md).
                rc, out, err = run(*args, v["packet"])
                check(rc == 0 and err == "", "%s: accepted by design, got %d %r" % (name, rc, err))
                check('"layout":"device16"' in out, "%s: layout device16 in %r" % (name, out))
                continue
            datagrams = v.get("datagrams_in_order", [v["packet"]])
            rc, out, err = run(*args, *datagrams)
            reason = REASON_NAMES.get(v["reason"], v["reason"])
            check(rc == 1, "%s: exit %d, expected 1" % (name, rc))
            check(err == "rejected: %s\n" % reason, "%s: stderr %r, expected %r" % (name, err, reason))
            accepted = len(datagrams) - 1
            check(len(out.splitlines()) == accepted,
                  "%s: %d accepted, expected %d: %r" % (name, len(out.splitlines()), accepted, out))
            for line in out.splitlines():
                msg = json.loads(line)
                check(msg.get("channel") == "sensors/temp" and msg.get("message") == "21.5 C",
                      "%s: first delivery %r" % (name, line))


def case_decode_quirk_vectors():
    """The receiver quirk vectors reach the original's verdict."""
    with tempfile.TemporaryDirectory() as d:
        cfg = write_config(d, "r.json", sample_keys(), {"wire": "v1"})
        for v in VECTORS["receiver_quirk_vectors"]:
            name = v["name"]
            args = ["decode", "-c", cfg, "--now", repr(v["receiver_clock"])]
            for ch in v["receiver_subscriptions"]:
                args += ["-t", ch]
            rc, out, err = run(*args, v["packet"])
            if v["expect"] in ("accepted", "accepted_no_effect"):
                check(rc == 0 and err == "", "%s: exit %d %r" % (name, rc, err))
                for want in v["delivered"]:
                    got = json.loads(out)
                    check(got.get("channel") == want["channel"] and
                          got.get("message") == want["message"], "%s: %r" % (name, out))
            else:
                check(rc == 1 and err == "rejected: %s\n" % v["reason"],
                      "%s: exit %d %r, expected %s" % (name, rc, err, v["reason"]))


def case_decode_usage_errors():
    """Mistakes print exactly one Error line and the Use line, exit 2; bad configs exit 2."""
    with tempfile.TemporaryDirectory() as d:
        cfg = write_config(d, "r.json", sample_keys(), {"wire": "v1"})
        use = "Use 'nomq decode --help' to see usage.\n"
        cases = [
            (["decode", "-c", cfg, "4e4"],
             "Error: hex: odd number of hex digits (3) in '4e4'\n" + use),
            (["decode", "-c", cfg, "4e4dzz"],
             "Error: hex: not hex: character 'z' at position 4 in '4e4dzz'\n" + use),
            (["decode", "-c", cfg, "--wire", "v3", "4e4d"],
             "Error: --wire: needs v1 or v2, got 'v3'\n" + use),
            (["decode", "-c", cfg, "--epoch", "1999", "4e4d"],
             "Error: --epoch: needs 1970 or 2000, got '1999'\n" + use),
            (["decode", "4e4d"], "Error: --config is required\n" + use),
            # No HEX arguments: hex is read from stdin, and an empty stdin holds no datagram.
            (["decode", "-c", cfg], "Error: no datagram: give HEX arguments, hex on stdin, or --pcap FILE\n" + use),
            (["decode", "-c", cfg, "--pcap", os.path.join(d, "none.pcap")],
             "Error: --pcap %s: No such file or directory\n" % os.path.join(d, "none.pcap") + use),
            (["decode", "-c", cfg, "--pcap", cfg, "4e4d"],
             "Error: give datagrams as HEX arguments or with --pcap, not both\n" + use),
            (["decode", "-c", cfg, "--bogus", "4e4d"],
             "Error: The following argument was not expected: --bogus\n" + use),
        ]
        for args, want in cases:
            rc, out, err = run(*args, stdin="")
            check(rc == 2, "%s: exit %d, expected 2" % (args[1:], rc))
            check(out == "", "%s: stdout %r" % (args[1:], out))
            check(err == want, "%s: stderr %r, expected %r" % (args[1:], err, want))

        bad = os.path.join(d, "bad.json")
        with open(bad, "w") as f:
            json.dump({"encryption_key": "00" * 31, "hmac_key": "00" * 32}, f)
        os.chmod(bad, 0o600)
        rc, out, err = run("decode", "-c", bad, "4e4d")
        check(rc == 2 and err == "Error: %s: encryption_key: must be 64 hex digits (32 bytes), "
              "got 62\n" % bad, "bad config: %d %r" % (rc, err))
        rc, out, err = run("decode", "-c", os.path.join(d, "missing.json"), "4e4d")
        check(rc == 2 and err.startswith("Error: ") and err.count("\n") == 1,
              "missing config: %d %r" % (rc, err))


def load_v2_kat():
    path = os.path.join(os.path.dirname(sys.argv[2]), "v2-kat.json")
    with open(path) as f:
        return json.load(f)


def v2_args(kat, directory, v):
    cfg = os.path.join(directory, "v2.json")
    if not os.path.exists(cfg):
        write_config(directory, "v2.json",
                     (kat["keys"]["encryption_key"], kat["keys"]["hmac_key"]))
    args = ["decode", "-c", cfg, "--now", "1700000000.5"]
    if "epoch2000" in v["name"]:
        args += ["--epoch", "2000"]
    return args


def case_decode_v2_vectors():
    """Every v2 known-answer packet (tests/vectors/v2-kat.json) decodes to its inputs."""
    kat = load_v2_kat()
    with tempfile.TemporaryDirectory() as d:
        for v in kat["vectors"]:
            name, inp = v["name"], v["inputs"]
            rc, out, err = run(*v2_args(kat, d, v), v["packet"])
            check(rc == 0 and err == "", "%s: exit %d %r" % (name, rc, err))
            if rc != 0:
                continue
            got = json.loads(out)
            want = {"version": 2, "type": inp["type_name"]}
            for key in ("flags", "qos", "retain", "priority", "packet_id", "session_id", "ttl",
                        "timestamp", "channel_id"):
                want[key] = inp[key]
            if inp["type_name"] in ("PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE"):
                want["channel"] = inp["channel"]
            if inp["type_name"] == "PUBLISH":
                want["message_id"] = inp["message_id"]
                raw = bytes.fromhex(inp["message_hex"])
                try:
                    want["message"] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    want["message_hex"] = inp["message_hex"]
            if "acked_id" in inp:
                want["acked_packet_id"] = inp["acked_id"]
            for key, value in want.items():
                check(got.get(key) == value,
                      "%s: %s is %r, expected %r" % (name, key, got.get(key), value))


def case_decode_v2_receiver_state():
    """v2 with -t: other channels are unknown_channel except SUBSCRIBE/UNSUBSCRIBE/HEARTBEAT;
    a PUBLISH message id seen twice is replayed; a v1 datagram is bad_version."""
    kat = load_v2_kat()
    exempt = ("SUBSCRIBE", "UNSUBSCRIBE", "HEARTBEAT")
    with tempfile.TemporaryDirectory() as d:
        for v in kat["vectors"]:
            name, inp = v["name"], v["inputs"]
            rc, out, err = run(*v2_args(kat, d, v), "-t", "sensors/temp", v["packet"])
            if inp.get("channel") == "sensors/temp" or inp["type_name"] in exempt:
                check(rc == 0 and err == "", "%s: accepted, got %d %r" % (name, rc, err))
                if inp.get("channel") == "sensors/temp":
                    check(json.loads(out).get("channel") == "sensors/temp", "%s: %r" % (name, out))
            else:
                check(rc == 1 and err == "rejected: unknown_channel\n",
                      "%s: unknown_channel, got %d %r" % (name, rc, err))
        first = kat["vectors"][0]
        rc, out, err = run(*v2_args(kat, d, first), first["packet"], first["packet"])
        check(rc == 1 and len(out.splitlines()) == 1 and err == "rejected: replayed\n",
              "v2 replay: %d %r %r" % (rc, out, err))
        v1 = VECTORS["packet_vectors"][0]
        rc, out, err = run(*v2_args(kat, d, first), v1["packet"])
        check(rc == 1 and err == "rejected: bad_version\n", "v1 on v2: %d %r" % (rc, err))
        # --wire overrides the file (now the MAC fails: other keys).
        rc, out, err = run(*v2_args(kat, d, first), "--wire", "v1", v1["packet"])
        check(rc == 1 and err == "rejected: bad_mac\n", "--wire v1: %d %r" % (rc, err))


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def case_keygen():
    """keygen writes loadable 0600 configs in both formats and refuses what it cannot do."""
    with tempfile.TemporaryDirectory() as d:
        j = os.path.join(d, "nomq.json")
        rc, out, err = run("keygen", "-o", j, "--port", "9000", "--wire", "v1", "--epoch", "2000",
                           "--group", "239.1.2.3")
        check(rc == 0 and err == "", "keygen json: %d %r" % (rc, err))
        check(mode_of(j) == 0o600, "keygen json mode %o" % mode_of(j))
        cfg = json.load(open(j))
        check(cfg["port"] == 9000 and cfg["wire"] == "v1" and cfg["epoch"] == 2000 and
              cfg["group"] == "239.1.2.3", "keygen json fields %r" % cfg)
        # v1 is paced for the original's devices (docs/config.md, "Wire v1 defaults").
        check(cfg["retransmit_initial_ms"] == 1000 and cfg["max_pending"] == 5,
              "keygen --wire v1 pacing %r" % cfg)
        check(len(cfg["encryption_key"]) == 64 and cfg["encryption_key"] != cfg["hmac_key"],
              "keygen keys")

        legacy = os.path.join(d, "nomq_config.json")
        rc, out, err = run("keygen", "--legacy", "-o", legacy)
        check(rc == 0 and err == "", "keygen legacy: %d %r" % (rc, err))
        check(mode_of(legacy) == 0o600, "keygen legacy mode %o" % mode_of(legacy))
        text = open(legacy).read()
        check(text.endswith("\n") and not text.lstrip().startswith("{"), "legacy text %r" % text)
        _check_legacy_file(text)

        # Each file is loadable: decode with it reaches the codec (too_short, not a config error).
        for path in (j, legacy):
            rc, out, err = run("decode", "-c", path, "4e4d")
            check(rc == 1 and err == "rejected: too_short\n", "load %s: %d %r" % (path, rc, err))

        # Two runs, two different key sets.
        rc1, a, _ = run("keygen")
        rc2, b, _ = run("keygen")
        check(rc1 == 0 and rc2 == 0 and
              json.loads(a)["master_secret"] != json.loads(b)["master_secret"] and
              json.loads(a)["group_id"] != json.loads(b)["group_id"] and
              "hmac_key" not in json.loads(a),
              "keygen to stdout twice gives fresh master secrets (the default form)")
        rc, raw, _ = run("keygen", "--raw-keys")
        check(rc == 0 and "master_secret" not in json.loads(raw) and
              len(json.loads(raw)["hmac_key"]) == 64, "keygen --raw-keys: %r" % raw)

        # Redirected to a file the shell made under its umask: the keys land, with a warning.
        redirected = os.path.join(d, "redirected.json")
        with open(os.open(redirected, os.O_WRONLY | os.O_CREAT, 0o644), "w") as f:
            os.chmod(redirected, 0o644)
            p = subprocess.run([NOMQ, "keygen"], stdout=f, stderr=subprocess.PIPE, text=True)
        check(p.returncode == 0 and "master_secret" in json.load(open(redirected)) and
              p.stderr == "WARNING: stdout is a file accessible by group or others (mode 0644); "
              "keys should be private: use -o FILE, or chmod 600 it\n",
              "keygen > file: %d %r" % (p.returncode, p.stderr))

        # No overwrite without --force; with --force the file is replaced and stays 0600.
        before = open(j).read()
        rc, out, err = run("keygen", "-o", j)
        check(rc == 1 and err == "Error: %s: already exists (use --force to overwrite)\n" % j,
              "overwrite refused: %d %r" % (rc, err))
        check(open(j).read() == before, "file untouched")
        os.chmod(j, 0o644)
        rc, out, err = run("keygen", "-o", j, "--force")
        check(rc == 0 and open(j).read() != before and mode_of(j) == 0o600,
              "--force: %d %r mode %o" % (rc, err, mode_of(j)))

        # A config readable by others is refused (as ssh refuses such a private key), unless
        # --insecure-key-file says otherwise, and then it warns.
        os.chmod(j, 0o644)
        rc, out, err = run("decode", "-c", j, "4e4d")
        check(rc != 0 and err.startswith("Error: %s: is readable by others (mode 0644); it holds "
                                         "keys and must be private: chmod 600 %s\n" % (j, j)),
              "permission refusal %d %r" % (rc, err))
        rc, out, err = run("decode", "--insecure-key-file", "-c", j, "4e4d")
        check(err.startswith("WARNING: %s is readable by others (mode 0644) (allowed by option); "
                             "keys should be private: chmod 600 %s\n" % (j, j)),
              "permission warning %r" % err)
        # A symlink is not followed, neither to read keys nor to overwrite with --force.
        link = os.path.join(d, "link.json")
        os.chmod(j, 0o600)
        os.symlink(j, link)
        rc, out, err = run("decode", "-c", link, "4e4d")
        check(rc != 0 and "symbolic link" in err, "symlink read refused %d %r" % (rc, err))
        before = open(j).read()
        rc, out, err = run("keygen", "-o", link, "--force")
        check(rc == 1 and "symbolic link" in err and open(j).read() == before,
              "keygen --force through a symlink refused %d %r" % (rc, err))


def _check_legacy_file(text):
    """Decrypts a legacy file with python3-cryptography, independently of nomq."""
    try:
        import base64
        import hashlib
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        print("note: python3-cryptography missing, legacy file not decrypted independently")
        return
    raw = base64.b64decode(text.strip(), validate=True)
    key = hashlib.sha256(b"nomq_config_key").digest()
    dec = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    plain = dec.update(raw[16:]) + dec.finalize()
    plain = plain[:-plain[-1]]
    cfg = json.loads(plain)
    check(list(cfg) == ["ip", "port", "use_ipv6", "encryption_key", "hmac_key"],
          "legacy keys %r" % list(cfg))
    check(plain.decode() == json.dumps(cfg), "legacy JSON is json.dumps form: %r" % plain)


def case_keygen_usage_errors():
    use = "Use 'nomq keygen --help' to see usage.\n"
    cases = [
        (["keygen", "--legacy", "--wire", "v2"],
         "Error: --wire v2 cannot be stored with --legacy: the original's format holds only ip, "
         "port, use_ipv6 and the keys, and implies wire v1 (pass --wire/--epoch to nomq pub/sub "
         "instead, or write a JSON config)\n" + use),
        (["keygen", "--group", "example.com"],
         "Error: --group: must be an IPv4 broadcast or multicast address or an IPv6 multicast "
         "address, got \"example.com\"\n" + use),
        (["keygen", "--port", "70000"], "Error: --port: Value 70000 not in range 0 to 65535\n" + use),
        (["keygen", "--wire", "v9"], "Error: --wire: needs v1 or v2, got 'v9'\n" + use),
        (["keygen", "-x"], "Error: The following argument was not expected: -x\n" + use),
    ]
    for args, want in cases:
        rc, out, err = run(*args)
        check(rc == 2 and out == "" and err == want,
              "%s: exit %d stdout %r stderr %r, expected %r" % (args, rc, out, err, want))
    # --legacy --wire v1 is consistent and fine.
    rc, out, err = run("keygen", "--legacy", "--wire", "v1")
    check(rc == 0 and err == "", "--legacy --wire v1: %d %r" % (rc, err))


def main():
    global NOMQ, VECTORS
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    NOMQ = sys.argv[1]
    with open(sys.argv[2]) as f:
        VECTORS = json.load(f)
    case = globals().get("case_" + sys.argv[3])
    if case is None:
        print("unknown case", sys.argv[3])
        return 2
    case()
    print("%s: %s" % (sys.argv[3], "FAILED (%d)" % len(FAILURES) if FAILURES else "ok"))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
