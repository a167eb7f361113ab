"""Outbound Raft messages: one sender task, one queue and one channel per peer.

``send()`` never blocks and never fails: it appends to the peer's queue. Each
peer's sender task sends whatever is queued as one ``Quorum.Step`` RPC; while that
RPC is in flight later messages queue up and leave together in the next one, so
batching follows load and order is kept per peer. A failed RPC drops its batch
(Raft retransmits), tells the core the peer is unreachable, backs off briefly and
logs at a rate-limited level; a peer that is down at start is retried forever.
A queue that overflows drops its oldest messages and tells the core the same way
(unreachable, and a failed snapshot if one was among them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

import grpc
import grpc.aio

from raftlog.node.quorum.codec import step_request
from raftlog.node.config import Voter
from raftlog.node.logging import get_logger
from raftlog.raft.types import Message, MessageType
from raftlog.status import from_rpc_error
from raftlog.v1 import raft_pb2, raft_pb2_grpc

MAX_MESSAGE_BYTES = 64 << 20

#: Options of every node-to-node channel: reconnect quickly after a peer restarts
#: (gRPC's default backoff grows to 2 minutes), allow large snapshots.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
)

#: (peer id, request, timeout seconds) -> completes or raises. Tests swap in a fake.
StepCall = Callable[[int, raft_pb2.StepRequest, float], Awaitable[object]]


class TransportFeedback(Protocol):
    """What the transport tells the Raft driver about deliveries."""

    def report_unreachable(self, peer: int) -> None: ...

    def report_snapshot(self, peer: int, ok: bool) -> None: ...


class PeerChannels:
    """One long-lived ``grpc.aio`` channel per peer, created on first use and shared
    by the Raft transport and by request forwarding to the leader."""

    def __init__(self, voters: Sequence[Voter], self_id: int) -> None:
        self._addresses = {v.node_id: v.address for v in voters if v.node_id != self_id}
        self._channels: dict[int, grpc.aio.Channel] = {}

    def address(self, peer: int) -> str:
        return self._addresses[peer]

    def channel(self, peer: int) -> grpc.aio.Channel:
        channel = self._channels.get(peer)
        if channel is None:
            channel = grpc.aio.insecure_channel(self._addresses[peer], options=CHANNEL_OPTIONS)
            self._channels[peer] = channel
        return channel

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(grace=None)


class _Peer:
    """The queue and the sender task of one peer."""

    def __init__(self, transport: Transport, peer: int) -> None:
        self.transport = transport
        self.peer = peer
        self.queue: list[Message] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.failures = 0
        self.last_warning = 0.0
        self.sent_batches = 0
        self.dropped_messages = 0

    def enqueue(self, messages: Iterable[Message]) -> None:
        self.queue.extend(messages)
        limit = self.transport.max_queued
        if len(self.queue) > limit:
            # The peer is not keeping up (or is down): keep the newest half. Raft
            # retransmits whatever matters, so dropping is safe, provided the core
            # hears of it: a leader waits for news of a snapshot it sent, and
            # would otherwise leave the follower in snapshot state until the next
            # election.
            drop = len(self.queue) - limit // 2
            dropped = self.queue[:drop]
            self.dropped_messages += drop
            del self.queue[:drop]
            self.transport.report_failed(self.peer, dropped)
        self.wake.set()

    async def run(self) -> None:
        t = self.transport
        while not t.closed:
            await self.wake.wait()
            self.wake.clear()
            if not self.queue:
                continue
            batch, self.queue = self.queue, []
            try:
                # Inside the try: a message that cannot be encoded is one failed
                # delivery, never the end of this peer's sender loop.
                request = step_request(t.cluster_id, t.node_id, batch)
                await t.step_call(self.peer, request, t.rpc_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "not delivered"
                if t.closed:
                    return
                self._failed(batch, exc)
                await asyncio.sleep(t.backoff_s(self.failures))
                if self.queue:
                    self.wake.set()
                continue
            self.sent_batches += 1
            t.refused_since.pop(self.peer, None)
            if self.failures:
                t.logger.info("peer reachable again", peer=self.peer, failed_attempts=self.failures)
                self.failures = 0
            t.report_delivered(self.peer, batch)

    def _failed(self, batch: list[Message], exc: Exception) -> None:
        t = self.transport
        self.failures += 1
        t.report_failed(self.peer, batch)
        now = time.monotonic()
        if isinstance(exc, grpc.RpcError):
            info = from_rpc_error(exc)
            reason = f"{info.code.name}: {info.message}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        if "Connection refused" in reason:
            # Nothing listens at the peer's address: its process is gone (a network
            # partition times out instead). The controller fences such a broker at once.
            t.refused_since.setdefault(self.peer, now)
        else:
            t.refused_since.pop(self.peer, None)
        if self.failures == 1 or now - self.last_warning >= t.warn_every_s:
            self.last_warning = now
            t.logger.warning(
                "peer unreachable" if self.failures == 1 else "peer still unreachable",
                peer=self.peer,
                address=t.describe_peer(self.peer),
                failed_attempts=self.failures,
                dropped_messages=len(batch),
                error=reason,
            )
        else:
            t.logger.debug("send to peer failed", peer=self.peer, error=reason)


class Transport:
    """Outbound Raft messages to every peer; see the module docstring."""

    def __init__(
        self,
        node_id: int,
        cluster_id: str,
        peers: Sequence[int],
        *,
        channels: PeerChannels | None = None,
        step_call: StepCall | None = None,
        rpc_timeout_s: float = 2.0,
        backoff_min_s: float = 0.05,
        backoff_max_s: float = 0.5,
        max_queued: int = 10_000,
        warn_every_s: float = 30.0,
    ) -> None:
        if step_call is None and channels is None:
            raise ValueError("Transport needs channels or a step_call")
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.channels = channels
        self.rpc_timeout_s = rpc_timeout_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.max_queued = max_queued
        self.warn_every_s = warn_every_s
        self.feedback: TransportFeedback | None = None
        self.logger = get_logger("transport", node_id)
        self.step_call: StepCall = step_call if step_call is not None else self._grpc_step
        self._stubs: dict[int, raft_pb2_grpc.QuorumStub] = {}
        self._peers = {p: _Peer(self, p) for p in peers if p != node_id}
        #: peer -> time.monotonic() since when its address refuses connections.
        self.refused_since: dict[int, float] = {}
        self.closed = False

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        for peer in self._peers.values():
            if peer.task is None:
                peer.task = asyncio.get_running_loop().create_task(
                    peer.run(), name=f"raft-send-{self.node_id}->{peer.peer}"
                )

    async def close(self) -> None:
        """Stop the sender tasks (queued messages are dropped). Channels belong to
        ``PeerChannels`` and are closed by its owner."""
        self.closed = True
        tasks = [p.task for p in self._peers.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    # -- sending ---------------------------------------------------------------
    def send(self, messages: Sequence[Message]) -> None:
        """Queue messages for their recipients; never blocks, never raises."""
        if self.closed or not messages:
            return
        by_peer: dict[int, list[Message]] = {}
        for msg in messages:
            by_peer.setdefault(msg.to, []).append(msg)
        for to, batch in by_peer.items():
            peer = self._peers.get(to)
            if peer is None:
                self.logger.error("message for an unknown peer dropped", to=to, type=batch[0].type.name)
                continue
            peer.enqueue(batch)

    def queued(self, peer: int) -> int:
        return len(self._peers[peer].queue)

    # -- internals -------------------------------------------------------------
    def backoff_s(self, failures: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_min_s * (2 ** max(0, failures - 1))))

    def describe_peer(self, peer: int) -> str:
        return self.channels.address(peer) if self.channels is not None else str(peer)

    def report_failed(self, peer: int, batch: Sequence[Message]) -> None:
        """Messages to ``peer`` were lost (failed RPC or queue overflow): optimistic
        APPENDs are gone, so the leader probes again, and a lost snapshot is
        resent instead of awaited."""
        if self.feedback is None:
            return
        self.feedback.report_unreachable(peer)
        if any(m.type == MessageType.SNAPSHOT for m in batch):
            self.feedback.report_snapshot(peer, False)

    def report_delivered(self, peer: int, batch: Sequence[Message]) -> None:
        if self.feedback is not None and any(m.type == MessageType.SNAPSHOT for m in batch):
            self.feedback.report_snapshot(peer, True)

    async def _grpc_step(self, peer: int, request: raft_pb2.StepRequest, timeout: float) -> object:
        stub = self._stubs.get(peer)
        if stub is None:
            assert self.channels is not None
            stub = raft_pb2_grpc.QuorumStub(self.channels.channel(peer))
            self._stubs[peer] = stub
        return await stub.Step(request, timeout=timeout)
