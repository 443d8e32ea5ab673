"""Errors arrive as Python exceptions carrying the library's code and reason."""

from __future__ import annotations

import json
import os

import pytest

import nomq
from conftest import TIMEOUT, free_udp_port, run


def test_missing_config_file():
    with pytest.raises(nomq.ConfigError) as e:
        nomq.NoMQ("/nonexistent/nomq.json")
    assert e.value.code == "config_unreadable" and e.value.domain == "config"
    assert e.value.reason == "/nonexistent/nomq.json: No such file or directory"
    assert str(e.value) == "config_unreadable: /nonexistent/nomq.json: No such file or directory"


def test_bad_config_field_names_the_key(tmp_path):
    path = tmp_path / "bad.json"
    c = nomq.generate_config()
    c["port"] = 70000
    path.write_text(json.dumps(c))
    os.chmod(path, 0o600)
    with pytest.raises(nomq.ConfigError) as e:
        nomq.sync.NoMQ(str(path))
    assert e.value.code == "config_bad_field"
    assert "port" in e.value.reason and "70000" in e.value.reason


def test_create_config_validates(tmp_path):
    with pytest.raises(nomq.ConfigError) as e:
        nomq.create_config({"encryption_key": "00" * 31, "hmac_key": "11" * 32}, str(tmp_path / "x"))
    assert e.value.code == "config_bad_field" and "encryption_key" in e.value.reason
    assert not (tmp_path / "x").exists()
    with pytest.raises(nomq.ConfigError) as e:
        nomq.create_config({"no_such_key": 1, "encryption_key": "00" * 32, "hmac_key": "11" * 32},
                           str(tmp_path / "y"))
    assert "no_such_key" in e.value.reason


def test_bad_log_level(v2_config):
    with pytest.raises(nomq.NoMQError) as e:
        nomq.NoMQ(v2_config, log_level="LOUD")
    assert e.value.code == "invalid_argument" and "LOUD" in e.value.reason


def test_call_errors(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as node:
            with pytest.raises(nomq.LimitError) as e:
                await node.publish("a", "x" * 5000)
            assert e.value.code == "message_too_large" and "max_message_size" in e.value.reason
            with pytest.raises(nomq.NoMQError) as e:
                await node.publish("a", "x", qos=3)
            assert e.value.code == "invalid_argument" and "qos" in e.value.reason
            with pytest.raises(nomq.NoMQError) as e:
                await node.publish("a", "x", ip="not-an-address", port=1234)
            assert e.value.code == "invalid_argument" and "not-an-address" in e.value.reason
            with pytest.raises(nomq.NoMQError) as e:
                await node.unsubscribe("never")
            assert e.value.code == "not_subscribed"
            await node.withdraw("left/behind")  # a channel this node does not follow: announced
            await node.subscribe("followed")
            with pytest.raises(nomq.NoMQError) as e:
                await node.withdraw("followed")
            assert e.value.code == "already_subscribed"
            with pytest.raises(nomq.LimitError) as e:
                await node.subscribe("c" * 300)
            assert e.value.code == "channel_name_too_long"
            with pytest.raises(TypeError):
                await node.publish("a", 42)  # type: ignore[arg-type]
        with pytest.raises(nomq.ClosedError) as e:
            await node.publish("a", "x")
        assert e.value.code == "closed"
    run(main())


def test_too_many_pending_says_the_limit(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as node:
            silent = free_udp_port()
            with pytest.raises(nomq.LimitError) as e:
                for _ in range(51):
                    node.publish_nowait("x", "y", qos=1, ip="127.0.0.1", port=silent)
            assert e.value.code == "too_many_pending" and "50" in e.value.reason
            assert len(node.close()) == 50  # every one reported, none lost silently
    run(main())


def test_too_many_channels(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as node:
            for i in range(20):
                await node.subscribe(f"ch{i}")
            with pytest.raises(nomq.LimitError) as e:
                await node.subscribe("one-more")
            assert e.value.code == "too_many_channels" and "20" in e.value.reason
    run(main())


def test_signatures_authenticate_requests(v2_config):
    async def main():
        async with nomq.NoMQ(v2_config, log_level="OFF") as node:
            sig = node.gen_signature("auth")
            assert len(sig) == 32 and node.authenticate(sig, "auth")
            await node.subscribe("s", signature=sig, message="auth")
            with pytest.raises(nomq.AuthenticationError) as e:
                await node.subscribe("t", signature=sig, message="other", addr=("10.0.0.7", 8888))
            assert e.value.code == "authentication_failed" and "10.0.0.7" in e.value.reason
            with pytest.raises(nomq.AuthenticationError):
                await node.publish("s", "x", signature=b"\0" * 32, auth_message="auth")
            with pytest.raises(nomq.NoMQError) as e:
                await node.publish("s", "x", signature=sig)  # its message is missing
            assert e.value.code == "invalid_argument"
            report = await node.publish("s", "x", signature=sig.hex(), auth_message="auth")
            assert report.ok
    run(main())
