"""Send a controller request to where it must be answered: here, or the leader.

The active controller (the Raft leader) answers controller requests; any other
node forwards them once, over its long-lived peer channel, and relays the
leader's answer or error unchanged. A forwarded request is marked so that a node
that is no longer the leader answers NOT_CONTROLLER instead of forwarding again.

This is the only place that forwards: servicer methods answered by the active
controller are written as ``(self, request, timeout_s) -> response`` and decorated
with ``@on_active_controller``; in-process callers use ``call_active_controller``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import grpc
import grpc.aio

from raftlog.node.controller.errors import controller_error
from raftlog.node.quorum.driver import RaftDriver
from raftlog.node.quorum.transport import PeerChannels
from raftlog.errors import ErrorCode, KafkaError
from raftlog.status import kafka_error_from_rpc

T = TypeVar("T")

FORWARDED_KEY = "x-raftlog-forwarded-by"

#: (peer channel, timeout seconds, call metadata) -> the leader's answer.
RemoteCall = Callable[[grpc.aio.Channel, float, Sequence[tuple[str, str]]], Awaitable[T]]


def forwarded_by(context: Any) -> int:
    """The node that forwarded this call to us, or 0 for a call from a client."""
    if context is None:
        return 0
    for key, value in context.invocation_metadata() or ():
        if key == FORWARDED_KEY:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def time_remaining(context: Any, default_s: float) -> float:
    """The smaller of ``default_s`` and the caller's remaining deadline."""
    if context is None:
        return default_s
    remaining = context.time_remaining()
    if remaining is None:
        return default_s
    return max(0.0, min(default_s, float(remaining)))


class LeaderRouter:
    """Runs a request on the leader: locally when this node leads, else forwarded."""

    def __init__(self, driver: RaftDriver[Any], channels: PeerChannels | None) -> None:
        self.driver = driver
        self.channels = channels

    @property
    def leader_wait_s(self) -> float:
        """How long to wait for an election before answering "no leader"."""
        cfg = self.driver.config
        return 2 * cfg.election_tick * cfg.tick_ms / 1000

    async def route(
        self,
        context: Any,
        timeout_s: float,
        local: Callable[[float], Awaitable[T]],
        remote: RemoteCall[T],
    ) -> T:
        """``local(timeout)`` on the leader, or ``remote`` forwarded to it. Raises
        KafkaError (NOT_CONTROLLER with the leader when known, or the leader's error)."""
        deadline = time.monotonic() + timeout_s
        origin = forwarded_by(context)
        for _attempt in range(5):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            leader = await self.driver.wait_for_leader(min(remaining, self.leader_wait_s))
            if leader == 0:
                raise KafkaError(ErrorCode.NOT_CONTROLLER, "no active controller is elected yet")
            if leader == self.driver.node_id:
                try:
                    return await local(deadline - time.monotonic())
                except KafkaError as exc:
                    # Leadership moved between the check and the call: try the new one.
                    if exc.code == ErrorCode.NOT_CONTROLLER and self.driver.leader_id not in (
                        0,
                        self.driver.node_id,
                    ):
                        continue
                    raise
            if origin or self.channels is None:
                # Forward at most once: the node that sent us this thought we lead.
                raise controller_error(self.driver.not_leader("this node is not the active controller"))
            metadata = ((FORWARDED_KEY, str(self.driver.node_id)),)
            try:
                return await remote(
                    self.channels.channel(leader), max(0.001, deadline - time.monotonic()), metadata
                )
            except grpc.aio.AioRpcError as err:
                error = kafka_error_from_rpc(err)
                if error.code == ErrorCode.NOT_CONTROLLER and self.driver.leader_id != leader:
                    continue  # we learned of a newer leader meanwhile
                if err.code() == grpc.StatusCode.UNAVAILABLE:
                    # The leader we know is unreachable (most likely dead, so the call did
                    # not run there; at worst a retried create answers TOPIC_ALREADY_EXISTS):
                    # wait for the election that follows and try the new leader.
                    await self.driver.wait_until(
                        lambda: self.driver.leader_id != leader,
                        max(0.0, min(deadline - time.monotonic(), self.leader_wait_s)),
                    )
                    continue
                raise error from None
        raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, f"no answer within {timeout_s * 1000:.0f} ms")


def forward_to(stub_class: Callable[[grpc.aio.Channel], Any], method: str, request: Any) -> RemoteCall[Any]:
    """A RemoteCall that sends ``request`` to the leader's ``stub_class.method``."""

    async def remote(channel: grpc.aio.Channel, timeout: float, metadata: Sequence[tuple[str, str]]) -> Any:
        return await getattr(stub_class(channel), method)(request, timeout=timeout, metadata=metadata)

    return remote


Req = TypeVar("Req")
Resp = TypeVar("Resp")


class ForwardingServicer(Protocol):
    """What ``@on_active_controller`` needs from a servicer."""

    router: LeaderRouter
    stub_class: ClassVar[Any]  # the generated stub class, e.g. ControllerStub

    @property
    def default_timeout_s(self) -> float: ...


S = TypeVar("S", bound=ForwardingServicer)

#: A servicer method answered on the active controller: (self, request, timeout) -> response.
LocalMethod = Callable[[S, Req, float], Awaitable[Resp]]


def on_active_controller(method: LocalMethod[S, Req, Resp]) -> Callable[[S, Req, Any], Awaitable[Resp]]:
    """Turn ``method(self, request, timeout_s)``, which answers on the active
    controller, into the gRPC method ``(self, request, context)``: run here when this
    node leads, else forwarded to the leader's method of the same name (or the
    method's ``rpc_name`` attribute, for a helper behind a public method). The local
    method stays reachable as ``.local`` for ``call_active_controller``."""

    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: Any) -> Resp:
        timeout = time_remaining(context, self.default_timeout_s)
        return await _route(self, method, request, context, timeout)

    wrapper.local = method  # type: ignore[attr-defined]
    return wrapper


async def _route(service: S, method: LocalMethod[S, Req, Resp], request: Req, context: Any, timeout_s: float) -> Resp:
    async def local(timeout: float) -> Resp:
        return await method(service, request, timeout)

    name = getattr(method, "rpc_name", method.__name__)
    result: Resp = await service.router.route(
        context, timeout_s, local, forward_to(service.stub_class, name, request)
    )
    return result


async def call_active_controller(service: S, name: str, request: Req, timeout_s: float) -> Any:
    """Call the servicer's ``@on_active_controller`` method ``name`` from inside this
    node (no gRPC context): answered here or forwarded, exactly as a client's call."""
    method = getattr(type(service), name).local
    return await _route(service, method, request, None, timeout_s)
