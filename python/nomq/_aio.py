"""The original's NoMQ API on asyncio, over the C++ runtime.

How it runs: the node's file descriptor (an epoll set over its sockets and wake-up eventfd) is
registered with ``loop.add_reader``; when it is readable, or when the engine's next deadline
(``loop.call_at``) comes, the loop's thread calls ``run_once(0)`` (the GIL released inside),
which receives, runs timers, sends, and fills a C++ listener; its messages are then handed to
the Python listeners and finished publishes resolve their futures. No thread is added, nothing
waits in C++ on the loop's thread, and every callback runs on the loop (docs/python.md says
why this and not a thread with call_soon_threadsafe).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from typing import Any, AsyncIterator, Deque, Dict, List, Mapping, Optional, Set, Union

from . import _common, _nomq
from ._common import Delivery, SessionState, qos0_delivery
from ._errors import ClosedError, DeliveryTimeout, NoMQError

log = logging.getLogger("nomq")

_DEFAULT: Any = object()

#: Messages a listener keeps before the oldest is dropped (counted, and logged as a warning),
#: as the C++ listener (NetworkOptions::listener_capacity).
LISTENER_CAPACITY = 4096

Message = _nomq.Message


class Publication:
    """A publish in flight: ``await publication`` (or ``await publication.report()``) gives its
    :class:`Delivery` once the library ends it."""

    __slots__ = ("message_id", "channel", "qos", "_future", "_handle")

    def __init__(self, message_id: int, channel: str, qos: int,
                 future: Optional["asyncio.Future[Delivery]"], handle: Any) -> None:
        self.message_id = message_id
        self.channel = channel
        self.qos = qos
        self._future = future
        self._handle = handle

    def done(self) -> bool:
        """True once the report is there (QoS 0: at once)."""
        return self._future is None or self._future.done()

    def result(self) -> Delivery:
        """The report; raises asyncio.InvalidStateError if it is not there yet."""
        if self._future is None:
            return qos0_delivery(self.message_id, self.channel)
        return self._future.result()

    async def report(self, timeout: Optional[float] = None) -> Delivery:
        """Waits for the report, at most ``timeout`` s (None: until the library ends the
        publish: acknowledged, TTL expiry, retry limit or close). Raises DeliveryTimeout."""
        if self._future is None:
            return qos0_delivery(self.message_id, self.channel)
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except asyncio.TimeoutError:
            raise DeliveryTimeout(
                f"no delivery report for message {self.message_id} on '{self.channel}' "
                f"within {timeout} s; it is still in flight", self) from None

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.report().__await__()

    def __repr__(self) -> str:
        return (f"Publication(message_id={self.message_id}, channel={self.channel!r}, "
                f"qos={self.qos}, done={self.done()})")


class Listener:
    """The original's listener: every message the node receives after it was created (the
    first listener also gets those received before any listener existed, as the original read
    them from its socket later). ``mssg()`` polls; ``await get()`` and ``async for`` wait."""

    def __init__(self, owner: "NoMQ", capacity: int = LISTENER_CAPACITY) -> None:
        self._owner = owner
        self._queue: Deque[Message] = collections.deque()
        self._capacity = capacity
        self._waiter: Optional["asyncio.Future[None]"] = None
        self.overflows = 0

    # -- the original's API
    def mssg(self) -> Optional[Dict[str, Any]]:
        """The next message as ``{"channel": str, "message": str}`` or None if there is none.
        ``message`` is bytes when a (wire v2) message is not UTF-8."""
        if not self._queue:
            return None
        m: Dict[str, Any] = self._queue.popleft().mssg()
        return m

    # -- Pythonic extras
    def get_nowait(self) -> Optional[Message]:
        """The next :class:`Message` (channel, message, payload, qos, retain, priority, sender,
        ...) or None."""
        return self._queue.popleft() if self._queue else None

    async def get(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, waiting up to ``timeout`` s (None: until one comes or the node
        closes). None on timeout or once the node is closed and the queue is empty."""
        if self._queue:
            return self._queue.popleft()
        if self._owner.closed:
            return None
        loop = asyncio.get_running_loop()
        self._owner._attach()
        self._waiter = loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._waiter), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiter = None
        return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)

    def __aiter__(self) -> "Listener":
        return self

    async def __anext__(self) -> Message:
        m = await self.get()
        if m is None:
            raise StopAsyncIteration
        return m

    def close(self) -> None:
        """Stops receiving (the node no longer hands messages to this listener)."""
        self._owner._listeners.discard(self)
        self._wake()

    # -- from the node
    def _push(self, messages: List[Message]) -> None:
        q = self._queue
        q.extend(messages)
        excess = len(q) - self._capacity
        if excess > 0:
            for _ in range(excess):
                q.popleft()
            self.overflows += excess
            log.warning("listener full (%d messages): dropped the %d oldest (%d so far)",
                        self._capacity, excess, self.overflows)
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)


class NoMQ(_common.NodeView):
    """A NoMQ node on asyncio, with the original MicroPython library's API.

    ``NoMQ(config_file, log_level="INFO", timeout=5)`` opens the node's sockets at once (a
    config file in our JSON format or the original's obfuscated one, which means wire v1).
    ``log_level`` sets the C++ library's log (stderr). ``timeout`` (seconds) is how long
    ``await publish()`` waits for a QoS 1/2 delivery report, and for a first subscriber of a
    QoS 1/2 publish to the group. ``deferred_ack=True``: a received QoS 1/2 message is
    acknowledged only by :meth:`accept` (``msg.ack_token``); ``resume``: a
    :class:`SessionState` to continue (wire v2; docs/python.md).

    Create it where an event loop runs (or call its coroutines from one): the node is driven
    by that loop. ``close()`` (or ``async with``) ends it.
    """

    def __init__(self, config_file: str = "nomq_config.json", log_level: str = "INFO",
                 timeout: float = 5, *, deferred_ack: bool = False,
                 resume: Union[SessionState, Mapping[str, int], None] = None) -> None:
        _common.set_log_level(log_level)
        self._node = _common.load_node(str(config_file), deferred_ack, resume)
        self._discovery_end = _common.discovery_end(self._node, str(config_file))
        self._group = self._node.group  # fixed for the node's life
        _common.set_log_level(log_level)  # over the file's own log_level
        self.timeout = timeout
        self._inbox = self._node.listen()  # one C++ listener, fanned out to Python listeners
        self._listeners: "weakref.WeakSet[Listener]" = weakref.WeakSet()
        self._backlog: Deque[Message] = collections.deque()
        self._backlog_overflows = 0
        self._inflight: Dict[Any, "asyncio.Future[Delivery]"] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._fd = -1
        self._timer: Optional[asyncio.TimerHandle] = None
        self._closed = False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._attach()

    # ------------------------------------------------------------------ the original's API
    create_config = staticmethod(_common.create_config)

    def gen_signature(self, message: Union[str, bytes]) -> bytes:
        """The original's request signature of ``message`` (32 bytes) under the node's key:
        wire v1 computes what the original does (its keyed SHA-256), v2 HMAC-SHA256."""
        return bytes(self._live().gen_signature(message))

    def authenticate(self, signature: Union[bytes, str], message: Union[str, bytes],
                     addr: Any = None) -> bool:
        """True if ``signature`` (bytes, or hex) is gen_signature(message); compared in
        constant time. ``addr`` only names the requester in logs, as in the original."""
        ok = _common.authenticate(self._live(), signature, message)
        if not ok:
            log.warning("authentication failed%s", f" for {addr}" if addr is not None else "")
        return ok

    async def subscribe(self, channel: str, priority: int = 0, signature: Union[bytes, str, None] = None,
                        message: Union[str, bytes, None] = None, addr: Any = None) -> None:
        """Subscribes to ``channel`` (an exact name) and announces it. With ``signature`` and
        ``message``, the call is refused (AuthenticationError) unless the signature is
        gen_signature(message). Raises NoMQError: too_many_channels, channel_name_too_long,
        already_subscribed, closed."""
        node = self._live()
        self._attach()
        _common.check_signature(node, signature, message, addr, "subscribe")
        node.subscribe(channel, priority)
        self._schedule()

    async def unsubscribe(self, channel: str) -> None:
        """Leaves ``channel``. Raises NoMQError not_subscribed, closed."""
        node = self._live()
        self._attach()
        node.unsubscribe(channel)
        self._schedule()

    async def withdraw(self, channel: str) -> None:
        """Tells the group that this node does not subscribe to ``channel`` (one it does not
        follow): peers drop a subscription inherited from this address's previous session at
        once instead of waiting for it to lapse (``nomq sub -U``). Raises NoMQError:
        invalid_argument (also under wire v1, which announces nothing), already_subscribed
        (use unsubscribe), channel_name_too_long, too_many_channels, closed."""
        node = self._live()
        self._attach()
        node.withdraw(channel)
        self._schedule()

    async def publish(self, channel: str, message: Union[str, bytes], qos: int = 0,
                      retain: bool = False, ttl: Optional[int] = None, priority: int = 0,
                      ip: Optional[str] = None, port: Optional[int] = None,
                      signature: Union[bytes, str, None] = None,
                      auth_message: Union[str, bytes, None] = None, *,
                      timeout: Optional[float] = _DEFAULT,
                      message_id: Optional[int] = None) -> Delivery:
        """Publishes ``message`` (str or bytes) on ``channel`` and returns its delivery report.

        QoS 0 returns at once. QoS 1/2 wait until every recipient acknowledged or the library
        ended the publish otherwise (the report's ``reason`` says how), at most ``timeout`` s
        (default: the node's); past that, DeliveryTimeout (the message stays in flight, its
        report in ``e.publication``). A QoS 1/2 publish to the group with no subscriber known
        ends within ``timeout`` with reason ``no_subscribers``.

        ``ttl``: seconds (default: the config's default_ttl_s, 3600). ``priority``: 0..15.
        ``ip``/``port``: one node's address; None, the group's address or 255.255.255.255 (the
        original's "everyone") mean the group. ``signature``/``auth_message``: see
        subscribe(). ``message_id``: publish under this id (wire v2), e.g. a message published
        again after a restart under a resumed session. Raises NoMQError (message_too_large,
        too_many_pending: await a report and retry, queue_full, invalid_argument, closed...).
        """
        wait = self.timeout if timeout is _DEFAULT else timeout
        pub = self.publish_nowait(channel, message, qos, retain, ttl, priority, ip, port,
                                  signature, auth_message, wait_for_subscribers=wait,
                                  message_id=message_id)
        if pub.done():
            return pub.result()
        try:
            return await pub.report(_common.report_bound(wait, self._discovery_end))
        except DeliveryTimeout:
            # The engine's no-subscriber deadline started at the publish, before this wait:
            # it has passed now. One turn lets it end the publish with its proper report.
            self._turn()
            if pub.done():
                return pub.result()
            raise

    async def listen(self) -> Listener:
        """A new :class:`Listener`; poll it with ``listener.mssg()``."""
        self._live()
        self._attach()
        listener = Listener(self)
        if not self._listeners and self._backlog:
            listener._push(list(self._backlog))
            self._backlog.clear()
        self._listeners.add(listener)
        return listener

    def close(self, linger: float = 0) -> List[Delivery]:
        """Closes the node: announces the unsubscriptions, ends every publish still in flight
        (reason ``closed``) and returns the reports of those not fully acknowledged. Waiting
        listeners end. Idempotent. ``linger`` > 0 blocks the caller up to that long for
        pending publishes; in a coroutine use ``await aclose(linger)``."""
        if self._closed:
            return []
        self._closed = True
        self._detach()
        left = [Delivery.from_dict(d) for d in self._node.close(linger)]
        by_id = {d.message_id: d for d in left}
        for handle, fut in list(self._inflight.items()):
            if not fut.done():
                d = handle.wait_for(0)
                fut.set_result(Delivery.from_dict(d) if d is not None else
                               by_id.get(handle.message_id) or
                               Delivery(handle.message_id, "", 1, "closed", []))
        self._inflight.clear()
        for listener in list(self._listeners):
            listener._wake()
        return left

    # ------------------------------------------------------------------ Pythonic extras
    async def aclose(self, linger: float = 0) -> List[Delivery]:
        """close(), first waiting up to ``linger`` s (without blocking the loop) for the
        publishes in flight."""
        if linger > 0 and self._inflight and not self._closed:
            await asyncio.wait(list(self._inflight.values()), timeout=linger)
        return self.close()

    async def __aenter__(self) -> "NoMQ":
        self._attach()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def publish_nowait(self, channel: str, message: Union[str, bytes], qos: int = 0,
                       retain: bool = False, ttl: Optional[int] = None, priority: int = 0,
                       ip: Optional[str] = None, port: Optional[int] = None,
                       signature: Union[bytes, str, None] = None,
                       auth_message: Union[str, bytes, None] = None, *,
                       wait_for_subscribers: Optional[float] = None,
                       message_id: Optional[int] = None) -> Publication:
        """publish() without waiting: returns the :class:`Publication` at once (await it for
        the report). ``wait_for_subscribers``: for a QoS 1/2 publish to the group with no
        subscriber known yet, how long to wait for one (None: until the TTL expires)."""
        node = self._live()
        self._attach()
        _common.check_signature(node, signature, auth_message, None, "publish")
        dest_ip, dest_port = _common.resolve_destination(self._group, ip, port)
        handle = node.publish(channel, message, qos, retain, ttl, priority, dest_ip, dest_port,
                              wait_for_subscribers if qos else None, message_id or 0)
        if qos == 0:
            return Publication(handle.message_id, channel, 0, None, None)
        assert self._loop is not None
        fut: "asyncio.Future[Delivery]" = self._loop.create_future()
        d = handle.wait_for(0)
        if d is not None:
            fut.set_result(Delivery.from_dict(d))
        else:
            self._inflight[handle] = fut
            self._schedule()
        return Publication(handle.message_id, channel, qos, fut, handle)

    def messages(self) -> Listener:
        """``async for msg in node.messages():`` every message from now on (a new listener),
        until the node closes."""
        self._live()
        self._attach()
        listener = Listener(self)
        self._listeners.add(listener)
        return listener

    def _after_ack(self) -> None:
        if self._loop is not None:
            self._schedule()

    # ------------------------------------------------------------------ the driver
    def _attach(self) -> None:
        """Lets the running loop drive the node (from the first call made in it). A node used
        from a second loop (a later asyncio.run()) moves to it."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None:
            self._detach()
        self._loop = loop
        self._fd = self._node.fd()
        loop.add_reader(self._fd, self._turn)
        self._turn()

    def _detach(self) -> None:
        if self._loop is not None and self._fd >= 0:
            try:
                self._loop.remove_reader(self._fd)
            except (RuntimeError, ValueError):  # the loop is closed already
                pass
        self._fd = -1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _turn(self) -> None:
        if self._closed:
            return
        try:
            self._node.run_once(0)
        except ClosedError:
            return
        except NoMQError as e:  # epoll_wait failed: logged by the library; keep the loop alive
            log.error("run_once: %s", e)
        msgs = self._inbox.drain(LISTENER_CAPACITY)
        if msgs:
            self._deliver(msgs)
        if self._inflight:
            for handle in [h for h in self._inflight if h.ready()]:
                fut = self._inflight.pop(handle)
                d = handle.wait_for(0)
                if not fut.done() and d is not None:
                    fut.set_result(Delivery.from_dict(d))
        self._schedule()

    def _deliver(self, msgs: List[Message]) -> None:
        listeners = list(self._listeners)
        if listeners:
            for listener in listeners:
                listener._push(msgs)
            return
        # Nobody listens yet: kept for the first listener, as the original's socket kept them.
        self._backlog.extend(msgs)
        excess = len(self._backlog) - LISTENER_CAPACITY
        if excess > 0:
            for _ in range(excess):
                self._backlog.popleft()
            self._backlog_overflows += excess
            log.warning("no listener: dropped the %d oldest of the messages kept for the first "
                        "listener (%d so far)", excess, self._backlog_overflows)

    def _schedule(self) -> None:
        """Arms the loop's timer for the engine's next deadline (kept if it fires earlier: an
        early turn is harmless, it re-arms)."""
        loop = self._loop
        if loop is None or self._closed:
            return
        t = self._node.next_timeout()
        if t is None:
            return
        when = loop.time() + t
        timer = self._timer
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._turn()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self.close()
        except Exception:  # interpreter shutdown
            pass
