"""asyncio behaviour: several nodes and many coroutines on one loop, the loop never blocked,
listeners and async iteration, close with work pending."""

from __future__ import annotations

import asyncio

import pytest

import nomq
from conftest import TIMEOUT, free_udp_port, run


def test_many_coroutines_publish_and_receive_on_one_loop(v2_config):
    channels = [f"line{i}/temp" for i in range(4)]
    per_channel = 25

    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as sub, \
                nomq.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as pub:
            for ch in channels:
                await sub.subscribe(ch)
            listener = await sub.listen()
            received = []

            async def consume():
                async for m in sub.messages():
                    received.append((m.channel, m.message))
                    if len(received) == len(channels) * per_channel:
                        return

            async def produce(ch):
                reports = []
                for i in range(per_channel):
                    reports.append(await pub.publish(ch, f"{ch}#{i}", qos=1))
                return reports

            consumer = asyncio.ensure_future(consume())
            results = await asyncio.gather(*(produce(ch) for ch in channels))
            await asyncio.wait_for(consumer, TIMEOUT)
            assert all(r.ok for reports in results for r in reports)
            assert sorted(received) == sorted((ch, f"{ch}#{i}") for ch in channels
                                              for i in range(per_channel))
            # The listener made before got the same messages, each once.
            polled = []
            while (m := listener.mssg()) is not None:
                polled.append((m["channel"], m["message"]))
            assert sorted(polled) == sorted(received)
            # Per channel, in order (one publisher, one channel, QoS 1 awaited one by one).
            for ch in channels:
                assert [t for c, t in received if c == ch] == [f"{ch}#{i}" for i in range(per_channel)]
    run(main())


def test_publish_nowait_pipelines_reports(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as sub, \
                nomq.NoMQ(v2_config, log_level="OFF") as pub:
            await sub.subscribe("bulk")
            listener = await sub.listen()
            pubs = [pub.publish_nowait("bulk", f"m{i}", qos=2, wait_for_subscribers=TIMEOUT)
                    for i in range(40)]
            reports = await asyncio.wait_for(asyncio.gather(*pubs), TIMEOUT)
            assert [r.reason for r in reports] == ["ok"] * 40
            assert len({p.message_id for p in pubs}) == 40
            got = set()
            while len(got) < 40:
                m = await listener.get(TIMEOUT)
                assert m is not None, f"only {len(got)} of 40 arrived"
                got.add(m.message)
            assert got == {f"m{i}" for i in range(40)}
    run(main())


def test_waiting_never_blocks_the_loop(v2_config):
    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)  # a periodic task, not a wait for an event

        async with nomq.NoMQ(v2_config, log_level="OFF") as node:
            t = asyncio.ensure_future(ticker())
            # Nobody subscribes: the library ends the publish after the wait with a report.
            loop = asyncio.get_running_loop()
            start = loop.time()
            report = await node.publish("nobody/listens", "x", qos=1, timeout=0.5)
            elapsed = loop.time() - start
            listener = await node.listen()
            assert await listener.get(0.2) is None
            stop.set()
            await t
        assert report.reason == "no_subscribers" and not report.ok
        assert 0.4 <= elapsed < TIMEOUT
        assert ticks >= 10, f"the loop ran only {ticks} ticks in {elapsed:.2f} s: blocked"
    run(main())


def test_delivery_timeout_keeps_the_message_in_flight(tmp_path):
    async def main():
        from conftest import write_v2_config
        path = str(tmp_path / "c.json")
        write_v2_config(path)
        async with nomq.NoMQ(path, log_level="OFF") as node:
            # A unicast destination where nobody answers: retransmitted, never acknowledged.
            silent = free_udp_port()
            try:
                await node.publish("x", "y", qos=1, ip="127.0.0.1", port=silent, timeout=0.3)
            except nomq.DeliveryTimeout as e:
                assert e.code == "timed_out" and isinstance(e, TimeoutError)
                pub = e.publication
            else:
                raise AssertionError("no DeliveryTimeout")
            assert not pub.done()
            left = node.close()
            report = await pub
            assert report.reason == "closed"
            assert [d.message_id for d in left] == [pub.message_id]
            assert report.recipients[0].state == "failed"
            assert report.recipients[0].transmissions >= 1
    run(main())


def test_close_ends_waiting_listeners_and_async_for(v2_config):
    async def main():
        node = nomq.NoMQ(v2_config, log_level="OFF")
        await node.subscribe("a")
        listener = await node.listen()
        waiting = asyncio.ensure_future(listener.get())
        iterating = asyncio.ensure_future(_collect(node.messages()))
        await asyncio.sleep(0)  # let both start waiting
        node.close()
        assert await asyncio.wait_for(waiting, TIMEOUT) is None
        assert await asyncio.wait_for(iterating, TIMEOUT) == []
        assert node.closed
        assert node.close() == []  # idempotent
    run(main())


async def _collect(it):
    return [m async for m in it]


def test_messages_before_the_first_listener_are_kept_for_it(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as sub, \
                nomq.NoMQ(v2_config, log_level="OFF") as pub:
            await sub.subscribe("early")
            r = await pub.publish("early", "first", qos=1)
            assert r.ok  # acknowledged: the subscriber's loop has received it
            listener = await sub.listen()
            assert listener.mssg() == {"channel": "early", "message": "first"}
            later = await sub.listen()  # a second listener gets only what comes next
            assert later.mssg() is None
    run(main())


def test_binary_message_on_wire_v2(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as sub, \
                nomq.NoMQ(v2_config, log_level="OFF") as pub:
            await sub.subscribe("bin")
            listener = await sub.listen()
            blob = bytes(range(256))[::-1][:100]
            assert (await pub.publish("bin", blob, qos=1)).ok
            m = await listener.get(TIMEOUT)
            assert m.payload == blob and m.message == blob  # not UTF-8: bytes
    run(main())


def test_sync_api_round_trip(v2_config):
    with nomq.sync.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as sub, \
            nomq.sync.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as pub:
        sub.subscribe("sync/ch")
        listener = sub.listen()
        report = pub.publish("sync/ch", "hello", qos=2)
        assert report.ok and report.recipients[0].state == "acknowledged"
        assert listener.mssg(timeout=TIMEOUT) == {"channel": "sync/ch", "message": "hello"}
        assert listener.mssg() is None
        with_sig = pub.gen_signature("auth")
        assert sub.authenticate(with_sig, "auth")
        report = pub.publish("sync/ch", "signed", qos=1, signature=with_sig, auth_message="auth")
        assert report.ok
        m = listener.get(timeout=TIMEOUT)
        assert (m.channel, m.message, m.qos) == ("sync/ch", "signed", 1)


def test_a_node_made_outside_a_loop_follows_each_asyncio_run(v2_config):
    sub = nomq.sync.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT)
    node = nomq.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT)  # no loop runs yet
    try:
        sub.subscribe("twice")
        listener = sub.listen()

        async def one(text):
            return await node.publish("twice", text, qos=1)

        assert asyncio.run(one("first")).ok
        assert asyncio.run(one("second")).ok  # a new loop drives it now
        assert [listener.mssg(TIMEOUT)["message"] for _ in range(2)] == ["first", "second"]
    finally:
        node.close()
        sub.close()


def test_sync_messages_iterator_and_close(v2_config):
    sub = nomq.sync.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT)
    with nomq.sync.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as pub:
        sub.subscribe("it")
        stream = sub.messages(timeout=TIMEOUT)
        for i in range(3):
            assert pub.publish("it", f"m{i}", qos=1).ok
        assert [next(stream).message for _ in range(3)] == ["m0", "m1", "m2"]
        assert list(sub.messages(timeout=0.05)) == []  # ends when nothing comes in time
        listener = sub.listen()  # the first: it also has what came since the node started
        sub.close()
        assert [m.message for m in listener] == ["m0", "m1", "m2"]  # then it ends at close
        with pytest.raises(nomq.ClosedError):
            sub.subscribe("again")
