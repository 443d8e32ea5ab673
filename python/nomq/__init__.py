"""NoMQ for Python: secure brokerless publish/subscribe over UDP, on the C++ runtime.

The original MicroPython library's API on asyncio::

    import asyncio, nomq

    async def main():
        node = nomq.NoMQ("nomq.json", log_level="INFO", timeout=5)
        await node.subscribe("plant/temp")
        report = await node.publish("plant/temp", "21.5", qos=1)
        listener = await node.listen()
        msg = listener.mssg()          # {"channel": ..., "message": ...} or None
        async for m in node.messages():  # or wait for messages
            print(m.channel, m.message)
        node.close()

    asyncio.run(main())

``nomq.sync.NoMQ`` is the same API for synchronous scripts. docs/python.md has the details.
"""

from ._aio import Listener, NoMQ, Publication
from ._common import (Delivery, Recipient, SessionState, create_config, generate_config,
                      set_log_level)
from ._errors import (AuthenticationError, ClosedError, ConfigError, DeliveryTimeout, LimitError,
                      NoMQError)
from ._nomq import Message
from . import sync

__all__ = [
    "NoMQ", "Listener", "Publication", "Message", "Delivery", "Recipient", "SessionState",
    "create_config", "generate_config", "set_log_level",
    "NoMQError", "ConfigError", "ClosedError", "LimitError", "AuthenticationError",
    "DeliveryTimeout", "sync",
]

__version__ = "0.1.0"
