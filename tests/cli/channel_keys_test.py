#!/usr/bin/env python3
"""Per-channel keys through the real executable (issue 13 item 4; docs/config.md "Per-channel
keys", docs/security.md §1): `nomq keygen --channel` writes and copies a channel key; a
subscriber without it receives nothing on the keyed channels while its group traffic flows;
what it publishes there is refused by the key holders; SIGHUP with the key added lets the next
publishes in.

Usage: channel_keys_test.py NOMQ_BINARY CASE
Nodes use the loopback broadcast group 127.255.255.255 on a free port: nothing leaves the host.
"""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile

from key_rotation_test import Lines

NOMQ = ""
FAILURES = []


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL:", what)


def run(*args, timeout=30):
    p = subprocess.run([NOMQ, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, cfg):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f)
    os.chmod(path, 0o600)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def case_keygen_channel():
    """--channel adds an entry with a fresh secret in place (mode 0600); --from copies it into
    another config of the same group; the same pattern again replaces the secret; mistakes
    are one line with exit 1 or 2; config show masks the secret."""
    with tempfile.TemporaryDirectory() as d:
        a = os.path.join(d, "a.json")
        b = os.path.join(d, "b.json")
        rc, _, err = run("keygen", "-o", a)
        check(rc == 0, "keygen: %r" % err)
        cfg = load(a)
        save(b, cfg)
        rc, out, err = run("keygen", "--channel", "door/#", "-o", a)
        check(rc == 0, "--channel: exit %d %r" % (rc, err))
        check(out.startswith("Added the channel key for 'door/#' in %s (a new random secret" % a), "stdout %r" % out)
        keys = load(a).get("channel_keys", [])
        check(len(keys) == 1 and keys[0]["pattern"] == "door/#" and re.fullmatch("[0-9a-f]{64}", keys[0]["secret"])
              and keys[0]["key_epoch"] == 0, "channel_keys %r" % keys)
        check(stat.S_IMODE(os.stat(a).st_mode) == 0o600, "mode %o" % stat.S_IMODE(os.stat(a).st_mode))
        for k in cfg:
            check(load(a).get(k) == cfg[k], "%s changed" % k)
        rc, out, err = run("keygen", "--channel", "door/#", "--from", a, "-o", b)
        check(rc == 0, "--from: exit %d %r" % (rc, err))
        check(load(b).get("channel_keys") == keys, "copied %r" % load(b).get("channel_keys"))
        rc, out, err = run("keygen", "--channel", "door/#", "-o", a)
        check(rc == 0 and out.startswith("Replaced"), "replace: %d %r" % (rc, out))
        check(load(a)["channel_keys"][0]["secret"] != keys[0]["secret"], "secret not replaced")
        rc, out, err = run("config", "show", "-c", a)
        check(rc == 0 and keys[0]["secret"] not in out and "masked" in out, "show: %r" % out)

        rc, out, err = run("keygen", "--channel", "door/#")
        check(rc == 2 and "--channel needs -o FILE" in err, "no -o: %d %r" % (rc, err))
        text = open(a).read()
        rc, out, err = run("keygen", "--channel", "door/#/x", "-o", a)
        check(rc == 1 and err.count("\n") == 1 and "pattern" in err, "bad pattern: %d %r" % (rc, err))
        check(open(a).read() == text, "bad pattern: file changed")
        rc, out, err = run("keygen", "--channel", "lobby", "--from", a, "-o", b)
        check(rc == 1 and "has no channel key for 'lobby'" in err, "--from without it: %d %r" % (rc, err))
        other = os.path.join(d, "other.json")
        run("keygen", "-o", other)
        rc, out, err = run("keygen", "--channel", "door/#", "--from", a, "-o", other)
        check(rc == 1 and "group_id" in err, "--from another group: %d %r" % (rc, err))
        v1 = os.path.join(d, "v1.json")
        run("keygen", "--wire", "v1", "-o", v1)
        rc, out, err = run("keygen", "--channel", "door/#", "-o", v1)
        check(rc == 1 and "wire v2" in err, "v1: %d %r" % (rc, err))


def case_sub_without_the_key():
    """A and B hold the key of door/#, C does not (same group). C (subscribed to '#') receives
    the group's lobby messages but none of A's door messages; C's own publish on door/front
    does not reach B. After SIGHUP with the key in its file, C receives the next one."""
    port = free_udp_port()
    with tempfile.TemporaryDirectory() as d:
        a, b, c = (os.path.join(d, n + ".json") for n in "abc")
        rc, _, err = run("keygen", "-o", a)
        check(rc == 0, "keygen %r" % err)
        cfg = load(a)
        cfg.update({"group": "127.255.255.255", "ip": "127.0.0.1", "port": port})
        save(a, cfg)
        save(c, cfg)
        run("keygen", "--channel", "door/#", "-o", a)
        save(b, load(a))
        sub_b = subprocess.Popen([NOMQ, "sub", "-c", b, "-t", "door/front", "-t", "lobby/#", "--ready"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sub_c = subprocess.Popen([NOMQ, "sub", "-c", c, "-t", "#", "--ready"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out_b, err_b = Lines(sub_b.stdout), Lines(sub_b.stderr)
        out_c, err_c = Lines(sub_c.stdout), Lines(sub_c.stderr)
        try:
            check(err_b.wait_for("nomq sub: ready") is not None, "B not ready")
            check(err_c.wait_for("nomq sub: ready") is not None, "C not ready")

            def pub(cfg_path, channel, text):
                rc, o, e = run("pub", "-c", cfg_path, "-t", channel, "-m", text)
                check(rc == 0, "pub %s %s: exit %d %r" % (channel, text, rc, e))

            # A's door message, then a group marker: loopback keeps their order, so once C
            # printed the marker it would have printed the door message before it.
            pub(a, "door/front", "door-1")
            pub(a, "lobby/light", "marker-1")
            check(out_b.wait_for("door-1") is not None, "B did not get door-1")
            check(out_b.wait_for("marker-1") is not None, "B did not get marker-1")
            check(out_c.wait_for("marker-1") is not None, "C did not get marker-1")
            check(not any("door-1" in l for l in out_c.seen), "C printed door-1: %r" % out_c.seen)

            # C publishes on door/front with its group keys: B refuses it.
            pub(c, "door/front", "forged-1")
            pub(a, "lobby/light", "marker-2")
            check(out_b.wait_for("marker-2") is not None, "B did not get marker-2")
            check(not any("forged-1" in l for l in out_b.seen), "B printed forged-1: %r" % out_b.seen)

            # C gets the key in its file, SIGHUP: the next door message reaches it.
            rc, o, e = run("keygen", "--channel", "door/#", "--from", a, "-o", c)
            check(rc == 0, "--from into c: %r" % e)
            sub_c.send_signal(signal.SIGHUP)
            line = err_c.wait_for("SIGHUP:")
            check(line is not None and "channel keys from %s: door/#" % c in line, "C SIGHUP: %r" % line)
            pub(a, "door/front", "door-2")
            check(out_c.wait_for("door-2") is not None, "C did not get door-2 after the key")
            check(out_b.wait_for("door-2") is not None, "B did not get door-2")
        finally:
            rcs = []
            for p in (sub_b, sub_c):
                p.send_signal(signal.SIGTERM)
                try:
                    rcs.append(p.wait(timeout=20))
                except subprocess.TimeoutExpired:
                    p.kill()
                    rcs.append(-1)
        check(rcs == [0, 0], "sub exits %r" % rcs)


def main():
    global NOMQ
    NOMQ = sys.argv[1]
    name = sys.argv[2]
    fn = globals().get("case_" + name)
    if fn is None:
        print("no case", name)
        return 2
    fn()
    print("%s: %s" % (name, "FAILED" if FAILURES else "ok"))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
