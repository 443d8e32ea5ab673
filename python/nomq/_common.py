"""What the asyncio and the synchronous NoMQ classes share: reports, destinations, signatures,
config files."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from . import _nomq
from ._errors import AuthenticationError, NoMQError, closed_error

log = logging.getLogger("nomq")

#: The original's way of addressing every node (its default destination and the address its
#: README's examples use): sent to this node's group instead (docs/python.md).
LIMITED_BROADCAST = "255.255.255.255"

Address = Tuple[Optional[str], int]


@dataclass(frozen=True)
class Recipient:
    """One node a QoS 1/2 message was for, and how far it got."""

    address: Address
    session_id: int
    #: ``acknowledged`` (QoS 1 ACK / QoS 2 PUBCOMP), ``received`` (QoS 2 PUBREC only),
    #: ``unconfirmed`` (a v1 device dropped a repeated nonce), ``failed`` or ``pending``.
    state: str
    transmissions: int


@dataclass(frozen=True)
class Delivery:
    """The delivery report of one publish (the C++ ``nomq::Delivery``).

    ``reason`` is ``"ok"`` when every recipient acknowledged (always for QoS 0, which is not
    acknowledged), otherwise ``"expired"`` (TTL), ``"timed_out"`` (retry limit),
    ``"no_subscribers"`` (nobody subscribed within the wait) or ``"closed"``.
    """

    message_id: int
    channel: str
    qos: int
    reason: str
    recipients: List[Recipient] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every recipient acknowledged (QoS 0: always)."""
        return self.reason == "ok"

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Delivery":
        return Delivery(d["message_id"], d["channel"], d["qos"], d["reason"],
                        [Recipient(tuple(r["address"]), r["session_id"], r["state"],  # type: ignore[arg-type]
                                   r["transmissions"]) for r in d["recipients"]])


@dataclass(frozen=True)
class SessionState:
    """A node's session, to continue after a restart (wire v2; docs/python.md, "Deferred
    acknowledgement and session resume"): ``NoMQ(..., resume=state)``.

    Keep it durable with ``next_sequence`` reserved ahead of what the node may still send (the
    sequence numbers must be above any the session used, or receivers drop its datagrams as
    replays): e.g. store ``next_sequence + 2**20`` and resume from that. A publish made again
    under the continued session with ``message_id=`` the same id is recognised by subscribers
    that still hold its record (QoS 2 exactly once across the restart)."""

    session_id: int
    next_sequence: int
    next_message_id: int = 0

    @staticmethod
    def of(value: Union["SessionState", Mapping[str, int], Tuple[int, ...]]) -> "SessionState":
        if isinstance(value, SessionState):
            return value
        if isinstance(value, Mapping):
            return SessionState(int(value["session_id"]), int(value["next_sequence"]),
                                int(value.get("next_message_id", 0)))
        return SessionState(*(int(v) for v in value))

    def as_tuple(self) -> Tuple[int, int, int]:
        for name in ("session_id", "next_sequence", "next_message_id"):
            v = getattr(self, name)
            if not 0 <= v <= 0xFFFFFFFF:
                raise NoMQError(f"resume: {name} must be 0..4294967295, got {v}",
                                "invalid_argument", "api")
        return (self.session_id, self.next_sequence, self.next_message_id)


AckTarget = Union[int, "_nomq.Message"]


def ack_token(target: AckTarget) -> int:
    """The token of a received message (or the token itself), for accept/refuse."""
    token = target if isinstance(target, int) else target.ack_token
    if token == 0:
        raise NoMQError("this message has no acknowledgement to give: the node was not opened "
                        "with deferred_ack=True, or the message is QoS 0", "invalid_argument", "api")
    return token


def load_node(config_file: str, deferred_ack: bool,
              resume: Union[SessionState, Mapping[str, int], Tuple[int, ...], None]) -> "_nomq.Node":
    return _nomq.Node.load(str(config_file), bool(deferred_ack),
                           None if resume is None else SessionState.of(resume).as_tuple())


def qos0_delivery(message_id: int, channel: str) -> Delivery:
    return Delivery(message_id, channel, 0, "ok", [])


def resolve_destination(group: Address, ip: Optional[str],
                        port: Optional[int]) -> Tuple[Optional[str], Optional[int]]:
    """(ip, port) for _nomq.Node.publish: None for the group, else a unicast destination.

    No ip, the limited broadcast 255.255.255.255 (the original's default) or the group's own
    address mean "every subscriber": the node's group from its config. Anything else is one
    node, at ``port`` (default: the group port)."""
    if ip is None or ip == LIMITED_BROADCAST:
        if ip is not None:
            log.debug("publish to %s:%s goes to the configured group %s", ip, port, group)
        return None, None
    group_host, group_port = group
    if ip == group_host and (port is None or port == group_port):
        return None, None
    return ip, port if port is not None else group_port


def check_signature(node: "_nomq.Node", signature: Union[bytes, str, None],
                    message: Union[bytes, str, None], addr: Any, call: str) -> None:
    """The original's request authentication: when a signature and its message are given, the
    call goes ahead only if the signature is gen_signature(message)."""
    if signature is None and message is None:
        return
    if signature is None or message is None:
        raise NoMQError(f"{call}: a signature and its message go together "
                        f"(got only the {'message' if signature is None else 'signature'})",
                        "invalid_argument", "api")
    if not authenticate(node, signature, message):
        who = f" from {addr}" if addr is not None else ""
        raise AuthenticationError(f"{call}: the signature{who} does not match its message",
                                  "authentication_failed", "python")


def authenticate(node: "_nomq.Node", signature: Union[bytes, str], message: Union[bytes, str]) -> bool:
    if isinstance(signature, str):
        try:
            signature = bytes.fromhex(signature)
        except ValueError:
            return False
    return bool(node.authenticate(signature, message))


def create_config(config: Mapping[str, Any], output_file: str) -> str:
    """Writes a config file (the original's ``create_config``), mode 0600, replacing an
    existing file. A dict holding only the original's keys (``ip``, ``port``, ``use_ipv6``,
    ``encryption_key``, ``hmac_key``) is written in the original's obfuscated format, which
    MicroPython devices read (and which means wire v1); a dict with any of ours (``wire``,
    ``group``, ...) in our JSON format. Returns ``"legacy"`` or ``"json"``.

    Raises ConfigError naming the key, e.g. ``config: hmac_key: must be 64 hex digits``."""
    return str(_nomq.create_config(dict(config), str(output_file), True))


def generate_config(**overrides: Any) -> Dict[str, Any]:
    """A config dict with fresh random keys (our JSON keys), updated with ``overrides``."""
    c: Dict[str, Any] = dict(_nomq.generate_config())
    c.update(overrides)
    return c


def set_log_level(level: str) -> None:
    """The C++ library's log level (to stderr): DEBUG, INFO, WARNING, ERROR or OFF (any case)."""
    text = str(level)
    if text.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "OFF"):
        raise NoMQError(f"log_level must be DEBUG, INFO, WARNING, ERROR or OFF, got {text!r}",
                        "invalid_argument", "api")
    _nomq.set_log_level(text.lower())


def discovery_end(node: "_nomq.Node", config_file: str) -> float:
    """time.monotonic() at which the node's start-up discovery ends (v2): a QoS 1/2 group
    publish made before then is not reported earlier (docs/engine.md section 3)."""
    if node.wire != "v2":
        return 0.0
    config, _fmt, _warning = _nomq.read_config(config_file)
    return time.monotonic() + int(config.get("discovery_period_ms", 0)) / 1000.0


def report_bound(wait: Optional[float], discovery_end_at: float) -> Optional[float]:
    """How long publish() waits for a report: ``wait``, but at least until the start-up
    discovery has ended (the library holds reports until then)."""
    if wait is None:
        return None
    return max(wait, discovery_end_at - time.monotonic())


class NodeView:
    """What the asyncio and the synchronous NoMQ classes both read from their node: the
    closed flag, addresses, wire version and counters. Subclasses set _node and _closed."""

    _node: _nomq.Node
    _closed: bool

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def local_address(self) -> Address:
        """(host, port) of the node's own (unicast) socket."""
        return self._live().local_address

    @property
    def group(self) -> Address:
        """(host, port) of the node's group (broadcast or multicast) from its config."""
        return self._live().group

    @property
    def wire(self) -> str:
        """``"v1"`` or ``"v2"``."""
        return self._live().wire

    def stats(self) -> Dict[str, Any]:
        """The node's counters (datagrams, messages, retransmissions, drops by reason...)."""
        return self._live().stats()

    @property
    def session_id(self) -> int:
        return int(self._live().session_id)

    def session_state(self) -> SessionState:
        """This node's session, to continue after a restart (``resume=``); see
        :class:`SessionState`. Meaningful on wire v2 only (v1 cannot resume)."""
        return SessionState(*self._live().session_state())

    def accept(self, message: AckTarget) -> None:
        """Deferred acknowledgement (a node opened with ``deferred_ack=True``): sends the ACK
        (QoS 1) or PUBREC (QoS 2) of ``message`` (a received Message, or its ``ack_token``)
        now. Call it once the message is safe (stored, handled). Never waits. Raises
        NoMQError: invalid_argument (no token: QoS 0, or a node without deferred_ack),
        expired (already answered, or lapsed after 30 s unanswered), closed."""
        self._live().accept(ack_token(message))
        self._after_ack()

    def refuse(self, message: AckTarget) -> None:
        """Deferred acknowledgement: answers nothing, so the publisher retransmits (each
        retransmission arrives again with a new token) and, if no retransmission is ever
        accepted, reports this node as failed. Raises as :meth:`accept`."""
        self._live().refuse(ack_token(message))
        self._after_ack()

    def _after_ack(self) -> None:
        """The asyncio class re-arms its timer here."""

    def _live(self) -> _nomq.Node:
        if self._closed:
            raise closed_error()
        return self._node
