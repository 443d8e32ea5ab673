"""The NoMQ API for scripts: the same calls as :class:`nomq.NoMQ`, blocking.

The node runs its loop on a thread of its own (the C++ ``Node::start()``), so it answers,
retransmits and receives while the script does other things; waits (``publish`` for its
report, ``Listener.mssg(timeout)``) block on the C++ side with the GIL released, so other
Python threads keep running::

    from nomq.sync import NoMQ
    node = NoMQ("nomq.json")
    node.subscribe("plant/temp")
    listener = node.listen()
    report = node.publish("plant/temp", "21.5", qos=1)   # waits for the acknowledgements
    msg = listener.mssg(timeout=2)                       # {"channel": ..., "message": ...}
    node.close()
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

from . import _common, _nomq
from ._common import Delivery, SessionState, qos0_delivery
from ._errors import DeliveryTimeout

_DEFAULT: Any = object()

Message = _nomq.Message


class Publication:
    """A publish in flight; ``report(timeout)`` waits for its :class:`Delivery`."""

    __slots__ = ("message_id", "channel", "qos", "_handle")

    def __init__(self, message_id: int, channel: str, qos: int, handle: Any) -> None:
        self.message_id = message_id
        self.channel = channel
        self.qos = qos
        self._handle = handle

    def done(self) -> bool:
        return self._handle is None or bool(self._handle.ready())

    def report(self, timeout: Optional[float] = None) -> Delivery:
        """Waits up to ``timeout`` s (None: until the library ends the publish) for the
        report; raises DeliveryTimeout."""
        if self._handle is None:
            return qos0_delivery(self.message_id, self.channel)
        while True:
            d = self._handle.wait_for(3600.0 if timeout is None else timeout)
            if d is not None:
                return Delivery.from_dict(d)
            if timeout is not None:
                raise DeliveryTimeout(
                    f"no delivery report for message {self.message_id} on '{self.channel}' "
                    f"within {timeout} s; it is still in flight", self)


class Listener:
    """Messages received after the listener was created (the first listener also gets those
    received since the node started)."""

    def __init__(self, inner: _nomq.Listener, owner: "NoMQ") -> None:
        self._inner = inner
        self._owner = owner

    def mssg(self, timeout: float = 0) -> Optional[Dict[str, Any]]:
        """The next message as ``{"channel": ..., "message": ...}``, waiting up to
        ``timeout`` s (0: the original's poll); None if there is none."""
        m = self._inner.next(timeout)
        return None if m is None else m.mssg()

    def get(self, timeout: float = 0) -> Optional[Message]:
        """The next :class:`Message`, waiting up to ``timeout`` s; None if none came."""
        return self._inner.next(timeout)

    def __len__(self) -> int:
        return len(self._inner)

    def __iter__(self) -> Iterator[Message]:
        """Messages as they come, until the node closes."""
        while True:
            m = self._inner.next(3600.0)
            if m is not None:
                yield m
            elif self._owner.closed:
                return


class NoMQ(_common.NodeView):
    """A NoMQ node for synchronous code: ``NoMQ(config_file, log_level="INFO", timeout=5, *,
    deferred_ack=False, resume=None)``, the calls of :class:`nomq.NoMQ` without ``await``."""

    def __init__(self, config_file: str = "nomq_config.json", log_level: str = "INFO",
                 timeout: float = 5, *, deferred_ack: bool = False,
                 resume: Union[SessionState, Mapping[str, int], None] = None) -> None:
        _common.set_log_level(log_level)
        self._node = _common.load_node(str(config_file), deferred_ack, resume)
        self._discovery_end = _common.discovery_end(self._node, str(config_file))
        self._group = self._node.group  # fixed for the node's life
        _common.set_log_level(log_level)
        self.timeout = timeout
        self._first: Optional[_nomq.Listener] = self._node.listen()  # for the first listen()
        self._closed = False
        self._node.start()

    create_config = staticmethod(_common.create_config)

    def gen_signature(self, message: Union[str, bytes]) -> bytes:
        return bytes(self._live().gen_signature(message))

    def authenticate(self, signature: Union[bytes, str], message: Union[str, bytes],
                     addr: Any = None) -> bool:
        return _common.authenticate(self._live(), signature, message)

    def subscribe(self, channel: str, priority: int = 0, signature: Union[bytes, str, None] = None,
                  message: Union[str, bytes, None] = None, addr: Any = None) -> None:
        node = self._live()
        _common.check_signature(node, signature, message, addr, "subscribe")
        node.subscribe(channel, priority)

    def unsubscribe(self, channel: str) -> None:
        self._live().unsubscribe(channel)

    def withdraw(self, channel: str) -> None:
        self._live().withdraw(channel)

    def publish(self, channel: str, message: Union[str, bytes], qos: int = 0,
                retain: bool = False, ttl: Optional[int] = None, priority: int = 0,
                ip: Optional[str] = None, port: Optional[int] = None,
                signature: Union[bytes, str, None] = None,
                auth_message: Union[str, bytes, None] = None, *,
                timeout: Optional[float] = _DEFAULT,
                message_id: Optional[int] = None) -> Delivery:
        """As :meth:`nomq.NoMQ.publish`, blocking until the report (at most ``timeout`` s)."""
        wait = self.timeout if timeout is _DEFAULT else timeout
        pub = self.publish_nowait(channel, message, qos, retain, ttl, priority, ip, port,
                                  signature, auth_message, wait_for_subscribers=wait,
                                  message_id=message_id)
        try:
            return pub.report(_common.report_bound(wait, self._discovery_end))
        except DeliveryTimeout:
            if pub.done():  # the no-subscriber deadline, reached at the same moment
                return pub.report(0)
            raise

    def publish_nowait(self, channel: str, message: Union[str, bytes], qos: int = 0,
                       retain: bool = False, ttl: Optional[int] = None, priority: int = 0,
                       ip: Optional[str] = None, port: Optional[int] = None,
                       signature: Union[bytes, str, None] = None,
                       auth_message: Union[str, bytes, None] = None, *,
                       wait_for_subscribers: Optional[float] = None,
                       message_id: Optional[int] = None) -> Publication:
        node = self._live()
        _common.check_signature(node, signature, auth_message, None, "publish")
        dest_ip, dest_port = _common.resolve_destination(self._group, ip, port)
        handle = node.publish(channel, message, qos, retain, ttl, priority, dest_ip, dest_port,
                              wait_for_subscribers if qos else None, message_id or 0)
        return Publication(handle.message_id, channel, qos, handle if qos else None)

    def listen(self) -> Listener:
        node = self._live()
        inner, self._first = (self._first, None) if self._first is not None else (node.listen(), None)
        return Listener(inner, self)

    def messages(self, timeout: Optional[float] = None) -> Iterator[Message]:
        """Messages from the call on (the listener is made at once); the iteration ends after
        ``timeout`` s without one (None: at close)."""
        inner = self._live().listen()

        def stream() -> Iterator[Message]:
            while True:
                m = inner.next(3600.0 if timeout is None else timeout)
                if m is None:
                    if timeout is not None or self._closed:
                        return
                    continue
                yield m

        return stream()

    def close(self, linger: float = 0) -> List[Delivery]:
        """Stops the node's thread, announces the unsubscriptions, ends what is in flight;
        returns the reports of the messages not fully acknowledged."""
        if self._closed:
            return []
        self._closed = True
        return [Delivery.from_dict(d) for d in self._node.close(linger)]

    def __enter__(self) -> "NoMQ":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
