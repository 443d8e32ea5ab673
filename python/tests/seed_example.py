"""Runs examples/python/environmental_sensor.py (the original README's example) against the
`nomq` tool on loopback and checks what it prints. Used by test_seed_example.py (the package
from the build tree) and test_pip_install.py (the package installed by pip)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Dict, Optional

from conftest import SOURCE_DIR, TIMEOUT, Proc, nomq_sub, write_v2_config

EXAMPLE = os.path.join(SOURCE_DIR, "examples", "python", "environmental_sensor.py")


async def run_seed_example(workdir: str, python: str = sys.executable,
                           env: Optional[Dict[str, str]] = None) -> None:
    # The example opens "nomq_config.json" in its working directory: ours, with the group on
    # the loopback broadcast. Its publish to 255.255.255.255:8888 (the original's "everyone")
    # goes to that group.
    config = os.path.join(workdir, "nomq_config.json")
    write_v2_config(config)
    sub = await nomq_sub(config, "test/channel")
    example = None
    try:
        environment = dict(os.environ if env is None else env)
        environment["PYTHONUNBUFFERED"] = "1"
        proc = await asyncio.create_subprocess_exec(
            python, EXAMPLE, cwd=workdir, env=environment, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        example = Proc(proc, "environmental_sensor.py")
        await example.line(contains="Subscribing to test/channel...")
        # Its QoS 2 retained JSON reading reached the tool's subscriber...
        got = await sub.json_line()
        assert got["channel"] == "test/channel" and got["qos"] == 2 and got["retain"] is True
        reading = json.loads(got["message"])
        assert reading["type"] == "environmental_sensor"
        assert reading["data"]["temperature"] == {"value": 25.3, "unit": "Celsius"}
        assert len(reading["device_id"]) == 12
        assert await sub.wait() == 0
        # ...and was acknowledged (publish returned), then it listens.
        await example.line(contains="Listening for messages...")
        for text, expected in [('{"alarm": "door", "zone": 3}',
                                "Received JSON: test/channel -> {'alarm': 'door', 'zone': 3}"),
                               ("plain text", "Received non-JSON: test/channel -> plain text")]:
            pub = await Proc.start("pub", "-c", config, "-t", "test/channel", "-m", text, "-q", "1")
            assert await pub.wait() == 0, pub.all["stderr"]  # the example's node acknowledged
            assert await example.line(contains="Received") == expected
        proc.send_signal(signal.SIGINT)
        assert await example.wait() == 0
        rest = await example.lines()
        assert rest == ["Terminated by user"], (rest, example.seen)
        assert not any("Error" in l for l in example.seen["stdout"]), example.seen
    finally:
        sub.stop()
        if example is not None:
            example.stop()
