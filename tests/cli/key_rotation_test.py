#!/usr/bin/env python3
"""`nomq keygen --rotate` and the SIGHUP key reload of `nomq sub` through the real executable
(issue 13 item 3; docs/security.md §4).

Usage: key_rotation_test.py NOMQ_BINARY CASE
Nodes use the loopback broadcast group 127.255.255.255 on a free port: nothing leaves the host.
"""

import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

NOMQ = ""
FAILURES = []


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL:", what)


def run(*args, stdin=None, timeout=30):
    p = subprocess.run([NOMQ, *args], capture_output=True, text=True, input=stdin, timeout=timeout)
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


class Lines:
    """A pipe's lines, each awaited for a bounded time."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b""
        self.seen = []

    def wait_for(self, needle, timeout=20):
        end = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if needle in line:
                    self.seen.remove(line)
                    return line
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
            *lines, self.buf = self.buf.split(b"\n")
            self.seen += [l.decode("utf-8", "replace") for l in lines]


def case_keygen_rotate():
    """--rotate rewrites the file in place: key_epoch + 1, a new master_secret, the same
    group_id and other settings, mode 0600; twice gives epoch 2."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "nomq.json")
        rc, out, err = run("keygen", "-o", path, "--group", "239.1.2.3")
        check(rc == 0, "keygen: exit %d %r" % (rc, err))
        before = load(path)
        rc, out, err = run("keygen", "--rotate", "-o", path)
        check(rc == 0, "--rotate: exit %d %r" % (rc, err))
        check(out.startswith("Rotated %s to key epoch 1 (new master secret, group_id %s" % (path, before["group_id"])),
              "--rotate stdout %r" % out)
        check(err == "", "--rotate stderr %r" % err)
        after = load(path)
        check(after["key_epoch"] == before["key_epoch"] + 1, "key_epoch %r -> %r" % (before["key_epoch"], after["key_epoch"]))
        check(after["master_secret"] != before["master_secret"], "master_secret unchanged")
        check(len(after["master_secret"]) == 64, "master_secret %r" % after["master_secret"])
        for k in before:
            if k not in ("master_secret", "key_epoch"):
                check(after.get(k) == before[k], "%s changed: %r -> %r" % (k, before[k], after.get(k)))
        check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "mode %o" % stat.S_IMODE(os.stat(path).st_mode))
        check(not os.path.exists(path + ".rotating"), "temporary file left behind")
        rc, out, err = run("keygen", "--rotate", "-o", path)
        check(rc == 0 and load(path)["key_epoch"] == 2, "second rotation: exit %d, %r" % (rc, out))


def case_keygen_rotate_refuses():
    """Raw keys (v1-style, no epochs) are refused with one line and exit 1, the file untouched;
    --rotate without -o or with other options is a usage error (exit 2)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "raw.json")
        rc, _, _ = run("keygen", "--raw-keys", "-o", path)
        check(rc == 0, "keygen --raw-keys")
        text = open(path).read()
        rc, out, err = run("keygen", "--rotate", "-o", path)
        check(rc == 1, "raw: exit %d" % rc)
        check(err.count("\n") == 1 and err.startswith("Error: %s: cannot rotate raw keys" % path), "raw: stderr %r" % err)
        check(open(path).read() == text, "raw: file changed")
        v1 = os.path.join(d, "v1.json")
        run("keygen", "--wire", "v1", "-o", v1)
        rc, out, err = run("keygen", "--rotate", "-o", v1)
        check(rc == 1 and "cannot rotate raw keys" in err, "v1: exit %d %r" % (rc, err))
        rc, out, err = run("keygen", "--rotate")
        check(rc == 2 and "--rotate needs -o FILE" in err, "no -o: exit %d %r" % (rc, err))
        rc, out, err = run("keygen", "--rotate", "-o", os.path.join(d, "missing.json"))
        check(rc == 1 and err.startswith("Error: ") and err.count("\n") == 1, "missing: exit %d %r" % (rc, err))


def case_sighup_bad_file_keeps_running():
    """A subscriber sent SIGHUP with a broken file, a raw-key file and an unrotated file says so
    in one line each and keeps its keys (it still receives); then the rotated file moves it
    to epoch 1 while a publisher on the old file is still heard (the overlap)."""
    port = free_udp_port()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sub.json")
        rc, _, err = run("keygen", "-o", path)
        check(rc == 0, "keygen %r" % err)
        cfg = load(path)
        cfg.update({"group": "127.255.255.255", "ip": "127.0.0.1", "port": port, "key_overlap_s": 60})
        save(path, cfg)
        old = os.path.join(d, "old.json")
        save(old, cfg)
        sub = subprocess.Popen([NOMQ, "sub", "-c", path, "-t", "a", "--ready"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err = Lines(sub.stderr)
        out = Lines(sub.stdout)
        try:
            check(err.wait_for("nomq sub: ready") is not None, "sub not ready")

            def hup(expect, what):
                sub.send_signal(signal.SIGHUP)
                line = err.wait_for("SIGHUP:")
                check(line is not None and expect in line, "%s: %r" % (what, line))
                check(sub.poll() is None, "%s: sub exited" % what)

            def heard(text):
                rc, o, e = run("pub", "-c", old, "-t", "a", "-m", text, "-q", "1")
                check(rc == 0, "pub %s: exit %d %r" % (text, rc, e))
                check(out.wait_for(text) is not None, "sub did not print %r" % text)

            with open(path, "w") as f:
                f.write("{ not json")
            hup("keeping key epoch 0", "broken file")
            heard("after-broken")
            raw = dict(cfg)
            del raw["master_secret"], raw["group_id"], raw["key_epoch"]
            raw.update({"encryption_key": os.urandom(32).hex(), "hmac_key": os.urandom(32).hex()})
            save(path, raw)
            hup("raw encryption_key/hmac_key cannot be rotated", "raw file")
            save(path, cfg)
            hup("still names key epoch 0", "unrotated file")
            heard("after-unrotated")
            rc, o, e = run("keygen", "--rotate", "-o", path)
            check(rc == 0, "--rotate: %r" % e)
            hup("key epoch 1 from %s accepted; sending switches to it in 30 s, epoch 0 refused after 60 s" % path,
                "rotated file")
            heard("within-overlap")
            hup("the rotation to key epoch 1 has not switched yet", "second SIGHUP, same file")
        finally:
            sub.send_signal(signal.SIGTERM)
            try:
                rc = sub.wait(timeout=20)
            except subprocess.TimeoutExpired:
                sub.kill()
                rc = -1
        check(rc == 0, "sub exit %d" % rc)


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
