#!/usr/bin/env python3
"""Checks the legacy test peer against legacy-v1.json before anything trusts it.

Run by CTest (tests/legacy/CMakeLists.txt); also runnable by hand:
    python3 tests/legacy/test_legacy_peer.py -v
The first half drives the peer's Node directly with an injected clock and the vectors' recorded
random draws; the second half runs the command line on loopback, synchronising on its JSON lines
with bounded timeouts.
"""

import json
import os
import struct
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import nomq_legacy_peer as peer  # noqa: E402
from peer_process import PeerProcess, PEER  # noqa: E402

VECTORS_PATH = os.environ.get("NOMQ_VECTORS", os.path.join(HERE, "..", "vectors", "legacy-v1.json"))
with open(VECTORS_PATH, encoding="utf-8") as _f:
    VECTORS = json.load(_f)
BY_NAME = {v["name"]: v for v in VECTORS["packet_vectors"]}
CHECKS = list(peer.vector_checks(VECTORS))


def checks(prefix):
    return [(n, ok, d) for n, ok, d in CHECKS if n.startswith(prefix + "/")]


class VectorTests(unittest.TestCase):
    def assert_all(self, prefix, expected_count):
        found = checks(prefix)
        self.assertEqual(len(found), expected_count, f"number of {prefix} checks")
        for name, ok, detail in found:
            with self.subTest(check=name):
                self.assertTrue(ok, f"{name}: {detail[:600]}")

    def test_packet_vectors_rebuilt_byte_for_byte(self):
        self.assert_all("packet", 29)

    def test_head_receiver_outcome_of_each_publish_vector(self):
        self.assert_all("head_receiver", 18)

    def test_negative_and_quirk_vectors_verdicts(self):
        self.assertEqual(len(VECTORS["negative_vectors"]), 25)
        self.assertEqual(len(VECTORS["receiver_quirk_vectors"]), 7)
        self.assert_all("receiver", 32)

    def test_device_layout_publish_is_rejected_by_head(self):
        v = [n for n in VECTORS["negative_vectors"] if n["name"] == "device_layout_publish"][0]
        reasons, delivered, _ = peer.receiver_verdict(VECTORS, v)
        self.assertEqual(reasons, ["publish_bad_msg_len"])
        self.assertEqual(delivered, [])

    def test_replayed_publish_first_delivered_second_rejected(self):
        v = [n for n in VECTORS["negative_vectors"] if n["name"] == "replayed_publish"][0]
        reasons, delivered, _ = peer.receiver_verdict(VECTORS, v)
        self.assertEqual(reasons, ["accepted", "replay_nonce"])
        self.assertEqual(delivered, [{"channel": "sensors/temp", "message": "21.5 C"}])

    def test_sequences_replies_byte_for_byte(self):
        self.assert_all("sequence", 3)

    def test_config_vectors(self):
        self.assert_all("config_read", 2)
        self.assert_all("config_write", 2)
        self.assert_all("config_reject", 3)


def publish_node(revision="head", epoch=1970, t=1700000000.75, subscribe=("sensors/temp",)):
    node, draws, clock, sent = peer.make_node(VECTORS, None, t, revision=revision, epoch=epoch,
                                              subscriptions=subscribe,
                                              own_addr=("127.0.0.1", 47001))
    return node, clock, sent


def messages(events):
    return [e["message"] for e in events if e["event"] == "message"]


def drops(events):
    return [e["reason"] for e in events if e["event"] == "drop"]


class RevisionTests(unittest.TestCase):
    def test_ea96327_delivers_device16_publish_without_first_4_bytes(self):
        node, _, sent = publish_node(revision="ea96327", t=1700000001.75)
        events = node.receive(bytes.fromhex(BY_NAME["publish_q1_p5"]["packet"]), ("127.0.0.1", 9))
        self.assertEqual(messages(events), ["erature=21.5"])
        # It is still a QoS 1 publish: the old revision answers with an ACK.
        self.assertEqual([e["type"] for e in events if e["event"] == "sent"], ["ACK"])
        self.assertEqual(sent[-1][1], ("127.0.0.1", 9))

    def test_head_rejects_the_same_publish(self):
        node, _, sent = publish_node(revision="head", t=1700000001.75)
        events = node.receive(bytes.fromhex(BY_NAME["publish_q1_p5"]["packet"]), ("127.0.0.1", 9))
        self.assertEqual(drops(events), ["publish_bad_msg_len"])
        self.assertEqual(sent, [])

    def test_revisions_since_ea96327_deliver_gap20_intact(self):
        for revision in ("head", "ea96327"):
            with self.subTest(revision=revision):
                node, _, _ = publish_node(revision=revision, t=1700000001.75)
                events = node.receive(bytes.fromhex(BY_NAME["publish_gap20_q1_p5"]["packet"]),
                                      ("127.0.0.1", 9))
                self.assertEqual(messages(events), ["temperature=21.5"])

    def test_4336f1a_reads_offset_16(self):
        # Section 7's table: device16 intact; gap20 as the 4 filler bytes + message[:-4].
        node, _, _ = publish_node(revision="4336f1a", t=1700000001.75)
        events = node.receive(bytes.fromhex(BY_NAME["publish_q1_p5"]["packet"]), ("127.0.0.1", 9))
        self.assertEqual(messages(events), ["temperature=21.5"])
        node, _, _ = publish_node(revision="4336f1a", t=1700000001.75)
        events = node.receive(bytes.fromhex(BY_NAME["publish_gap20_q1_p5"]["packet"]),
                              ("127.0.0.1", 9))
        self.assertEqual(messages(events), ["\0\0\0\0temperature="])

    def test_short_message_fails_with_invalid_payload_in_every_revision(self):
        for revision in peer.REVISIONS:
            with self.subTest(revision=revision):
                sender, _, sent = publish_node()
                sender.publish("sensors/temp", "abc", dest=("127.0.0.1", 9))
                node, _, _ = publish_node(revision=revision, t=1700000001.75)
                self.assertEqual(drops(node.receive(sent[-1][0], ("127.0.0.1", 9))),
                                 ["publish_payload_short"])

    def test_ea96327_cut_inside_a_utf8_character_is_a_decode_error(self):
        sender, _, sent = publish_node()
        sender.publish("sensors/temp", "abc\u00e9def", dest=("127.0.0.1", 9))  # é at bytes 3-4
        node, _, _ = publish_node(revision="ea96327", t=1700000001.75)
        self.assertEqual(drops(node.receive(sent[-1][0], ("127.0.0.1", 9))), ["publish_bad_utf8"])


class ReceiverStateTests(unittest.TestCase):
    def gap20(self, node_sender, sent, message="x" * 8, qos=0):
        node_sender.publish("sensors/temp", message, qos=qos, dest=("127.0.0.1", 9),
                            inner_layout="gap20")
        return sent[-1][0]

    def test_nonce_cache_holds_100(self):
        sender, sclock, ssent = publish_node()
        receiver, rclock, _ = publish_node(t=1700000001.0)
        first = self.gap20(sender, ssent)
        self.assertEqual(len(messages(receiver.receive(first, ("127.0.0.1", 9)))), 1)
        self.assertEqual(drops(receiver.receive(first, ("127.0.0.1", 9))), ["replay_nonce"])
        for _ in range(99):
            receiver.receive(self.gap20(sender, ssent), ("127.0.0.1", 9))
        # 99 newer ones: the first nonce is still among the last 100.
        self.assertEqual(drops(receiver.receive(first, ("127.0.0.1", 9))), ["replay_nonce"])
        receiver.receive(self.gap20(sender, ssent), ("127.0.0.1", 9))
        # The 100th newer one pushed it out: the replay is accepted again (section 8).
        self.assertEqual(len(messages(receiver.receive(first, ("127.0.0.1", 9)))), 1)

    def test_nonce_cache_purges_after_30_s(self):
        sender, sclock, ssent = publish_node()
        receiver, rclock, _ = publish_node(t=1700000001.0)
        first = self.gap20(sender, ssent)
        receiver.receive(first, ("127.0.0.1", 9))
        # A new entry 30.5 s later purges the old one; the old datagram, re-stamped, passes.
        sclock.t = rclock.t = 1700000031.5
        receiver.receive(self.gap20(sender, ssent), ("127.0.0.1", 9))
        self.assertEqual(len(receiver.nonce_cache), 1)
        # What the purge forgets, the timestamp window already refuses.
        self.assertEqual(drops(receiver.receive(first, ("127.0.0.1", 9))), ["stale_timestamp"])

    def test_qos2_receiver_states_bounded_at_50(self):
        sender, _, ssent = publish_node()
        receiver, _, rsent = publish_node(t=1700000001.0)
        ids = []
        for _ in range(51):
            ids.append(sender.publish("sensors/temp", "m" * 8, qos=2, dest=("127.0.0.1", 9),
                                      inner_layout="gap20")[0])
            receiver.receive(ssent[-1][0], ("127.0.0.1", 9))
        self.assertEqual(len(receiver.qos2_receiver), 50)
        self.assertNotIn(ids[0], receiver.qos2_receiver)
        self.assertIn(ids[-1], receiver.qos2_receiver)

    def test_sender_pending_table_of_50_then_untracked(self):
        sender, _, _ = publish_node()
        for _ in range(50):
            sender.publish("sensors/temp", "m", qos=1, dest=("127.0.0.1", 9))
        _, events = sender.publish("sensors/temp", "m", qos=1, dest=("127.0.0.1", 9))
        self.assertEqual(len(sender.pending), 50)
        self.assertEqual([e["event"] for e in events], ["untracked", "published"])

    def test_publisher_drops_ack_for_channel_it_did_not_subscribe(self):
        for subscribed in (False, True):
            with self.subTest(subscribed=subscribed):
                sender, sclock, ssent = publish_node(subscribe=("sensors/temp",) if subscribed
                                                     else ())
                receiver, _, rsent = publish_node(t=1700000001.0)
                pid, _ = sender.publish("sensors/temp", "hello", qos=1, dest=("127.0.0.1", 9),
                                        inner_layout="gap20")
                receiver.receive(ssent[-1][0], ("127.0.0.1", 47001))
                ack, to = rsent[-1]
                self.assertEqual(to, ("127.0.0.1", 47001))  # the datagram's source address
                events = sender.receive(ack, ("127.0.0.1", 9))
                if subscribed:
                    self.assertEqual([e["event"] for e in events], ["ack_received"])
                    self.assertNotIn(pid, sender.pending)
                else:
                    self.assertEqual(drops(events), ["unknown_channel"])
                    self.assertIn(pid, sender.pending)

    def test_unsubscribed_channel_dropped_for_every_type(self):
        src, _, ssent = publish_node(subscribe=())
        for ptype in (peer.PUBLISH, peer.ACK, peer.PUBREC, peer.PUBREL, peer.PUBCOMP,
                      peer.SUBSCRIBE, peer.UNSUBSCRIBE):
            with self.subTest(type=peer.TYPE_NAMES[ptype]):
                d = peer.encode(ptype, 0, 7, 1, 3600, 1700000000, bytes(16),
                                peer.channel_id("other"), struct.pack(">I", 7) + bytes(20),
                                src.enc_key, src.hmac_key)
                node, _, _ = publish_node(t=1700000000.0)
                self.assertEqual(drops(node.receive(d, ("127.0.0.1", 9))), ["unknown_channel"])

    def test_timestamp_checked_before_mac(self):
        sender, _, ssent = publish_node()
        sender.publish("sensors/temp", "hello", dest=("127.0.0.1", 9))
        garbled = ssent[-1][0][:-1] + b"\0"
        late, _, _ = publish_node(t=1700000040.0)
        self.assertEqual(drops(late.receive(garbled, ("127.0.0.1", 9))), ["stale_timestamp"])
        now, _, _ = publish_node(t=1700000001.0)
        self.assertEqual(drops(now.receive(garbled, ("127.0.0.1", 9))), ["bad_mac"])

    def test_epoch_2000_interoperates_only_with_epoch_2000(self):
        sender, _, ssent = publish_node(epoch=2000)
        sender.publish("sensors/temp", "hello", dest=("127.0.0.1", 9), inner_layout="gap20")
        ts = struct.unpack(">I", ssent[-1][0][31:35])[0]
        self.assertEqual(ts, 1700000000 - peer.EPOCH_2000_OFFSET)
        for epoch, expect in ((2000, []), (1970, ["stale_timestamp"])):
            with self.subTest(receiver_epoch=epoch):
                node, _, _ = publish_node(epoch=epoch, t=1700000001.0)
                self.assertEqual(drops(node.receive(ssent[-1][0], ("127.0.0.1", 9))), expect)

    def test_session_renewed_after_300_s_clears_nonce_cache(self):
        node, clock, sent = publish_node()
        node.nonce_cache.append((1, node.now()))
        first = node.session_id
        clock.t += 301
        node.publish("sensors/temp", "x", dest=("127.0.0.1", 9))
        self.assertNotEqual(node.session_id, first)
        self.assertEqual(node.nonce_cache, [])

    def test_qos2_full_handshake_between_two_nodes(self):
        a, aclock, asent = publish_node()
        b, bclock, bsent = publish_node(revision="ea96327")
        pid, _ = a.publish("sensors/temp", "1234valve=open", qos=2, dest=("127.0.0.1", 2))
        ev = b.receive(asent[-1][0], ("127.0.0.1", 1))
        self.assertEqual(messages(ev), ["valve=open"])
        ev = a.receive(bsent[-1][0], ("127.0.0.1", 2))
        self.assertEqual([e["event"] for e in ev], ["pubrec_received", "sent"])
        ev = b.receive(asent[-1][0], ("127.0.0.1", 1))
        self.assertEqual([e["event"] for e in ev], ["pubrel_received", "sent"])
        ev = a.receive(bsent[-1][0], ("127.0.0.1", 2))
        self.assertEqual([e["event"] for e in ev], ["qos2_complete"])
        self.assertEqual(a.pending, {})
        self.assertEqual(dict(b.qos2_receiver), {})
        # A repeated PUBREL has no effect any more (no second PUBCOMP).
        before = len(bsent)
        self.assertEqual(b.receive(asent[-1][0], ("127.0.0.1", 1))[0]["event"], "no_effect")
        self.assertEqual(len(bsent), before)

    def test_lost_reply_leaves_the_repeat_unanswered(self):
        # With the first reply lost, a same-nonce repeat is dropped as a replay: no answer.
        a, _, asent = publish_node()
        b, _, bsent = publish_node()
        b.lose_replies = 1
        a.publish("sensors/temp", "1234valve", qos=2, dest=("127.0.0.1", 2), inner_layout="gap20")
        ev = b.receive(asent[-1][0], ("127.0.0.1", 1))
        self.assertEqual([e["event"] for e in ev], ["message", "reply_lost"])
        self.assertEqual(drops(b.receive(asent[-1][0], ("127.0.0.1", 1))), ["replay_nonce"])
        self.assertEqual(bsent, [])

    def test_message_limit_is_characters(self):
        node, _, _ = publish_node()
        node.publish("sensors/temp", "\u00e9" * 1024, dest=("127.0.0.1", 9))
        with self.assertRaises(ValueError):
            node.publish("sensors/temp", "x" * 1025, dest=("127.0.0.1", 9))


class CommandLineTests(unittest.TestCase):
    """The peer as tests use it: separate processes on loopback."""

    def test_selftest_subcommand(self):
        out = subprocess.run([sys.executable, PEER, "selftest", "--vectors", VECTORS_PATH],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(json.loads(out.stdout.splitlines()[-1])["failed"], 0)

    def test_refuses_non_loopback_destination(self):
        out = subprocess.run([sys.executable, PEER, "--sample-keys", "pub", "-t", "a", "-m", "b",
                              "--to", "192.0.2.1:8888"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("not a loopback address", out.stderr)

    def test_rejects_bad_config_file(self):
        bad = [c for c in VECTORS["config_negative_vectors"]][0]
        path = os.path.join(self.tmp(), "bad.json")
        with open(path, "w") as f:
            f.write(bad["file_text"])
        out = subprocess.run([sys.executable, PEER, "--config", path, "showconfig"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("Incorrect padding in config data", out.stderr)

    def tmp(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="nomq-legacy-")
        self.addCleanup(lambda: __import__("shutil").rmtree(d, ignore_errors=True))
        return d

    def config(self, port=0):
        path = os.path.join(self.tmp(), "nomq_config.json")
        subprocess.run([sys.executable, PEER, "mkconfig", "-o", path, "--ip", "127.0.0.1",
                        "--port", str(port)], check=True, capture_output=True, timeout=30)
        return path

    def test_device_to_device_each_revision_and_qos(self):
        cfg = self.config()
        for revision in peer.REVISIONS:
            for qos in (0, 1, 2):
                with self.subTest(revision=revision, qos=qos):
                    with PeerProcess(["--config", cfg, "--revision", revision, "sub",
                                      "-t", "sensors/temp", "-W", "10"]) as sub:
                        ready = sub.wait_event("ready")
                        pub = subprocess.run(
                            [sys.executable, PEER, "--config", cfg, "pub", "-t", "sensors/temp",
                             "-m", "temperature=21.5", "-q", str(qos), "--subscribe-self",
                             "--to", f"127.0.0.1:{ready['port']}", "--wait",
                             # HEAD answers nothing: only the absence of a reply is observable.
                             "1" if revision == "head" else "10"],
                            capture_output=True, text=True, timeout=30)
                        final = json.loads(pub.stdout.splitlines()[-1])
                        if revision == "head":
                            # The original cannot deliver its own publishes.
                            sub.wait_event("drop", reason="publish_bad_msg_len")
                            self.assertEqual(final["complete"], qos == 0)
                        else:
                            msg = sub.wait_event("message")
                            self.assertEqual(msg["message"], "erature=21.5" if revision ==
                                             "ea96327" else "temperature=21.5")
                            self.assertTrue(final["complete"], pub.stdout)
                            self.assertEqual(pub.returncode, 0)
                            if qos == 2:
                                self.assertEqual(final["state"], "COMPLETED")

    def test_publisher_without_self_subscription_never_sees_the_ack(self):
        cfg = self.config()
        with PeerProcess(["--config", cfg, "--revision", "ea96327", "sub", "-t", "sensors/temp",
                          "-W", "10"]) as sub:
            ready = sub.wait_event("ready")
            pub = subprocess.run(
                [sys.executable, PEER, "--config", cfg, "pub", "-t", "sensors/temp", "-m",
                 "abcdhello", "-q", "1", "--to", f"127.0.0.1:{ready['port']}", "--wait", "10",
                 "--stop-on-drop"],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(sub.wait_event("message")["message"], "hello")
            sub.wait_event("sent", type="ACK")
            final = json.loads(pub.stdout.splitlines()[-1])
            self.assertEqual(pub.returncode, 1)
            self.assertEqual(final["state"], "PUBLISH_SENT")
            self.assertEqual(final["replies_dropped"], ["unknown_channel"])


if __name__ == "__main__":
    unittest.main()
