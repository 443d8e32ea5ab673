"""Python <-> the C++ `nomq` tool on loopback: QoS 0/1/2 both ways, retained messages, and
wire v1 with a config file in the original's obfuscated format."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import pytest

import nomq
from conftest import TIMEOUT, Proc, free_udp_port, nomq_sub, run


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_python_publishes_cli_subscriber_receives(v2_config, qos):
    async def main():
        sub = await nomq_sub(v2_config, "plant/temp")
        try:
            async with nomq.NoMQ(v2_config, log_level="OFF", timeout=TIMEOUT) as node:
                report = await node.publish("plant/temp", f"21.{qos}", qos=qos, priority=3)
                got = await sub.json_line()
                assert got["channel"] == "plant/temp"
                assert got["message"] == f"21.{qos}"
                assert got["qos"] == qos
                assert report.ok and report.qos == qos and report.channel == "plant/temp"
                if qos:
                    assert [r.state for r in report.recipients] == ["acknowledged"]
                    assert report.recipients[0].address[0] == "127.0.0.1"
                else:
                    assert report.recipients == []
                assert await sub.wait() == 0
        finally:
            sub.stop()
    run(main())


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_cli_publishes_python_receives(v2_config, qos):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as node:
            await node.subscribe("plant/valve")
            listener = await node.listen()
            pub = await Proc.start("pub", "-c", v2_config, "-t", "plant/valve", "-m", "open",
                                   "-q", str(qos), "--json")
            try:
                msg = await listener.get(TIMEOUT)
                assert msg is not None, "no message from nomq pub"
                assert (msg.channel, msg.message, msg.qos, msg.retain) == ("plant/valve", "open", qos, False)
                assert msg.payload == b"open"
                assert listener.mssg() is None  # exactly once
                assert await pub.wait() == 0
                report = json.loads((await pub.lines())[-1])
                if qos:
                    # the tool's own report: this Python node acknowledged
                    assert report["reason"] == "ok", report
            finally:
                pub.stop()
    run(main())


def test_python_retained_reaches_a_later_cli_subscriber(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as node:
            report = await node.publish("plant/setpoint", "19.5", qos=0, retain=True)
            assert report.ok
            # The subscriber starts afterwards: the publisher replays the retained message
            # when it hears the subscriber's announcement (on this loop, while we wait).
            sub = await nomq_sub(v2_config, "plant/setpoint")
            try:
                got = await sub.json_line()
                assert (got["message"], got["retain"]) == ("19.5", True)
                assert await sub.wait() == 0
            finally:
                sub.stop()
    run(main())


def test_cli_retained_reaches_a_later_python_subscriber(v2_config):
    async def main():
        # The tool publishes retained at QoS 1 before anybody subscribed: it waits for a
        # subscriber (--wait) and delivers once this node announces itself.
        pub = await Proc.start("pub", "-c", v2_config, "-t", "plant/mode", "-m", "auto", "-q", "1",
                               "-r", "--wait", str(TIMEOUT), "--json", "-d")
        try:
            await pub.line("stderr", contains="published message")  # before anyone subscribed
            async with nomq.NoMQ(v2_config, log_level="OFF") as node:
                listener = await node.listen()
                await node.subscribe("plant/mode")
                msg = await listener.get(TIMEOUT)
                assert msg is not None
                assert (msg.message, msg.retain, msg.qos) == ("auto", True, 1)
                assert await pub.wait() == 0
        finally:
            pub.stop()
    run(main())


def _legacy_config(path: str, port: int, keys=None) -> dict:
    """A config in the original's format (only its five keys), written by create_config."""
    k = keys or nomq.generate_config()
    config = {"ip": "127.0.0.1", "port": port, "use_ipv6": False,
              "encryption_key": k["encryption_key"], "hmac_key": k["hmac_key"]}
    assert nomq.create_config(config, path) == "legacy"
    return config


def test_create_config_writes_the_originals_format(tmp_path):
    path = str(tmp_path / "nomq_config.json")
    config = _legacy_config(path, 8888)
    text = open(path).read()
    assert not text.lstrip().startswith("{") and text.endswith("\n")  # base64, one line
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    read, fmt, _warning = nomq._nomq.read_config(path)
    assert fmt == "legacy" and read["wire"] == "v1"
    assert read["encryption_key"] == config["encryption_key"] and read["port"] == 8888


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_wire_v1_with_the_originals_config_python_to_cli(tmp_path, qos):
    async def main():
        port = free_udp_port()
        sub_path = str(tmp_path / "sub_config.json")
        keys = _legacy_config(sub_path, port)
        # Our node gets a file of its own (same keys, another port): a unicast datagram to a
        # port that two sockets share reaches only one of them.
        path = str(tmp_path / "nomq_config.json")
        _legacy_config(path, free_udp_port(), keys)
        # `nomq sub` reads a legacy file too: it means wire v1 for both.
        sub = await nomq_sub(sub_path, "dev/temp")
        try:
            async with nomq.NoMQ(path, log_level="OFF", timeout=TIMEOUT) as node:
                assert node.wire == "v1"
                await node.subscribe("dev/temp")  # v1 needs it for the replies (as the original)
                # v1 has no discovery: the original's explicit ip/port.
                report = await node.publish("dev/temp", '{"t": 25.3}', qos=qos, ip="127.0.0.1",
                                            port=port)
                got = await sub.json_line()
                assert (got["channel"], got["message"], got["qos"]) == ("dev/temp", '{"t": 25.3}', qos)
                assert report.ok
                if qos:
                    assert report.recipients[0].state == "acknowledged"
                assert await sub.wait() == 0
        finally:
            sub.stop()
    run(main())


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_wire_v1_with_the_originals_config_cli_to_python(tmp_path, qos):
    async def main():
        port = free_udp_port()
        path = str(tmp_path / "nomq_config.json")
        _legacy_config(path, port)
        async with nomq.NoMQ(path, log_level="OFF") as node:
            await node.subscribe("dev/relay")
            listener = await node.listen()
            pub = await Proc.start("pub", "-c", path, "-h", "127.0.0.1", "-t", "dev/relay",
                                   "-m", "on", "-q", str(qos), "--json")
            try:
                msg = await listener.get(TIMEOUT)
                assert msg is not None
                assert (msg.channel, msg.message, msg.qos) == ("dev/relay", "on", qos)
                assert await pub.wait() == 0
                assert json.loads((await pub.lines())[-1])["reason"] == "ok"
            finally:
                pub.stop()
    run(main())


def test_wire_v1_signature_is_the_originals_keyed_hash(tmp_path):
    async def main():
        path = str(tmp_path / "nomq_config.json")
        config = _legacy_config(path, free_udp_port())
        node = nomq.NoMQ(path, log_level="OFF")
        try:
            sig = node.gen_signature("auth")
            # The original's gen_signature: SHA-256(message || hmac_key) (LEGACY-WIRE-FORMAT.md)
            assert sig == hashlib.sha256(b"auth" + bytes.fromhex(config["hmac_key"])).digest()
            assert node.authenticate(sig, "auth") and node.authenticate(sig.hex(), "auth")
            assert not node.authenticate(sig, "auth2")
        finally:
            node.close()
    run(main())
