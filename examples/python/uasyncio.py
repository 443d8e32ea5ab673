# MicroPython's name for asyncio (its Unix port aliases it the same way): for the example only.
from asyncio import *  # noqa: F401,F403
