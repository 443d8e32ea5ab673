"""Two NoMQ sites in network namespaces joined only through a Mosquitto broker in a third
(docs/bridge.md, "Two sites in namespaces").

    A (10.78.1.1) --veth-- M (10.78.1.254, 10.78.2.254: mosquitto) --veth-- B (10.78.2.1)

The test creates the namespaces and the veth pairs and deletes them at the end. A and B route
through M, and M does not forward (ip_forward 0, set by the test): the broker is the only way
across. Both sites use the same NoMQ keys and group (255.255.255.255, the same
port), so only the topology keeps them apart; the test first shows that a NoMQ datagram from A
does not reach B without the bridges. Needs root (CAP_NET_ADMIN); skipped otherwise.
Environment: NOMQ_BIN (the nomq executable).
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from bridge_test import MOSQUITTO, STEP, Proc, in_rule, out_rule

NOMQ = os.environ.get("NOMQ_BIN", "nomq")
IP = shutil.which("ip") or "/usr/sbin/ip"


def ip(*args):
    p = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30)
    return p.returncode == 0, p.stderr.strip()


class Lab:
    """Namespaces A, B, M; veth A-M and B-M; processes run inside them."""

    def __init__(self):
        tag = "%d%s" % (os.getpid() % 100000, secrets.token_hex(2))
        self.ns = {k: "nqbr%s%s" % (tag, k) for k in ("a", "b", "m")}
        self.created = []
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="nomq-bridge-netns-")

    def build(self):
        for name in self.ns.values():
            ok, err = ip("netns", "add", name)
            if not ok:
                return "cannot create network namespaces (%s)" % err
            self.created.append(name)
        a, b, m = self.ns["a"], self.ns["b"], self.ns["m"]
        steps = [
            ("-n", m, "link", "add", "to-a", "type", "veth", "peer", "name", "eth0", "netns", a),
            ("-n", m, "link", "add", "to-b", "type", "veth", "peer", "name", "eth0", "netns", b),
            ("-n", m, "addr", "add", "10.78.1.254/24", "dev", "to-a"),
            ("-n", m, "addr", "add", "10.78.2.254/24", "dev", "to-b"),
            ("-n", a, "addr", "add", "10.78.1.1/24", "brd", "+", "dev", "eth0"),
            ("-n", b, "addr", "add", "10.78.2.1/24", "brd", "+", "dev", "eth0"),
        ]
        for ns in (a, b, m):
            steps.append(("-n", ns, "link", "set", "lo", "up"))
        steps += [("-n", m, "link", "set", "to-a", "up"), ("-n", m, "link", "set", "to-b", "up"),
                  ("-n", a, "link", "set", "eth0", "up"), ("-n", b, "link", "set", "eth0", "up"),
                  # Each site routes everything to M (so 255.255.255.255 has a route out of
                  # eth0, and A can address B), and M does not forward: nothing crosses.
                  ("-n", a, "route", "add", "default", "via", "10.78.1.254"),
                  ("-n", b, "route", "add", "default", "via", "10.78.2.254")]
        for s in steps:
            ok, err = ip(*s)
            if not ok:
                return "cannot wire the namespaces (%s: %s)" % (" ".join(s), err)
        p = subprocess.run([IP, "netns", "exec", m, "sysctl", "-w", "net.ipv4.ip_forward=0"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            return "cannot turn forwarding off in M (%s)" % p.stderr.strip()
        return None

    def path(self, name):
        return os.path.join(self.dir, name)

    def spawn(self, where, argv, stdin=None):
        p = Proc([IP, "netns", "exec", self.ns[where], *argv], stdin=stdin, cwd=self.dir)
        self.procs.append(p)
        return p

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        for name in self.created:
            ip("netns", "del", name)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    l = Lab()
    why = l.build()
    if why:
        l.close()
        pytest.skip(why)
    yield l
    l.close()


PORT = 18870  # inside the namespaces nothing else listens: fixed ports are free


def test_two_sites_in_namespaces_joined_only_through_the_broker(lab):
    site = lab.path("site.json")
    fd = os.open(site, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"encryption_key": secrets.token_hex(32), "hmac_key": secrets.token_hex(32),
                   "group": "255.255.255.255", "port": 18871, "heartbeat_interval_s": 2,
                   "session_timeout_s": 6}, f)

    def sub(where, *args):
        s = lab.spawn(where, [NOMQ, "sub", "-c", site, "-d", *args])
        assert s.wait_line("nomq sub: ready", STEP), s.transcript()
        return s

    def pub(where, *args):
        pubs((where,) + args)

    def pubs(*runs):  # concurrently: a fresh `nomq pub` spends seconds in discovery and linger
        ps = [lab.spawn(r[0], [NOMQ, "pub", "-c", site, *r[1:]]) for r in runs]
        for p in ps:
            assert p.wait(STEP) == 0, p.transcript()

    # 1. Without bridges nothing crosses: same keys, same group and port, separate LANs; neither
    # A's broadcast nor a datagram A addresses to B itself (routed to M, not forwarded).
    alone = sub("b", "-t", "#", "-v", "-W", "3")
    pubs(("a", "-t", "plant/probe", "-m", "alone", "-q", "0"),
         ("a", "-t", "plant/probe", "-m", "direct", "-q", "0", "-h", "10.78.2.1"))
    alone.wait(STEP)
    assert alone.out == [], alone.transcript()

    # 2. The broker in M, listening on M's two addresses; a bridge per site.
    conf = lab.path("mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 10.78.1.254\nlistener %d 10.78.2.254\nallow_anonymous true\n"
                "max_queued_messages 100000\nuser root\n" % (PORT, PORT))
    broker = lab.spawn("m", [MOSQUITTO, "-c", conf])
    assert broker.wait_line("running", STEP), broker.transcript()
    bridges = {}
    for name, other, broker_ip in (("a", "b", "10.78.1.254"), ("b", "a", "10.78.2.254")):
        cfg = {"nomq_config": site, "bridge_id": name,
               "broker": {"host": broker_ip, "port": PORT, "reconnect_initial_ms": 100,
                          "reconnect_max_ms": 1000},
               "rules": [out_rule("plant/#", "sites/%s/plant/#" % name),
                         in_rule("from-%s/#" % other, "sites/%s/plant/#" % other)],
               "store": {"path": lab.path(name + ".db")}, "stats_interval_s": 1}
        path = lab.path("bridge-%s.json" % name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        bridges[name] = lab.spawn(name, [NOMQ, "bridge", "-c", path, "--json"])
    for b in bridges.values():
        assert b.wait_line("connected to", STEP), b.transcript()

    # 3. QoS 0/1/2 both ways, to wildcard subscribers ('+' at B, '#' at A).
    sb = sub("b", "-t", "from-a/+/x", "-v", "-C", "3", "-W", "20")
    sa = sub("a", "-t", "from-b/#", "-v", "-C", "3", "-W", "20")
    pubs(*[(w, "-t", "plant/l%s/x" % q, "-m", w + q, "-q", q) for q in "012" for w in "ab"])
    assert sb.wait(STEP) == 0, sb.transcript() + bridges["b"].transcript()
    assert sa.wait(STEP) == 0, sa.transcript() + bridges["a"].transcript()
    assert sorted(sb.out) == ["from-a/l0/x a0", "from-a/l1/x a1", "from-a/l2/x a2"], sb.out
    assert sorted(sa.out) == ["from-b/l0/x b0", "from-b/l1/x b1", "from-b/l2/x b2"], sa.out

    # 4. Retained values: a subscriber at B that starts later gets A's value; one published
    # with a 2 s expiry is gone by then (the broker and B's bridge honour the expiry).
    pubs(("a", "-t", "plant/door", "-m", "open", "-q", "1", "-r"),
         ("a", "-t", "plant/short", "-m", "stale", "-q", "1", "-r", "--ttl", "2"))
    time.sleep(2.0)
    late = sub("b", "-t", "from-a/#", "-W", "3", "--json")
    late.wait(STEP)
    got = [json.loads(l) for l in late.out]
    assert [(m["channel"], m["message"], m["retain"]) for m in got] == \
        [("from-a/door", "open", True)], late.transcript()

    # 5. Expiry of a message in flight: QoS 1 from B with a 1 s TTL and no subscriber at A:
    # bridge A's publish waits for one and ends expired; a later subscriber gets nothing.
    pub("b", "-t", "plant/gone", "-m", "late", "-q", "1", "--ttl", "1")
    time.sleep(2.5)
    after = sub("a", "-t", "from-b/gone", "-W", "2")
    after.wait(STEP)
    assert after.out == [], after.transcript()

    broker.signal(signal.SIGTERM)
    assert broker.wait(10) is not None
