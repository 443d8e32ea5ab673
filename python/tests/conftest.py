"""Shared helpers of the nomq Python tests (run from CTest: `ctest -L python`).

Everything stays on loopback: configs put the group on 127.255.255.255 (the loopback
broadcast) with a free port from the kernel, or use unicast to 127.0.0.1. The `nomq` tool is
NOMQ_BIN. Tests wait on events (a process's line, a message, a report) with timeouts; none
sleeps waiting for something to happen.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from typing import List, Optional

import pytest

NOMQ_BIN = os.environ.get("NOMQ_BIN", "")
SOURCE_DIR = os.environ.get("NOMQ_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
#: Bound on every wait in the tests; generous for a loaded 2-core CI machine.
TIMEOUT = float(os.environ.get("NOMQ_TEST_TIMEOUT", "15"))

import nomq  # noqa: E402  (PYTHONPATH is set by CTest)


def free_udp_port() -> int:
    """A port the kernel says is free on 127.0.0.1 (released at once; a clash then fails the
    test on bind with a clear message)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_v2_config(path: str, **overrides) -> dict:
    """Our JSON config, wire v2, group on the loopback broadcast with a free port."""
    config = nomq.generate_config(group="127.255.255.255", port=free_udp_port(), ip="0.0.0.0")
    config.update(overrides)
    assert nomq.create_config(config, path) == "json"
    return config


@pytest.fixture
def tmpdir_path(tmp_path) -> str:
    return str(tmp_path)


@pytest.fixture
def v2_config(tmp_path) -> str:
    path = str(tmp_path / "nomq.json")
    write_v2_config(path)
    return path


class Proc:
    """A child process (the `nomq` tool) whose output lines are read from asyncio. Both streams
    are drained continuously (a `-d` log never fills its pipe); line() waits for the next."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.seen = {"stdout": [], "stderr": []}  # lines consumed by line()/lines()
        self.all = {"stdout": [], "stderr": []}   # every line read so far
        self.queues = {"stdout": asyncio.Queue(), "stderr": asyncio.Queue()}
        self.pumps = [asyncio.ensure_future(self._pump(proc.stdout, "stdout")),
                      asyncio.ensure_future(self._pump(proc.stderr, "stderr"))]

    async def _pump(self, reader, name: str) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                await self.queues[name].put(None)
                return
            text = raw.decode(errors="replace").rstrip("\n")
            self.all[name].append(text)
            await self.queues[name].put(text)

    @classmethod
    async def start(cls, *args: str) -> "Proc":
        assert NOMQ_BIN and os.access(NOMQ_BIN, os.X_OK), f"NOMQ_BIN={NOMQ_BIN!r} is not the nomq tool"
        p = await asyncio.create_subprocess_exec(NOMQ_BIN, *args, stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.PIPE,
                                                 stdin=asyncio.subprocess.DEVNULL)
        return cls(p, "nomq " + " ".join(args[:1]))

    async def line(self, stream: str = "stdout", contains: Optional[str] = None,
                   timeout: float = TIMEOUT) -> str:
        """The next line of `stream` (containing `contains`), or fail with what was seen."""
        q = self.queues[stream]
        seen = self.seen[stream]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                text = await asyncio.wait_for(q.get(), max(deadline - loop.time(), 0.001))
            except asyncio.TimeoutError:
                raise AssertionError(f"{self.name}: no line{' with ' + repr(contains) if contains else ''} "
                                     f"on {stream} within {timeout} s; seen {seen[-20:]}") from None
            if text is None:
                q.put_nowait(None)
                raise AssertionError(f"{self.name}: output ended (rc {self.proc.returncode}) before "
                                     f"a line {contains!r} on {stream}; seen {seen[-20:]}; "
                                     f"stderr {self.all['stderr'][-20:]}")
            seen.append(text)
            if contains is None or contains in text:
                return text

    async def json_line(self, timeout: float = TIMEOUT) -> dict:
        while True:
            text = await self.line("stdout", timeout=timeout)
            try:
                return json.loads(text)
            except ValueError:
                continue

    async def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            rc = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.name}: did not exit within {timeout} s; stderr "
                                 f"{self.all['stderr'][-20:]}") from None
        await asyncio.wait(self.pumps, timeout=timeout)
        return rc

    async def lines(self, stream: str = "stdout") -> List[str]:
        """Every remaining line of `stream` once the process has ended."""
        out = []
        while True:
            text = await self.queues[stream].get()
            if text is None:
                self.queues[stream].put_nowait(None)
                return out
            self.seen[stream].append(text)
            out.append(text)

    def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def nomq_sub(config: str, *channels: str, count: int = 1, extra=()) -> Proc:
    """`nomq sub --json -d`, returned once it says it is ready (subscribed and announced)."""
    args = ["sub", "-c", config, "--json", "-d", "-C", str(count), "-W", str(TIMEOUT), *extra]
    for ch in channels:
        args += ["-t", ch]
    p = await Proc.start(*args)
    await p.line("stderr", contains="ready on")
    return p


def run(coro):
    """Runs a test coroutine with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, 4 * TIMEOUT))


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
