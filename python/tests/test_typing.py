"""The package's annotations and the extension's stubs (_nomq.pyi, py.typed) hold together:
mypy --strict over the package and over a program using the original's API."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import nomq

USAGE = '''
import asyncio
from typing import Dict, Optional, Any, List, Tuple, Union
import nomq
from nomq.sync import NoMQ as SyncNoMQ

async def main() -> None:
    node = nomq.NoMQ("nomq.json", log_level="INFO", timeout=5)
    sig: bytes = node.gen_signature("auth")
    ok: bool = node.authenticate(sig, "auth", addr=("10.0.0.7", 8888))
    await node.subscribe("a/b", priority=0, signature=sig, message="auth", addr=None)
    report: nomq.Delivery = await node.publish("a/b", "x", qos=2, retain=True, ttl=60, priority=3,
                                               ip="255.255.255.255", port=8888, signature=sig,
                                               auth_message="auth")
    states: List[str] = [r.state for r in report.recipients]
    listener: nomq.Listener = await node.listen()
    m: Optional[Dict[str, Any]] = listener.mssg()
    async for msg in node.messages():
        text: Union[str, bytes] = msg.message
        sender: Tuple[Optional[str], int] = msg.sender
    pub: nomq.Publication = node.publish_nowait("a/b", b"bytes", qos=1)
    again: nomq.Delivery = await pub
    await node.unsubscribe("a/b")
    await node.withdraw("c/d")
    left: List[nomq.Delivery] = node.close()
    nomq.NoMQ.create_config({"encryption_key": "00" * 32, "hmac_key": "11" * 32}, "x.json")

def script() -> None:
    with SyncNoMQ("nomq.json") as node:
        r: nomq.Delivery = node.publish("a", "b", qos=1, timeout=2.0)
        got: Optional[Dict[str, Any]] = node.listen().mssg(timeout=1.0)
    try:
        nomq.NoMQ("missing.json")
    except nomq.NoMQError as e:
        code: str = e.code
        reason: str = e.reason
'''


def test_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy (Debian: mypy) not installed")
    package = os.path.dirname(nomq.__file__)
    usage = tmp_path / "usage.py"
    usage.write_text(USAGE)
    env = dict(os.environ, MYPYPATH=os.path.dirname(package))
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                        "--cache-dir", str(tmp_path / "cache"), package, str(usage)],
                       capture_output=True, text=True, env=env, timeout=300, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
