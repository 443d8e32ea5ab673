# MicroPython's name for binascii: for the example only.
from binascii import *  # noqa: F401,F403
