"""Deferred acknowledgement and session resume from Python (docs/python.md, "Deferred
acknowledgement and session resume"): a node opened with deferred_ack=True acknowledges a
QoS 1/2 message only when the program accepts it; refuse leaves its publisher retransmitting;
a node opened with resume= continues a session, and a message published again under the
same message id is recognised by its subscriber as the one it already has."""

from __future__ import annotations

import asyncio

import pytest

import nomq
from nomq import sync
from conftest import TIMEOUT, free_udp_port, run


def test_sync_report_waits_for_accept(v2_config):
    with sync.NoMQ(v2_config, log_level="OFF", deferred_ack=True) as sub, \
            sync.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as pub:
        sub.subscribe("d/x")
        listener = sub.listen()
        p = pub.publish_nowait("d/x", "keep me", qos=1, wait_for_subscribers=TIMEOUT)
        m = listener.get(TIMEOUT)
        assert m is not None and m.message == "keep me"
        assert m.ack_token != 0
        # Not acknowledged yet: the publisher's report is not there (it retransmits meanwhile).
        with pytest.raises(nomq.DeliveryTimeout):
            p.report(0.5)
        sub.accept(m)
        d = p.report(TIMEOUT)
        assert d.ok, d
        assert [r.state for r in d.recipients] == ["acknowledged"], d
        assert d.recipients[0].address[1] == sub.local_address[1], (d, sub.local_address)
        assert sub.stats()["deferred_accepted"] == 1, sub.stats()
        # A token answers once.
        with pytest.raises(nomq.NoMQError) as e:
            sub.accept(m.ack_token)
        assert e.value.code == "expired", e.value
        # QoS 0 has nothing to acknowledge.
        pub.publish("d/x", "q0")
        m0 = listener.get(TIMEOUT)
        assert m0 is not None and m0.qos == 0 and m0.ack_token == 0
        with pytest.raises(nomq.NoMQError) as e:
            sub.accept(m0)
        assert e.value.code == "invalid_argument", e.value


def test_sync_refused_message_comes_again_and_never_accepted_fails(v2_config):
    with sync.NoMQ(v2_config, log_level="OFF", deferred_ack=True) as sub, \
            sync.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as pub:
        sub.subscribe("d/y")
        listener = sub.listen()
        # Refused once: the retransmission comes with a new token; accepting it completes the
        # QoS 2 handshake.
        p = pub.publish_nowait("d/y", "second try", qos=2, wait_for_subscribers=TIMEOUT)
        first = listener.get(TIMEOUT)
        assert first is not None and first.ack_token != 0
        sub.refuse(first)
        again = listener.get(TIMEOUT)
        assert again is not None, "the refused message was not retransmitted"
        assert again.message_id == first.message_id and again.ack_token != first.ack_token
        sub.accept(again)
        d = p.report(TIMEOUT)
        assert d.ok and d.recipients[0].state == "acknowledged", d
        assert d.recipients[0].transmissions >= 2, d
        # Never accepted: the publisher ends it at its TTL with the subscriber failed.
        p = pub.publish_nowait("d/y", "never", qos=1, ttl=1, wait_for_subscribers=TIMEOUT)
        d = p.report(TIMEOUT)
        assert d.reason == "expired" and [r.state for r in d.recipients] == ["failed"], d
        stats = sub.stats()
        assert stats["deferred_refused"] == 1 and stats["deferred_accepted"] == 1, stats


def test_asyncio_accept_and_session_resume(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF", deferred_ack=True) as sub, \
                nomq.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as pub:
            await sub.subscribe("r/#")
            pending = pub.publish_nowait("r/a", "stored", qos=2, wait_for_subscribers=TIMEOUT)
            async for m in sub.messages():
                assert m.channel == "r/a" and m.ack_token != 0
                sub.accept(m)  # e.g. once written to a database
                break
            d = await pending.report(TIMEOUT)
            assert d.ok, d

            # The publisher's session, continued by a new node: the same session id, sequence
            # numbers above those used, and a message published again under its message id is
            # a repeat to the subscriber (answered, not delivered twice).
            listener = await sub.listen()
            p = pub.publish_nowait("r/b", "once", qos=2, message_id=4242,
                                   wait_for_subscribers=TIMEOUT)
            m = await listener.get(TIMEOUT)
            assert m is not None and m.message == "once" and m.message_id == 4242
            sub.accept(m)
            first = await p.report(TIMEOUT)
            assert first.ok and first.message_id == 4242, first
            state = pub.session_state()
            assert state.session_id == pub.session_id != 0
            pub.close()
            resumed = nomq.SessionState(state.session_id, state.next_sequence + 100_000)
            async with nomq.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT, resume=resumed) as pub2:
                assert pub2.session_id == state.session_id
                again = await pub2.publish("r/b", "once", qos=2, message_id=4242)
                assert again.ok and again.message_id == 4242, again
                assert sub.stats()["duplicates_suppressed"] >= 1, sub.stats()
                # The repeat was recognised when it arrived, before the handshake ended: nothing
                # more reached the subscriber's listener.
                assert listener.get_nowait() is None
                # A new message continues under the resumed session.
                new = pub2.publish_nowait("r/c", "new", qos=2, wait_for_subscribers=TIMEOUT)
                m = await listener.get(TIMEOUT)
                assert m is not None and m.channel == "r/c" and m.sender_session == state.session_id
                sub.accept(m)
                assert (await new.report(TIMEOUT)).ok
    run(main())


def test_options_are_checked(v2_config, tmp_path):
    with pytest.raises(nomq.NoMQError) as e:
        sync.NoMQ(v2_config, log_level="OFF", resume=(2 ** 32, 1, 0))
    assert e.value.code == "invalid_argument" and "session_id" in str(e.value), e.value
    # Wire v1 (the original's config format) has no deferred acknowledgement.
    keys = nomq.generate_config()
    legacy = str(tmp_path / "legacy.cfg")
    assert nomq.create_config({"ip": "127.0.0.1", "port": free_udp_port(),
                               "encryption_key": keys["encryption_key"],
                               "hmac_key": keys["hmac_key"]}, legacy) == "legacy"
    with pytest.raises(nomq.ConfigError) as e:
        sync.NoMQ(legacy, log_level="OFF", deferred_ack=True)
    assert e.value.code == "config_bad_field" and "deferred_ack needs wire v2" in str(e.value), e.value
