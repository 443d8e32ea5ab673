"""`nomq bridge` against a real Mosquitto (docs/bridge.md).

Every test starts its own broker from a config it writes, on a free loopback port, and stops it
by PID; NoMQ sites are groups on 127.255.255.255 with their own ports and keys. Synchronisation
is on output lines ("nomq bridge: ready", "connected to", "nomq sub: ready"), with bounded waits.
Environment: NOMQ_BIN (the nomq executable).
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

NOMQ = os.environ.get("NOMQ_BIN", "nomq")
MOSQUITTO = "/usr/sbin/mosquitto"
STEP = 20.0  # seconds: generous bound for one step on a loaded CI machine


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A subprocess whose stdout/stderr lines are collected by threads, with waits on them."""

    def __init__(self, argv, stdin=None, cwd=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        self.out, self.err = [], []
        self.cv = threading.Condition()
        self.pumps = []
        for stream, sink in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self.pumps.append(t)
        if stdin is not None:
            def feed():
                try:
                    self.p.stdin.write(stdin)
                    self.p.stdin.close()
                except (BrokenPipeError, ValueError):
                    pass
            threading.Thread(target=feed, daemon=True).start()

    def _pump(self, stream, sink):
        for line in stream:
            with self.cv:
                sink.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def wait_line(self, text, timeout=STEP, stream="err", count=1):
        sink = self.err if stream == "err" else self.out
        end = time.monotonic() + timeout
        with self.cv:
            while sum(text in l for l in sink) < count:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 0.2))
        return True

    def wait_out_count(self, n, timeout):
        end = time.monotonic() + timeout
        with self.cv:
            while len(self.out) < n and time.monotonic() < end:
                self.cv.wait(0.2)
        return len(self.out) >= n

    def wait(self, timeout=STEP):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        # The process has exited, but its last lines may still be in the pipes: read them before
        # the caller looks at out/err (a fast mosquitto_sub once looked like it printed nothing).
        for t in self.pumps:
            t.join(5)
        return rc

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            if self.wait(10) is None:
                self.p.kill()
                self.p.wait()

    def transcript(self):
        return "$ %s\nstdout:\n%s\nstderr:\n%s" % (" ".join(self.argv), "\n".join(self.out[-30:]),
                                                   "\n".join(self.err[-30:]))


class Env:
    """One test's directory, broker, NoMQ sites and bridges; everything stopped at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nomq-bridge-test-")
        self.procs = []
        self.broker = None
        self.mqtt_port = free_port()

    def path(self, name):
        return os.path.join(self.dir, name)

    def start_broker(self):
        conf = self.path("mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    "persistence_location %s/\nautosave_interval 1\nmax_queued_messages 100000\n"
                    "max_inflight_messages 0\nuser root\n" % (self.mqtt_port, self.dir))
        self.broker = self.spawn([MOSQUITTO, "-c", conf])
        assert self.broker.wait_line("running", STEP), self.broker.transcript()
        return self.broker

    def site(self, name, **extra):
        cfg = {"encryption_key": secrets.token_hex(32), "hmac_key": secrets.token_hex(32),
               "group": "127.255.255.255", "ip": "127.0.0.1", "port": free_port(socket.SOCK_DGRAM),
               "heartbeat_interval_s": 2, "session_timeout_s": 6}
        cfg.update(extra)
        path = self.path(name + ".json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f)
        return path

    def bridge_config(self, name, site, rules, **extra):
        cfg = {"nomq_config": site, "bridge_id": name,
               "broker": {"port": self.mqtt_port, "reconnect_initial_ms": 100, "reconnect_max_ms": 1000},
               "rules": rules, "store": {"path": self.path(name + ".db")}, "stats_interval_s": 1}
        for k, v in extra.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        path = self.path("bridge-" + name + ".json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def bridge(self, config, connected=True):
        b = self.spawn([NOMQ, "bridge", "-c", config, "--json"])
        assert b.wait_line("nomq bridge: ready", STEP), b.transcript()
        if connected:
            assert b.wait_line("connected to", STEP), b.transcript()
        return b

    def spawn(self, argv, stdin=None):
        p = Proc(argv, stdin=stdin, cwd=self.dir)
        self.procs.append(p)
        return p

    def nomq_sub(self, site, *args):
        s = self.spawn([NOMQ, "sub", "-c", site, "-d", *args])
        assert s.wait_line("nomq sub: ready", STEP), s.transcript()
        return s

    def nomq_pub(self, site, *args, stdin=None):
        return self.spawn([NOMQ, "pub", "-c", site, *args], stdin=stdin)

    def mqtt_sub(self, topic, *args):
        s = self.spawn(["mosquitto_sub", "-p", str(self.mqtt_port), "-h", "127.0.0.1", "-V", "5",
                        "-t", topic, *args])
        time.sleep(0.3)  # mosquitto_sub prints nothing when subscribed; the broker is local
        return s

    def mqtt_pub(self, topic, *args):
        p = subprocess.run(["mosquitto_pub", "-p", str(self.mqtt_port), "-h", "127.0.0.1", "-V", "5",
                            "-t", topic, *args], capture_output=True, text=True, timeout=STEP)
        assert p.returncode == 0, p.stderr
        return p

    def last_stats(self, bridge):
        for line in reversed(bridge.out):
            if line.startswith("{"):
                return json.loads(line)
        return None

    def close(self):
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture
def env():
    e = Env()
    yield e
    e.close()


def out_rule(nomq, mqtt, **kw):
    r = {"nomq": nomq, "mqtt": mqtt, "direction": "out"}
    r.update(kw)
    return r


def in_rule(nomq, mqtt, **kw):
    r = {"nomq": nomq, "mqtt": mqtt, "direction": "in"}
    r.update(kw)
    return r


# --- config errors: no broker needed ----------------------------------------------------------

BAD_CONFIGS = [
    ({"bridge_id": "x", "broker": {}, "rules": [out_rule("a/#", "b/#")]}, "nomq_config: missing"),
    ({"nomq_config": "s.json", "rules": [out_rule("a/#", "b/#")]}, "broker: missing"),
    ({"nomq_config": "s.json", "broker": {"port": 0}, "rules": [out_rule("a/#", "b/#")]},
     "broker.port: must be 1..65535"),
    ({"nomq_config": "s.json", "broker": {"protocol": "4"}, "rules": [out_rule("a/#", "b/#")]},
     "broker.protocol: '4'"),
    ({"nomq_config": "s.json", "broker": {}, "rules": []}, "rules: must be a non-empty array"),
    ({"nomq_config": "s.json", "broker": {}, "rules": [{"nomq": "a/#", "mqtt": "b/#", "direction": "sideways"}]},
     "rules[0].direction: 'sideways'"),
    ({"nomq_config": "s.json", "broker": {}, "rules": [out_rule("a/#", "b/+")]},
     "rules[0].mqtt: 'b/+': its wildcard part"),
    ({"nomq_config": "s.json", "broker": {}, "rules": [out_rule("a", "b"), out_rule("a/#/c", "b/#/c")]},
     "rules[1].nomq: 'a/#/c'"),
    ({"nomq_config": "s.json", "broker": {}, "rules": [out_rule("a", "b", max_qos=3)]},
     "rules[0].max_qos: must be 0, 1 or 2"),
    ({"nomq_config": "s.json", "broker": {"tls": {"cert_file": "c.pem"}}, "rules": [out_rule("a", "b")]},
     "broker.tls.key_file"),
    ({"nomq_config": "s.json", "broker": {"hots": "x"}, "rules": [out_rule("a", "b")]},
     "broker.hots: unknown key"),
    ({"nomq_config": "s.json", "broker": {}, "rules": [out_rule("a", "b")], "store": {"max_bytes": "1M"}},
     "store.max_bytes: must be an integer"),
    ({"nomq_config": "s.json", "broker": {}, "rules": [out_rule("a", "b")], "nomq_inflight": 0},
     "nomq_inflight: must be 1..1024"),
]


def test_malformed_config_names_the_field_and_exits_2():
    with tempfile.TemporaryDirectory() as d:
        for i, (cfg, expected) in enumerate(BAD_CONFIGS):
            path = os.path.join(d, "bad%d.json" % i)
            with open(path, "w") as f:
                json.dump(cfg, f)
            p = subprocess.run([NOMQ, "bridge", "-c", path], capture_output=True, text=True, timeout=STEP)
            assert p.returncode == 2, (cfg, p.stderr)
            assert expected in p.stderr, (expected, p.stderr)
            assert p.stderr.count("\n") == 1, p.stderr  # one line
        path = os.path.join(d, "syntax.json")
        with open(path, "w") as f:
            f.write("{\"nomq_config\": ")
        p = subprocess.run([NOMQ, "bridge", "-c", path], capture_output=True, text=True, timeout=STEP)
        assert p.returncode == 2 and "not JSON" in p.stderr, p.stderr
        p = subprocess.run([NOMQ, "bridge", "-c", os.path.join(d, "absent.json")],
                           capture_output=True, text=True, timeout=STEP)
        assert p.returncode == 2 and "cannot be read" in p.stderr, p.stderr


# --- one site and the broker ------------------------------------------------------------------

def test_qos_0_1_2_both_ways_with_wildcards_and_properties(env):
    env.start_broker()
    site = env.site("a")
    b = env.bridge(env.bridge_config("a", site, [out_rule("plant/#", "sites/a/plant/#"),
                                                 in_rule("cmd/+", "sites/a/cmd/+")]))
    # NoMQ -> MQTT: the prefix is rewritten, properties carry TTL, priority, sender, ids.
    ms = env.mqtt_sub("sites/a/#", "-F", "%t|%p|%q|%E|%P", "-q", "2")
    for q in ("0", "1", "2"):
        p = env.nomq_pub(site, "-t", "plant/line%s/temp" % q, "-m", "v" + q, "-q", q,
                         "--priority", "7", "--ttl", "100")
        assert p.wait() == 0, p.transcript()
    assert ms.wait_out_count(3, STEP), ms.transcript() + b.transcript()
    got = sorted(ms.out)
    assert [g.split("|")[:3] for g in got] == [["sites/a/plant/line0/temp", "v0", "0"],
                                               ["sites/a/plant/line1/temp", "v1", "1"],
                                               ["sites/a/plant/line2/temp", "v2", "2"]], got
    for g in got:
        expiry, props = g.split("|")[3:5]
        assert "nomq-priority:7" in props and "nomq-origin:a" in props, props
        assert "nomq-sender:127.0.0.1:" in props and "nomq-id:" in props, props
        assert 95 <= int(expiry) <= 100, g  # the lifetime left, not more
    # MQTT -> NoMQ through a '+' rule; a topic outside every rule does not cross.
    ns = env.nomq_sub(site, "-t", "cmd/#", "-v", "-C", "3", "-W", "20")
    for q in ("0", "1", "2"):
        env.mqtt_pub("sites/a/cmd/c" + q, "-m", "go" + q, "-q", q)
    env.mqtt_pub("sites/a/other/x", "-m", "no", "-q", "1")
    assert ns.wait(STEP) == 0, ns.transcript() + b.transcript()
    assert sorted(ns.out) == ["cmd/c0 go0", "cmd/c1 go1", "cmd/c2 go2"], ns.out
    # Nothing came back: the bridge's own publishes are not bridged again.
    time.sleep(1.5)
    stats = env.last_stats(b)
    assert stats["loops_dropped"] == 0 and stats["in"]["received"] == 3, stats
    assert stats["out"]["acked"] == 2 and stats["backlog"]["messages"] == 0, stats


def test_retained_values_reach_late_subscribers_and_clear(env):
    env.start_broker()
    site = env.site("a")
    env.bridge(env.bridge_config("a", site, [out_rule("state/#", "sites/a/state/#"),
                                             in_rule("remote/#", "remote/#")]))
    p = env.nomq_pub(site, "-t", "state/door", "-m", "open", "-q", "1", "-r")
    assert p.wait() == 0, p.transcript()
    # A late MQTT subscriber gets it from the broker.
    late = env.spawn(["mosquitto_sub", "-p", str(env.mqtt_port), "-V", "5", "-t", "sites/a/state/#",
                      "-v", "-C", "1", "-W", "10", "-F", "%t %p %r"])
    assert late.wait() == 0, late.transcript()
    assert late.out == ["sites/a/state/door open 1"], late.out
    # MQTT retained -> a late NoMQ subscriber (the bridge's node keeps it, as publishers do).
    env.mqtt_pub("remote/setpoint", "-m", "22", "-q", "1", "-r")
    time.sleep(1.0)
    ns = env.nomq_sub(site, "-t", "remote/+", "-C", "1", "-W", "10", "--json")
    assert ns.wait() == 0, ns.transcript()
    m = json.loads(ns.out[0])
    assert m["channel"] == "remote/setpoint" and m["message"] == "22" and m["retain"], m
    # An empty retained message clears it on the broker.
    p = env.nomq_pub(site, "-t", "state/door", "-r", "-n", "-q", "1")
    assert p.wait() == 0, p.transcript()
    time.sleep(1.0)
    late2 = env.spawn(["mosquitto_sub", "-p", str(env.mqtt_port), "-V", "5", "-t", "sites/a/state/#",
                       "-v", "-W", "2"])
    late2.wait()
    assert late2.out == [], late2.out


def test_expiry_is_honoured_across_the_broker(env):
    env.start_broker()
    site = env.site("a")
    b = env.bridge(env.bridge_config("a", site, [in_rule("x/#", "x/#")]))
    # QoS 1 with a 1 s expiry and no NoMQ subscriber: the bridge's publish waits, then ends
    # expired; a subscriber that comes later does not get it.
    env.mqtt_pub("x/short", "-m", "stale", "-q", "1", "-D", "publish", "message-expiry-interval", "1")
    time.sleep(3.0)
    ns = env.nomq_sub(site, "-t", "x/#", "-W", "2")
    ns.wait()
    assert ns.out == [], ns.out
    time.sleep(1.2)
    stats = env.last_stats(b)
    assert stats["in"]["received"] == 1 and stats["in"]["failed"] == 1, stats
    assert stats["backlog"]["messages"] == 0, stats


# --- two sites joined only through the broker -------------------------------------------------

def two_sites(env, store_extra=None):
    env.start_broker()
    a, b = env.site("a"), env.site("b")
    rules_a = [out_rule("plant/#", "sites/a/plant/#"), in_rule("from-b/#", "sites/b/plant/#")]
    rules_b = [out_rule("plant/#", "sites/b/plant/#"), in_rule("from-a/#", "sites/a/plant/#")]
    ca = env.bridge_config("a", a, rules_a, **(store_extra or {}))
    cb = env.bridge_config("b", b, rules_b, **(store_extra or {}))
    return a, b, ca, cb


def lines(prefix, n):
    return "".join("%s%d\n" % (prefix, i) for i in range(n))


def test_two_sites_qos_0_1_2_both_ways(env):
    a, b, ca, cb = two_sites(env)
    env.bridge(ca)
    env.bridge(cb)
    sb = env.nomq_sub(b, "-t", "from-a/#", "-v", "-C", "3", "-W", "20")
    sa = env.nomq_sub(a, "-t", "from-b/+/x", "-v", "-C", "3", "-W", "20")
    for q in ("0", "1", "2"):
        assert env.nomq_pub(a, "-t", "plant/l%s/x" % q, "-m", "a" + q, "-q", q).wait() == 0
        assert env.nomq_pub(b, "-t", "plant/l%s/x" % q, "-m", "b" + q, "-q", q).wait() == 0
    assert sb.wait() == 0, sb.transcript()
    assert sa.wait() == 0, sa.transcript()
    assert sorted(sb.out) == ["from-a/l0/x a0", "from-a/l1/x a1", "from-a/l2/x a2"]
    assert sorted(sa.out) == ["from-b/l0/x b0", "from-b/l1/x b1", "from-b/l2/x b2"]


def stream_both_ways(env, a, b, n, fault):
    """n QoS 1 and n QoS 2 messages each way while `fault()` runs mid-stream; returns the
    subscribers' lines once every message arrived (or after 150 s)."""
    sb = env.nomq_sub(b, "-t", "from-a/#", "-v")
    sa = env.nomq_sub(a, "-t", "from-b/#", "-v")
    pubs = []
    for site, name in ((a, "a"), (b, "b")):
        for q in ("1", "2"):
            pubs.append(env.nomq_pub(site, "-t", "plant/q%s" % q, "-l", "-q", q, "--ttl", "600",
                                     stdin=lines("%s%s-" % (name, q), n)))
    # The fault comes mid-stream: once a quarter of each site's messages crossed (a fresh
    # `nomq pub` first spends its discovery period, so a fixed delay could come before any).
    end = time.monotonic() + 60
    while time.monotonic() < end and (len(sb.out) < n // 2 or len(sa.out) < n // 2):
        time.sleep(0.05)
    assert len(sb.out) < 2 * n and len(sa.out) < 2 * n, "the stream ended before the fault"
    progress = (len(sb.out), len(sa.out))
    fault()
    want = {"a": set(), "b": set()}
    for name in ("a", "b"):
        for q in ("1", "2"):
            want[name] |= set("from-%s/q%s %s%s-%d" % (name, q, name, q, i) for i in range(n))
    end = time.monotonic() + 150
    while time.monotonic() < end:
        if want["a"] <= set(sb.out) and want["b"] <= set(sa.out):
            break
        time.sleep(0.2)
    time.sleep(1.0)  # late repeats, if any, are counted too
    for p in pubs:  # a line refused by its publisher is lost before any bridge sees it
        assert not any("refused" in l for l in p.err), p.transcript()
    print("fault after %d (into B) and %d (into A) of %d lines" % (progress[0], progress[1], 2 * n))
    return list(sa.out), list(sb.out)


def check_stream(received, site, n, q2_dup_bound=0):
    """Every message arrived; QoS 2 duplicates at most q2_dup_bound (returned)."""
    dups = 0
    for q in ("1", "2"):
        got = [l.split(" ", 1)[1] for l in received if l.startswith("from-%s/q%s " % (site, q))]
        want = set("%s%s-%d" % (site, q, i) for i in range(n))
        assert want <= set(got), "from %s, lost: %s" % (site, sorted(want - set(got))[:10])
        if q == "2":
            dups = len(got) - len(set(got))
            assert dups <= q2_dup_bound, "from %s, QoS 2 duplicated %d times" % (site, dups)
    return dups


N = int(os.environ.get("NOMQ_BRIDGE_STREAM", "1000"))


def test_broker_restart_mid_stream_loses_nothing(env):
    a, b, ca, cb = two_sites(env)
    ba, bb = env.bridge(ca), env.bridge(cb)

    def restart_broker():
        env.broker.signal(signal.SIGTERM)  # mosquitto saves its persistence file and exits
        assert env.broker.wait(10) is not None
        # Each bridge says it lost the broker (the line was never printed before: the
        # disconnect callback had already cleared the flag it was printed on).
        assert ba.wait_line("lost:", STEP, stream="err"), ba.transcript()
        assert bb.wait_line("lost:", STEP, stream="err"), bb.transcript()
        time.sleep(1.0)
        env.start_broker()
        assert ba.wait_line("connected to", STEP, count=2), ba.transcript()
        assert bb.wait_line("connected to", STEP, count=2), bb.transcript()

    sa, sb = stream_both_ways(env, a, b, N, restart_broker)
    check_stream(sb, "a", N)
    check_stream(sa, "b", N)


def test_bridge_sigkill_and_restart_mid_stream_loses_nothing(env):
    a, b, ca, cb = two_sites(env)
    ba, bb = env.bridge(ca), env.bridge(cb)

    def kill_bridge():
        ba.signal(signal.SIGKILL)
        ba.wait(10)
        time.sleep(0.5)
        env.bridge(ca)

    sa, sb = stream_both_ways(env, a, b, N, kill_bridge)
    check_stream(sb, "a", N)  # through the killed bridge's store (out) and B's dedup (in)
    # Into site A the restarted bridge publishes again what it had not seen reported: it
    # continues its NoMQ session (id, reserved sequence numbers, port) and republishes each
    # stored message under its row's message id, so site A's subscriber recognises a QoS 2
    # message it already has: 0 duplicates (before: up to a few, under a new session).
    check_stream(sa, "b", N)


def bridge_node(bridge):
    """The NoMQ endpoint of a bridge's node, from its ready line."""
    for l in bridge.err:
        if "nomq bridge: ready" in l and " node " in l:
            return l.split(" node ", 1)[1].split(",", 1)[0]
    raise AssertionError(bridge.transcript())


def test_full_store_is_reported_to_the_nomq_publisher_by_name(env):
    site = env.site("a")
    # No broker, a store of 3 messages: 3 QoS 1 messages are stored and acknowledged; the
    # others are refused (never acknowledged), so their publisher's report names the bridge's
    # node as failed and `nomq pub` exits 1.
    cfg = env.bridge_config("a", site, [out_rule("k/#", "k/#")], store={"max_messages": 3})
    b = env.bridge(cfg, connected=False)
    assert b.wait_line("cannot connect to", STEP), b.transcript()
    node = bridge_node(b)
    p1 = env.nomq_pub(site, "-t", "k/q1", "-l", "-q", "1", "--ttl", "3",
                      stdin="".join("m%d\n" % i for i in range(5)))
    assert p1.wait(STEP) == 1, p1.transcript()
    p2 = env.nomq_pub(site, "-t", "k/q2", "-m", "exactly", "-q", "2", "--ttl", "3")
    assert p2.wait(STEP) == 1, p2.transcript()
    refused = [l for l in p1.err if "not acknowledged" in l]
    assert len(refused) == 2, p1.transcript()
    for l in refused + [l for l in p2.err if "not acknowledged" in l]:
        assert "not acknowledged: expired;" in l and (" %s failed;" % node) in l, l
    assert any('"exactly"' in l for l in p2.err), p2.transcript()
    assert b.wait_line("refused, not acknowledged", STEP), b.transcript()
    time.sleep(1.2)
    stats = env.last_stats(b)
    assert stats["out"]["received"] >= 5 and stats["out"]["store_full"] >= 3, stats
    assert stats["backlog"]["messages"] <= 3, stats


def test_sigterm_stops_cleanly_and_keeps_the_backlog(env):
    site = env.site("a")
    # No broker: QoS 1 messages wait in the store; SIGTERM exits 0 and says how many are kept;
    # the next start with a broker sends them.
    cfg = env.bridge_config("a", site, [out_rule("k/#", "k/#")])
    b = env.bridge(cfg, connected=False)
    assert b.wait_line("cannot connect to", STEP), b.transcript()
    assert env.nomq_pub(site, "-t", "k/1", "-m", "kept", "-q", "1").wait() == 0
    # The store belongs to the running bridge (locking_mode=EXCLUSIVE): a second one on the
    # same file stops at once with the reason.
    second = subprocess.run([NOMQ, "bridge", "-c", cfg], capture_output=True, text=True,
                            timeout=STEP, cwd=env.dir)
    assert second.returncode == 1, second.stderr
    assert "database is locked (another nomq bridge uses this store?)" in second.stderr, second.stderr
    time.sleep(0.5)
    b.signal(signal.SIGTERM)
    assert b.wait(15) == 0, b.transcript()
    assert any("1 messages kept" in l for l in b.err), b.transcript()
    env.start_broker()
    ms = env.mqtt_sub("k/#", "-v", "-C", "1", "-W", "15", "-q", "1")
    env.bridge(cfg)
    assert ms.wait() == 0, ms.transcript()
    assert ms.out == ["k/1 kept"], ms.out


def test_full_store_pauses_mqtt_to_nomq_and_loses_nothing(env):
    env.start_broker()
    site = env.site("a")
    # A store of 4 messages and no NoMQ subscriber yet: the bridge's publishes into NoMQ wait
    # for one, so their rows stay. The 5th QoS 1 message from MQTT does not fit: the bridge
    # does not acknowledge it (it cuts the connection before its PUBACK leaves) and stays
    # away from the broker until the store has room; the broker keeps it and the rest.
    n = 12
    cfg = env.bridge_config("a", site, [in_rule("in/#", "mq/#")], store={"max_messages": 4})
    b = env.bridge(cfg)
    pub = env.spawn(["mosquitto_pub", "-p", str(env.mqtt_port), "-h", "127.0.0.1", "-V", "5",
                     "-t", "mq/x", "-q", "1", "-l"], stdin=lines("m", n))
    assert pub.wait() == 0, pub.transcript()  # the broker took all of them
    assert b.wait_line("not acknowledged to the broker: store holds 4 messages", STEP), b.transcript()
    assert b.wait_line('"paused":true', STEP, stream="out"), b.transcript()
    stats = env.last_stats(b)
    assert stats["in"]["store_full"] >= 1 and stats["backlog"]["messages"] == 4, stats
    assert not stats["connected"], stats
    # A subscriber comes: the bridge's publishes are delivered, their rows go, the bridge
    # reconnects and takes what the broker kept, four at a time.
    sub = env.nomq_sub(site, "-t", "in/#", "-v")
    want = set("in/x m%d" % i for i in range(n))
    end = time.monotonic() + 60
    while time.monotonic() < end and not want <= set(sub.out):
        time.sleep(0.1)
    assert want <= set(sub.out), "lost: %s\n%s" % (sorted(want - set(sub.out)), b.transcript())
    assert b.wait_line("the store has room again", STEP), b.transcript()
    time.sleep(1.2)
    stats = env.last_stats(b)
    assert stats["backlog"]["messages"] == 0 and not stats["in"]["paused"], stats
    assert stats["connected"], stats
    # At-least-once: a message whose PUBACK was queued behind the refused one is sent again by
    # the broker and can reach NoMQ twice (a plain MQTT publisher's message has no nomq-id).
    print("delivered %d lines for %d messages; stats %s" % (len(sub.out), n, stats))
