#!/usr/bin/env python3
"""`nomq pub` / `nomq sub` mistakes and limits through the real executable (issue 15 §1).

Usage: pub_sub_usage_test.py NOMQ_BINARY CASE
Each case checks exit code and the one line on stderr. Nodes that get created use the loopback
broadcast group 127.255.255.255 on an ephemeral group port (config port 0): nothing leaves the
host and cases run in parallel.
"""

import json
import os
import subprocess
import sys
import tempfile

NOMQ = ""
FAILURES = []
HINT_PUB = "Use 'nomq pub --help' to see usage."
HINT_SUB = "Use 'nomq sub --help' to see usage."


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL:", what)


def run(*args, stdin=None, timeout=30):
    p = subprocess.run([NOMQ, *args], capture_output=True, input=stdin, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), p.stderr


def config(directory, mode=0o600, extra=None):
    cfg = {"encryption_key": os.urandom(32).hex(), "hmac_key": os.urandom(32).hex(),
           "group": "127.255.255.255", "ip": "127.0.0.1", "port": 0}
    cfg.update(extra or {})
    path = os.path.join(directory, "nomq.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    os.chmod(path, mode)
    return path


def usage(args, says, hint, d):
    """A usage mistake: exit 2, 'Error: ...says...' then the hint, nothing else."""
    rc, out, err, _ = run(*args)
    what = " ".join(args)
    check(rc == 2, "%s: exit %d, want 2 (stderr %r)" % (what, rc, err))
    lines = err.splitlines()
    check(len(lines) == 2, "%s: %d stderr lines, want 2: %r" % (what, len(lines), err))
    if lines:
        check(lines[0].startswith("Error: ") and says in lines[0], "%s: %r lacks %r" % (what, lines[0], says))
        check(lines[-1] == hint, "%s: last line %r" % (what, lines[-1]))
    check(out == "", "%s: stdout %r" % (what, out))


def case_empty_channel():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        usage(["pub", "-c", c, "-t", "", "-m", "x"], "-t: the channel name is empty", HINT_PUB, d)
        usage(["sub", "-c", c, "-t", ""], "-t: the channel name is empty", HINT_SUB, d)


def case_channel_name_too_long():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        long = "c" * 256
        usage(["pub", "-c", c, "-t", long, "-m", "x"], "channel name of 256 bytes: at most 255", HINT_PUB, d)
        usage(["sub", "-c", c, "-t", long], "channel name of 256 bytes: at most 255", HINT_SUB, d)


def case_port_range():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        for bad in ("70000", "0", "-1", "80x"):
            usage(["pub", "-c", c, "-t", "a", "-m", "x", "-p", bad], "port must be 1-65535, got '%s'" % bad, HINT_PUB, d)
        usage(["sub", "-c", c, "-t", "a", "-p", "70000"], "port must be 1-65535", HINT_SUB, d)


def case_qos_value():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        usage(["pub", "-c", c, "-t", "a", "-m", "x", "--qos=1x"], "qos must be 0, 1 or 2, got '1x'", HINT_PUB, d)
        usage(["pub", "-c", c, "-t", "a", "-m", "x", "-q", "3"], "qos must be 0, 1 or 2, got '3'", HINT_PUB, d)
        # mosquitto_sub's -q has no meaning here: said so, not silently ignored.
        usage(["sub", "-c", c, "-t", "a", "-q", "1"], "nomq sub takes no QoS", HINT_SUB, d)


def case_missing_file():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        missing = os.path.join(d, "missing.bin")
        usage(["pub", "-c", c, "-t", "a", "-f", missing], "-f %s: No such file or directory" % missing, HINT_PUB, d)
        usage(["pub", "-c", c, "-t", "a", "-f", d], "-f %s: Is a directory" % d, HINT_PUB, d)


def case_message_too_large():
    """The size and the limit, and a binary file is not echoed to the terminal."""
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        blob = os.path.join(d, "blob.bin")
        with open(blob, "wb") as f:
            f.write(bytes(range(256)) * 8)  # 2048 bytes, control characters and invalid UTF-8
        rc, out, err, raw = run("pub", "-c", c, "-t", "a", "-f", blob)
        check(rc == 1, "binary: exit %d (stderr %r)" % (rc, err))
        check(err.startswith("Error: message 1 (\"<2048 bytes of binary>\") refused: message of 2048 bytes: "
                             "at most 1024 (max_message_size) (message_too_large)"), "binary: %r" % err)
        check(b"\x01" not in raw and b"\xff" not in raw, "binary: stderr echoes the file: %r" % raw[:80])
        rc, out, err, _ = run("pub", "-c", c, "-t", "a", "-m", "x" * 1500)
        check(rc == 1, "text: exit %d" % rc)
        check("message of 1500 bytes: at most 1024 (max_message_size)" in err, "text: %r" % err)
        check(("x" * 40 + "...") in err and ("x" * 41) not in err, "text: preview %r" % err)


def case_too_many_channels():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        args = ["sub", "-c", c, "-W", "5"]
        for i in range(21):
            args += ["-t", "ch%d" % i]
        usage(args, "cannot subscribe to 'ch20': subscribed to 20 channels, the limit (config key max_channels)",
              HINT_SUB, d)


def case_repeated_channel_is_one_subscription():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        rc, out, err, _ = run("sub", "-c", c, "-t", "a", "-t", "a", "-t", "b", "--ready", "-W", "0.2")
        check(rc == 3, "exit %d, want 3 (the -W timeout) (stderr %r)" % (rc, err))
        check("subscribed to a, b\n" in err, "ready line: %r" % err)
        check("Error" not in err, "stderr %r" % err)


def case_count_and_timeout_zero_mean_never():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        # -C 0 -W 0: runs until a signal; -W 0.3 ends it here (exit 3, the timeout).
        rc, out, err, _ = run("sub", "-c", c, "-t", "a", "-C", "0", "-W", "0.3")
        check(rc == 3, "-C 0: exit %d (stderr %r)" % (rc, err))
        p = subprocess.Popen([NOMQ, "sub", "-c", c, "-t", "a", "-W", "0", "--ready"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stderr.readline().decode()
        check("nomq sub: ready" in line, "-W 0: %r" % line)
        check(p.poll() is None, "-W 0: exited at once")
        p.terminate()
        out, err = p.communicate(timeout=20)
        check(p.returncode == 0, "-W 0: exit %d after SIGTERM (stderr %r)" % (p.returncode, err))
        usage(["sub", "-c", c, "-t", "a", "-C", "-1"], "--count: needs a count, 0 (never) or more, got '-1'", HINT_SUB, d)
        usage(["sub", "-c", c, "-t", "a", "-W", "-2.5"], "--timeout: needs seconds, 0 (never) or more, got '-2.5'", HINT_SUB, d)
        rc, out, err, _ = run("sub", "--help")
        check("[default: 0, never]" in out, "--help: %r" % out)


def case_ipv6_host_from_ipv4_node():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        usage(["pub", "-c", c, "-t", "a", "-m", "x", "-q", "1", "-h", "::1"],
              "-h ::1 is an IPv6 address but the node is IPv4 (group 127.255.255.255)", HINT_PUB, d)
        usage(["pub", "-c", c, "-t", "a", "-m", "x", "-h", "gateway"], "-h needs a numeric", HINT_PUB, d)


def case_config_warning_once():
    """A config readable by others: refused in one line; with --insecure-key-file one WARNING line,
    not 'Warning: WARNING:'."""
    with tempfile.TemporaryDirectory() as d:
        c = config(d, mode=0o644)
        rc, out, err, _ = run("pub", "-c", c, "-t", "a", "-m", "x")
        check(rc == 2 and err.startswith("Error: ") and "readable by others" in err
              and err.count("readable by others") == 1, "refusal: exit %d (stderr %r)" % (rc, err))
        rc, out, err, _ = run("pub", "-c", c, "-t", "a", "-m", "x", "--insecure-key-file")
        check(rc == 0, "exit %d (stderr %r)" % (rc, err))
        lines = err.splitlines()
        check(len(lines) == 1 and lines[0].startswith("WARNING: ") and "readable by others" in lines[0],
              "stderr %r" % err)
        check("Warning: WARNING" not in err and err.count("WARNING") == 1, "doubled: %r" % err)


def case_stdin_lines_beyond_max_pending():
    """-l faster than the discovery period: more QoS 1 lines than max_pending (50), all published.

    Publishes made in the period are reported early but hold their slots until it ends; pub
    waits for a slot instead of refusing the 51st line (it used to exit 1 after 50)."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = 200
    with tempfile.TemporaryDirectory() as d:
        c = config(d, extra={"port": port})
        sub = subprocess.Popen([NOMQ, "sub", "-c", c, "-t", "a", "-C", str(n), "-W", "30", "--ready"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = sub.stderr.readline().decode()
        check("nomq sub: ready" in line, "sub: %r" % line)
        data = "".join("m%d\n" % i for i in range(n)).encode()
        rc, out, err, _ = run("pub", "-c", c, "-t", "a", "-l", "-q", "1", stdin=data)
        check(rc == 0, "pub -l: exit %d (stderr %r)" % (rc, err))
        check("refused" not in err, "pub -l: stderr %r" % err)
        sout, serr = sub.communicate(timeout=40)
        got = sout.decode().splitlines()
        check(sub.returncode == 0, "sub: exit %d (stderr %r)" % (sub.returncode, serr))
        check(sorted(got) == sorted("m%d" % i for i in range(n)),
              "sub got %d of %d: missing %r" % (len(got), n, sorted(set("m%d" % i for i in range(n)) - set(got))[:5]))


def free_udp_port():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lines:
    """Lines of a process's pipe, each awaited for a bounded time (os.read: a buffered
    readline would keep lines that select() then no longer sees)."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.buf = b""

    def read_line(self, seconds):
        """The next line with its newline, or "" when none came within `seconds`."""
        import select
        import time
        end = time.monotonic() + seconds
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return ""
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return ""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace") + "\n"


def read_line(stream, seconds):
    """One line from a pipe nothing else reads, within `seconds` ("" when none came)."""
    return Lines(stream).read_line(seconds)


def case_sub_remove_retained():
    """sub --remove-retained clears every retained value it receives (mosquitto_sub's option).

    A keeper subscriber holds the values after their publisher exited; the remover receives them
    (the keeper's answers), prints them and publishes an empty retained message for each: the
    keeper is delivered both clears (an empty retained message, as in MQTT) and a late
    subscriber gets nothing."""
    with tempfile.TemporaryDirectory() as d:
        c = config(d, extra={"port": free_udp_port()})
        keeper = subprocess.Popen([NOMQ, "sub", "-c", c, "-t", "plant/#", "-F", "%t|%r|%p", "--ready"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        keeper_out = Lines(keeper.stdout)
        try:
            line = read_line(keeper.stderr, 20)
            check("nomq sub: ready" in line, "keeper: %r" % line)
            for ch, msg in (("plant/a", "one"), ("plant/b", "two")):
                rc, out, err, _ = run("pub", "-c", c, "-t", ch, "-m", msg, "-r", "-q", "1")
                check(rc == 0, "pub -r %s: exit %d (stderr %r)" % (ch, rc, err))
            rc, out, err, _ = run("sub", "-c", c, "-t", "plant/#", "--remove-retained", "-C", "2", "-W", "20",
                                  "-F", "%t|%r|%p", "-d")
            check(rc == 0, "sub --remove-retained: exit %d (stderr %r)" % (rc, err))
            check(sorted(out.splitlines()) == ["plant/a|1|one", "plant/b|1|two"], "remover printed %r" % out)
            check("2 retained value(s) cleared" in err, "remover's summary: %r" % err[-300:])
            # The keeper is delivered each clear: its last two lines are the empty retained messages.
            got = []
            for _ in range(4):
                got.append(keeper_out.read_line(20).rstrip("\n"))
            check(sorted(got[:2]) == ["plant/a|1|one", "plant/b|1|two"], "keeper got %r" % got)
            check(sorted(got[2:]) == ["plant/a|1|", "plant/b|1|"], "keeper got no clears: %r" % got)
            # A late subscriber: no retained value left anywhere (answers come within 250 ms).
            rc, out, err, _ = run("sub", "-c", c, "-t", "plant/#", "-W", "2", "-v")
            check(rc == 3 and out == "", "late sub: exit %d, stdout %r (want 3 and nothing)" % (rc, out))
        finally:
            keeper.terminate()
            keeper.communicate(timeout=20)


def case_sub_withdraw_drops_inherited_subscription():
    """sub -U: a node restarted at the same address withdraws a subscription of its previous
    session, and the publisher still waiting on it is answered at once.

    Peers let a new session at a known address inherit the old one's subscriptions until it
    confirms them or two heartbeat rounds pass (75 s with the default 30 s interval): without
    -U, a message to the killed subscriber stays pending that long."""
    with tempfile.TemporaryDirectory() as d:
        c = config(d, extra={"port": free_udp_port()})
        port = str(free_udp_port())
        sub1 = subprocess.Popen([NOMQ, "sub", "-c", c, "-t", "t1", "--unicast-port", port, "--ready"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pub = subprocess.Popen([NOMQ, "pub", "-c", c, "-t", "t1", "-l", "-q", "1", "--json", "--ttl", "600"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = read_line(sub1.stderr, 20)
            check("nomq sub: ready" in line, "sub1: %r" % line)
            # pub -l prints reports between lines and at the end of its input.
            pub.stdin.write(b"m1\n")
            pub.stdin.flush()
            got = read_line(sub1.stdout, 20)
            check(got == "m1\n", "sub1 got %r" % got)
            sub1.kill()  # no UNSUBSCRIBE: its subscription stays known to the publisher
            sub1.communicate(timeout=20)
            pub.stdin.write(b"m2\n")  # to the dead session: retransmitted, unanswered
            pub.stdin.close()  # pub waits for both reports (printed in order), then exits
            rc, out, err, _ = run("sub", "-c", c, "-U", "t1", "--unicast-port", port, "--ready")
            check(rc == 0, "sub -U: exit %d (stderr %r)" % (rc, err))
            check("nomq sub: withdrew t1" in err, "sub -U: stderr %r" % err)
            pub_out = Lines(pub.stdout)
            r1 = pub_out.read_line(20)
            check('"acknowledged":true' in r1 and "127.0.0.1:" + port in r1, "m1's report: %r" % r1)
            r2 = pub_out.read_line(20)
            check(r2 != "", "m2 still pending 20 s after sub -U withdrew t1")
            if r2:
                j = json.loads(r2)
                check(j["index"] == 2 and not j["acknowledged"], "m2's report: %r" % r2)
                check([r["state"] for r in j["recipients"]] == ["failed"], "m2's recipients: %r" % r2)
                check(pub.wait(timeout=20) == 1, "pub: exit %r, want 1 (m2 not acknowledged)" % pub.returncode)
        finally:
            if not pub.stdin.closed:
                pub.stdin.close()
            if pub.poll() is None:
                pub.kill()
            pub.wait()
            if sub1.poll() is None:
                sub1.kill()
                sub1.communicate()


def case_sub_withdraw_usage():
    with tempfile.TemporaryDirectory() as d:
        c = config(d)
        usage(["sub", "-c", c], "give -t CHANNEL to subscribe (or -U CHANNEL", HINT_SUB, d)
        usage(["sub", "-c", c, "-t", "a", "-U", "a"], "-U a: also given with -t", HINT_SUB, d)
        usage(["sub", "-c", c, "-U", ""], "-U: the channel name is empty", HINT_SUB, d)
        # wire v1: the node's warning about v1 comes first, then the usage error.
        rc, out, err, _ = run("sub", "-c", c, "-U", "a", "--wire", "v1")
        check(rc == 2 and "Error: -U a: wire v1 announces no subscriptions" in err and err.endswith(HINT_SUB + "\n"),
              "sub -U a --wire v1: exit %d, stderr %r" % (rc, err))


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
