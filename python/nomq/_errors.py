"""Exceptions of the nomq package.

Every failure of the C++ library (a ``nomq::Error``) arrives as a :class:`NoMQError` (or one of
its subclasses) carrying the library's code name, its domain and its one-line reason, e.g.::

    try:
        await node.publish("plant/temp", "x" * 5000)
    except nomq.NoMQError as e:
        e.code     # 'message_too_large'
        e.domain   # 'api'
        e.reason   # 'message of 5000 bytes: at most 1024 (max_message_size)'
        str(e)     # 'message_too_large: message of 5000 bytes: at most 1024 (max_message_size)'
"""

from __future__ import annotations

from typing import Any, Optional


class NoMQError(Exception):
    """A call the library refused or could not complete.

    Attributes:
        code: the library's error code name (``nomq::Errc``), e.g. ``"too_many_pending"``.
        domain: where the code comes from: ``"api"`` (a bad argument or a limit reached),
            ``"platform"`` (sockets, crypto, time-outs), ``"config"`` (config files), or
            ``"python"`` for the few errors this package raises itself.
        reason: the library's one-line message (what, which field, file or limit, and why).
        value: the code's number (``static_cast<int>(nomq::Errc)``), -1 for Python-side errors.
    """

    def __init__(self, reason: str, code: str = "invalid_argument", domain: str = "api",
                 value: int = -1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.domain = domain
        self.value = value

    def __str__(self) -> str:
        if self.reason and self.reason != self.code:
            return f"{self.code}: {self.reason}"
        return self.code


class ConfigError(NoMQError):
    """A config file could not be read, or a config value is invalid (domain ``config``)."""


class ClosedError(NoMQError):
    """The node is closed (code ``closed``)."""


class LimitError(NoMQError):
    """A configured limit was reached: ``too_many_pending`` (wait for a delivery report, then
    retry), ``too_many_channels``, ``too_many_retained``, ``queue_full``,
    ``message_too_large``, ``channel_name_too_long``."""


class AuthenticationError(NoMQError, PermissionError):
    """A ``signature`` given to subscribe() or publish() does not match its message
    (code ``authentication_failed``, domain ``python``): the call was refused, nothing sent."""


class DeliveryTimeout(NoMQError, TimeoutError):
    """``await publish()`` gave up waiting for the delivery report (code ``timed_out``).

    The message is still in flight (the library keeps retransmitting it until it is
    acknowledged, its TTL expires or the node closes): :attr:`publication` gives its report
    when it comes, e.g. ``await e.publication``.
    """

    def __init__(self, reason: str, publication: Any = None) -> None:
        super().__init__(reason, "timed_out", "platform")
        self.publication = publication


_LIMITS = {"too_many_pending", "too_many_channels", "too_many_retained", "queue_full",
           "message_too_large", "channel_name_too_long", "peer_table_full"}


def error_for(code: str, domain: str, reason: str, value: int = -1) -> NoMQError:
    """The exception for a library error (called by the C++ extension)."""
    cls: type[NoMQError]
    if domain == "config":
        cls = ConfigError
    elif code == "closed":
        cls = ClosedError
    elif code in _LIMITS:
        cls = LimitError
    else:
        cls = NoMQError
    return cls(reason, code, domain, value)


def closed_error(what: Optional[str] = None) -> ClosedError:
    return ClosedError(what or "the node is closed", "closed", "api")
