#!/usr/bin/env python3
"""Wire v1 end to end: the real `nomq` tool against the legacy device peer, on loopback.

Each test runs processes and synchronises on their output lines (the peer's JSON events, `nomq
sub -d`'s "ready on" line, exit codes) with bounded timeouts; nothing sleeps waiting for a thing
to happen.  Ports come from the kernel (bind to port 0, read it back).

    NOMQ_BIN=build/nomq python3 tests/legacy/test_e2e_nomq.py -v [E2E.test_name]

The device side is tests/legacy/nomq_legacy_peer.py, itself checked against legacy-v1.json by
test_legacy_peer.py.  The config every test uses is written by the peer in the original's
obfuscated format, so every test also shows that `nomq` reads the original's config file.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from peer_process import LineProcess, PeerProcess, PEER, DEFAULT_TIMEOUT, parse_json  # noqa: E402

NOMQ = os.environ.get("NOMQ_BIN", "")


def free_udp_port():
    # The kernel's choice, released at once; loopback only.  Another process could take it in
    # between; the tests then fail on bind with a clear message rather than misbehave.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class E2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not NOMQ or not os.access(NOMQ, os.X_OK):
            raise RuntimeError(f"NOMQ_BIN={NOMQ!r} is not an executable nomq")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nomq-e2e-v1-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.procs = []
        self.addCleanup(self._stop_all)

    def _stop_all(self):
        for p in self.procs:
            p.stop()

    # --- helpers ------------------------------------------------------------------------------
    def device_config(self, port=8888, name="nomq_config.json"):
        """A config in the original's obfuscated format, written by the device peer."""
        path = os.path.join(self.dir, name)
        subprocess.run([sys.executable, PEER, "mkconfig", "-o", path, "--ip", "127.0.0.1",
                        "--port", str(port)], check=True, capture_output=True, timeout=30)
        return path

    def device_sub(self, cfg, channels, revision="head", epoch=1970, count=None, extra=()):
        """A device subscriber on an ephemeral loopback port; returns (process, port)."""
        args = ["--config", cfg, "--revision", revision, "--epoch", str(epoch), *extra, "sub",
                "--port", "0", "-W", str(DEFAULT_TIMEOUT)]
        for ch in channels:
            args += ["-t", ch]
        if count is not None:
            args += ["-C", str(count)]
        p = PeerProcess(args)
        self.procs.append(p)
        ready = p.wait_event("ready")
        return p, ready["port"]

    def device_pub(self, cfg, channel, message, qos, port, epoch=1970, retain=False,
                   subscribe_self=True, wait=DEFAULT_TIMEOUT):
        args = [sys.executable, PEER, "--config", cfg, "--epoch", str(epoch), "pub", "-t", channel,
                "-m", message, "-q", str(qos), "--to", f"127.0.0.1:{port}", "--wait", str(wait)]
        if retain:
            args.append("-r")
        if subscribe_self:
            args.append("--subscribe-self")
        out = subprocess.run(args, capture_output=True, text=True, timeout=wait + 30)
        events = [parse_json(l) for l in out.stdout.splitlines()]
        return out.returncode, events, out

    def nomq_sub(self, cfg, port, channels, count=1, epoch=None, wire="v1"):
        cmd = [NOMQ, "sub", "-c", cfg, "-p", str(port), "--json", "-d", "-C", str(count),
               "-W", str(DEFAULT_TIMEOUT)]
        if wire:
            cmd += ["--wire", wire]
        if epoch:
            cmd += ["--epoch", str(epoch)]
        for ch in channels:
            cmd += ["-t", ch]
        p = LineProcess(cmd, name="nomq sub")
        self.procs.append(p)
        p.wait_line(lambda l: "ready on" in l, stream="stderr", what="nomq sub's ready line")
        return p

    def nomq_pub(self, cfg, port, channel, message, qos, epoch=None, retain=False, ttl=None,
                 timeout=DEFAULT_TIMEOUT + 30):
        cmd = [NOMQ, "pub", "-c", cfg, "--wire", "v1", "-h", "127.0.0.1", "-p", str(port),
               "-t", channel, "-m", message, "-q", str(qos), "--json"]
        if epoch:
            cmd += ["--epoch", str(epoch)]
        if retain:
            cmd.append("-r")
        if ttl:
            cmd += ["--ttl", str(ttl)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    @staticmethod
    def nomq_messages(proc):
        return [o for o in (parse_json(l) for l in proc.seen) if o and "channel" in o]

    def wait_nomq_message(self, proc):
        line = proc.wait_line(lambda l: (parse_json(l) or {}).get("channel") is not None,
                              what="a JSON message line")
        return json.loads(line)

    def final(self, events):
        finals = [e for e in events if e and e.get("event") == "final"]
        self.assertEqual(len(finals), 1, events)
        return finals[0]

    # --- a device publisher -> nomq sub ---------------------------------------------------------
    def device_to_nomq(self, qos, epoch=None, retain=False, wire="v1"):
        port = free_udp_port()
        cfg = self.device_config(port)
        sub = self.nomq_sub(cfg, port, ["sensors/temp"], epoch=epoch, wire=wire)
        rc, events, out = self.device_pub(cfg, "sensors/temp", "temperature=21.5", qos, port,
                                          epoch=epoch or 1970, retain=retain)
        msg = self.wait_nomq_message(sub)
        # The device writes the message at offset 16 (device16); nomq reads it intact.
        self.assertEqual(msg["message"], "temperature=21.5")
        self.assertEqual(msg["qos"], qos)
        self.assertEqual(msg["retain"], retain)
        final = self.final(events)
        # The device sees the reply only because it subscribed to its own channel (the original
        # drops replies for channels it has not subscribed to).
        self.assertTrue(final["complete"], out.stdout + out.stderr)
        self.assertEqual(rc, 0)
        self.assertEqual(final["state"], {0: "SENT", 1: "ACKED", 2: "COMPLETED"}[qos])
        self.assertEqual(sub.wait_exit(), 0)

    def test_device_pub_to_nomq_sub_qos0(self):
        self.device_to_nomq(0)

    def test_device_pub_to_nomq_sub_qos1(self):
        self.device_to_nomq(1)

    def test_device_pub_to_nomq_sub_qos2(self):
        self.device_to_nomq(2)

    def test_original_config_file_implies_v1(self):
        # No --wire: the original's file format alone makes nomq speak v1.
        self.device_to_nomq(1, wire=None)

    def test_device_pub_retained_to_nomq_sub(self):
        self.device_to_nomq(1, retain=True)

    def test_epoch_2000_device_pub_to_nomq_sub(self):
        self.device_to_nomq(2, epoch=2000)

    # --- nomq pub -> a device subscriber of each revision --------------------------------------
    def nomq_to_device(self, qos, revision, epoch=None, retain=False):
        port = free_udp_port()
        cfg = self.device_config(port)
        dev, dev_port = self.device_sub(cfg, ["sensors/temp"], revision=revision,
                                        epoch=epoch or 1970, count=1)
        out = self.nomq_pub(cfg, dev_port, "sensors/temp", "temperature=21.5", qos, epoch=epoch,
                            retain=retain)
        msg = dev.wait_event("message")
        # nomq sends the gap20 layout, which both receiver revisions read intact.
        self.assertEqual(msg["message"], "temperature=21.5")
        self.assertEqual(msg["qos"], qos)
        self.assertEqual(msg["retain"], retain)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        if qos > 0:
            reports = [parse_json(l) for l in out.stdout.splitlines()]
            self.assertTrue(reports and reports[-1]["acknowledged"], out.stdout)
            dev.wait_event("sent", type={1: "ACK", 2: "PUBREC"}[qos])
        if qos == 2:
            dev.wait_event("sent", type="PUBCOMP")
        end = dev.wait_event("exit")
        self.assertEqual(end["qos2_open"], [])
        self.assertEqual(dev.events("drop"), [])

    def test_nomq_pub_to_head_device_qos0(self):
        self.nomq_to_device(0, "head")

    def test_nomq_pub_to_head_device_qos1(self):
        self.nomq_to_device(1, "head")

    def test_nomq_pub_to_head_device_qos2(self):
        self.nomq_to_device(2, "head")

    def test_nomq_pub_to_ea96327_device_qos0(self):
        self.nomq_to_device(0, "ea96327")

    def test_nomq_pub_to_ea96327_device_qos1(self):
        self.nomq_to_device(1, "ea96327")

    def test_nomq_pub_to_ea96327_device_qos2(self):
        self.nomq_to_device(2, "ea96327")

    def test_nomq_pub_retained_to_device(self):
        self.nomq_to_device(1, "head", retain=True)

    def test_epoch_2000_nomq_pub_to_device(self):
        self.nomq_to_device(2, "head", epoch=2000)

    def test_nomq_pub_to_4336f1a_device_is_garbled(self):
        # The one revision that reads offset 16 gets nomq's gap20 layout as the 4 filler bytes
        # plus the message without its last 4 bytes (a known difference, docs/interop.md).
        port = free_udp_port()
        cfg = self.device_config(port)
        dev, dev_port = self.device_sub(cfg, ["sensors/temp"], revision="4336f1a", count=1)
        out = self.nomq_pub(cfg, dev_port, "sensors/temp", "temperature=21.5", 1)
        self.assertEqual(dev.wait_event("message")["message"], "\0\0\0\0temperature=")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def json_config_from(self, legacy_cfg, **overrides):
        """nomq's own JSON config (from `nomq keygen --wire v1`) with the device's keys."""
        import nomq_legacy_peer as peer
        path = os.path.join(self.dir, "nomq.json")
        kg = subprocess.run([NOMQ, "keygen", "--wire", "v1", "-o", path], capture_output=True,
                            text=True, timeout=30)
        self.assertEqual(kg.returncode, 0, kg.stderr)
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        with open(legacy_cfg, encoding="ascii") as f:
            keys = peer.read_config_text(f.read())
        cfg.update(encryption_key=keys["encryption_key"], hmac_key=keys["hmac_key"],
                   ip="127.0.0.1", **overrides)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        return path

    def test_device16_layout_setting_for_4336f1a_devices(self):
        # v1_publish_layout "device16": what a 4336f1a receiver reads intact, and what a HEAD
        # receiver rejects (the original's own sender layout).
        port = free_udp_port()
        legacy = self.device_config(port)
        cfg = self.json_config_from(legacy, v1_publish_layout="device16")
        dev, dev_port = self.device_sub(legacy, ["sensors/temp"], revision="4336f1a", count=1)
        out = self.nomq_pub(cfg, dev_port, "sensors/temp", "temperature=21.5", 1)
        self.assertEqual(dev.wait_event("message")["message"], "temperature=21.5")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        head, head_port = self.device_sub(legacy, ["sensors/temp"], revision="head")
        out = self.nomq_pub(cfg, head_port, "sensors/temp", "temperature=21.5", 0)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        head.wait_event("drop", reason="publish_bad_msg_len")

    def test_device_message_over_1024_bytes(self):
        # The original limits messages to 1024 *characters*: 600 two-byte characters are 1200
        # bytes.  nomq's default limit is 1024 bytes, so it drops them (reason
        # message_too_large, counted); a gateway for such devices raises max_message_size.
        port = free_udp_port()
        legacy = self.device_config(port)
        text = "\u00e9" * 600
        for limit, delivered in ((None, False), (1691, True)):
            with self.subTest(max_message_size=limit):
                cfg = legacy if limit is None else self.json_config_from(
                    legacy, max_message_size=limit)
                cmd = [NOMQ, "sub", "-c", cfg, "-p", str(port), "--json", "-d", "-C", "1",
                       "-W", "3" if not delivered else str(DEFAULT_TIMEOUT), "--wire", "v1",
                       "-t", "sensors/temp"]
                sub = LineProcess(cmd, name="nomq sub")
                self.procs.append(sub)
                sub.wait_line(lambda l: "ready on" in l, stream="stderr", what="ready line")
                rc, events, out = self.device_pub(legacy, "sensors/temp", text, 0, port)
                self.assertEqual(rc, 0, out.stdout + out.stderr)
                if delivered:
                    self.assertEqual(self.wait_nomq_message(sub)["message"], text)
                    self.assertEqual(sub.wait_exit(), 0)
                else:
                    sub.wait_line(lambda l: "message_too_large" in l, stream="stderr",
                                  what="the message_too_large drop")
                    self.assertEqual(sub.wait_exit(), 3)

    # --- loss: what the original's semantics allow ---------------------------------------------
    def test_qos1_lost_ack_is_retransmitted_and_delivered_again(self):
        # The device's first ACK is lost. nomq retransmits with a fresh nonce (a same-nonce
        # repeat would be dropped unanswered), the device delivers again and acknowledges:
        # at least once.
        port = free_udp_port()
        cfg = self.device_config(port)
        dev, dev_port = self.device_sub(cfg, ["sensors/temp"], count=2,
                                        extra=["--lose-replies", "1"])
        out = self.nomq_pub(cfg, dev_port, "sensors/temp", "temperature=21.5", 1)
        # In order: delivered, ACK lost, delivered again (fresh nonce), ACK sent.
        self.assertEqual(dev.wait_event("message")["message"], "temperature=21.5")
        dev.wait_event("reply_lost", type="ACK")
        self.assertEqual(dev.wait_event("message")["message"], "temperature=21.5")
        dev.wait_event("sent", type="ACK")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_qos2_lost_pubrec_is_reported_unconfirmed(self):
        # The device's PUBREC is lost. A QoS 2 retransmission must keep its nonce (a new one
        # would be a second delivery), so the device drops it as a replay without answering:
        # nomq cannot know whether the device has the message and must say exactly that.
        port = free_udp_port()
        cfg = self.device_config(port)
        dev, dev_port = self.device_sub(cfg, ["sensors/temp"], extra=["--lose-replies", "1"])
        out = self.nomq_pub(cfg, dev_port, "sensors/temp", "valve=closed", 2, ttl=3)
        self.assertEqual(dev.wait_event("message")["message"], "valve=closed")
        dev.wait_event("reply_lost", type="PUBREC")
        dev.wait_event("drop", reason="replay_nonce")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        report = [parse_json(l) for l in out.stdout.splitlines()][-1]
        self.assertFalse(report["acknowledged"])
        self.assertEqual([r["state"] for r in report["recipients"]], ["unconfirmed"])
        self.assertEqual(len(dev.events("message")), 1)

    def test_qos2_lost_pubcomp_is_reported_received(self):
        # The device's PUBCOMP is lost. It has already forgotten the handshake, so nomq's
        # repeated PUBREL is ignored: nomq reports the message delivered ("received") but the
        # handshake incomplete, and exits 1.
        port = free_udp_port()
        cfg = self.device_config(port)
        dev, dev_port = self.device_sub(cfg, ["sensors/temp"], extra=["--lose-type", "PUBCOMP"])
        out = self.nomq_pub(cfg, dev_port, "sensors/temp", "valve=closed", 2, ttl=3)
        self.assertEqual(dev.wait_event("message")["message"], "valve=closed")
        dev.wait_event("reply_lost", type="PUBCOMP")
        dev.wait_event("no_effect", type="PUBREL")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        report = [parse_json(l) for l in out.stdout.splitlines()][-1]
        self.assertEqual([r["state"] for r in report["recipients"]], ["received"])
        self.assertEqual(len(dev.events("message")), 1)

    # --- what cannot work, and must be reported rather than lost silently ----------------------
    def test_epoch_mismatch_is_dropped_and_reported(self):
        port = free_udp_port()
        cfg = self.device_config(port)
        dev, dev_port = self.device_sub(cfg, ["sensors/temp"], epoch=2000)
        out = self.nomq_pub(cfg, dev_port, "sensors/temp", "x" * 8, 1, epoch=1970, ttl=2)
        dev.wait_event("drop", reason="stale_timestamp")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("not acknowledged", out.stderr)

    def test_device_not_subscribed_is_reported_undelivered(self):
        port = free_udp_port()
        cfg = self.device_config(port)
        dev, dev_port = self.device_sub(cfg, ["other/channel"])
        out = self.nomq_pub(cfg, dev_port, "sensors/temp", "x" * 8, 1, ttl=2)
        dev.wait_event("drop", reason="unknown_channel")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("not acknowledged", out.stderr)

    # --- a `nomq keygen --legacy` file read by the device --------------------------------------
    def test_keygen_legacy_file_read_by_device(self):
        port = free_udp_port()
        path = os.path.join(self.dir, "keygen_legacy.json")
        kg = subprocess.run([NOMQ, "keygen", "-o", path, "--legacy", "--port", str(port)],
                            capture_output=True, text=True, timeout=30)
        self.assertEqual(kg.returncode, 0, kg.stderr)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        show = subprocess.run([sys.executable, PEER, "--config", path, "showconfig"],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(show.returncode, 0, show.stderr)
        cfg = json.loads(show.stdout)
        self.assertEqual(cfg["port"], port)
        self.assertNotEqual(cfg["encryption_key"], cfg["hmac_key"])
        # And the keys work: a device with this file hears nomq with the same file.
        dev, dev_port = self.device_sub(path, ["sensors/temp"], count=1)
        out = self.nomq_pub(path, dev_port, "sensors/temp", "from keygen", 1)
        self.assertEqual(dev.wait_event("message")["message"], "from keygen")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
