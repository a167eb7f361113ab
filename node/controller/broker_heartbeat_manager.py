"""BrokerHeartbeatManager: broker sessions on the active controller (Kafka's name).

Every broker keeps one long-lived ``BrokerHeartbeat`` stream to the active
controller. Failure detection has three speeds:

- the stream breaks because the broker's process died (its connection closed):
  the broker is fenced at once;
- the broker's address refuses connections (the process is gone, seen by the Raft
  transport): fenced at once too;
- silence (a partition, a paused process): fenced after
  ``broker_session_timeout_ms``.

Heartbeat times are soft state: a controller that just became leader grants every
broker a fresh session. Fencing a live broker by mistake costs a leadership move,
never data: it registers again or heartbeats and is unfenced once caught up.

The session bookkeeping (last heartbeat, open streams) is soft state here; every
decision (fence, unfence) is a ``QuorumController`` write of the
ClusterControlManager's pure operation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from raftlog.node.config import NodeConfig
from raftlog.node.controller.cluster_control import SessionChange
from raftlog.node.controller.quorum_controller import QuorumController
from raftlog.node.logging import get_logger
from raftlog.node.controller.errors import controller_error
from raftlog.node.metadata.raft_driver import MetadataRaftDriver
from raftlog.node.quorum.transport import Transport
from raftlog.errors import KafkaError
from raftlog.v1 import controller_pb2


class BrokerHeartbeatManager:
    """Tracks broker sessions and fences or unfences brokers through the controller."""

    def __init__(
        self,
        config: NodeConfig,
        driver: MetadataRaftDriver,
        controller: QuorumController,
        transport: Transport | None,
    ) -> None:
        self.config = config
        self.driver = driver
        self.controller = controller
        self.transport = transport
        self.session_timeout_s = config.broker_session_timeout_ms / 1000
        self._last_seen: dict[int, float] = {}
        self._streams: dict[int, int] = {}  # broker -> generation of its newest stream
        self._generation = 0
        self._leader_term = 0
        self._stopping = False
        self._busy: set[int] = set()  # brokers with a fence/unfence decision in flight
        self._task: asyncio.Task[None] | None = None
        self.logger = get_logger("sessions", config.node_id)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._watch(), name=f"broker-sessions-{self.config.node_id}"
        )

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # ------------------------------------------------------------------ stream
    async def heartbeat_stream(
        self, requests: AsyncIterator[controller_pb2.BrokerHeartbeatRequest], context: Any
    ) -> AsyncIterator[controller_pb2.BrokerHeartbeatResponse]:
        """Serve one broker's stream; the servicer yields what this yields."""
        if not self.driver.is_leader:
            raise controller_error(self.driver.not_leader("this node is not the active controller"))
        self._generation += 1
        generation = self._generation
        broker_id = 0
        broker_epoch = 0
        try:
            async for request in requests:
                if not self.driver.is_leader:
                    raise controller_error(self.driver.not_leader("this node is not the active controller"))
                broker_id, broker_epoch = request.broker_id, request.broker_epoch
                self._streams[broker_id] = generation
                yield self._beat(request)
        finally:
            if broker_id and not self._stopping:
                # The handler may be unwinding from a cancellation: decide in a task.
                asyncio.get_running_loop().create_task(
                    self._stream_closed(broker_id, broker_epoch, generation)
                )

    def _beat(self, request: controller_pb2.BrokerHeartbeatRequest) -> controller_pb2.BrokerHeartbeatResponse:
        decision = self.controller.cluster.heartbeat(self.driver.image, request)
        if not decision.response.HasField("error"):
            self._last_seen[request.broker_id] = time.monotonic()
        if decision.change is not SessionChange.NONE:
            self._spawn(request.broker_id, request.broker_epoch,
                        fence=decision.change is SessionChange.FENCE, reason=decision.reason)
        return decision.response

    async def _stream_closed(self, broker_id: int, broker_epoch: int, generation: int) -> None:
        if self._streams.get(broker_id) != generation:
            return  # a newer stream from this broker is open
        self._streams.pop(broker_id, None)
        if self._stopping or not self.driver.is_leader or broker_id == self.config.node_id:
            return
        self.logger.info("broker heartbeat stream closed; fencing it", broker_id=broker_id)
        self._spawn(broker_id, broker_epoch, fence=True, reason="heartbeat stream closed")

    # ------------------------------------------------------------------ decisions
    def _spawn(self, broker_id: int, broker_epoch: int, *, fence: bool, reason: str) -> None:
        if broker_id in self._busy:
            return
        self._busy.add(broker_id)
        asyncio.get_running_loop().create_task(self._change(broker_id, broker_epoch, fence, reason))

    async def _change(self, broker_id: int, broker_epoch: int, fence: bool, reason: str) -> None:
        timeout = self.config.request_timeout_ms / 1000
        try:
            # Only the incarnation this decision was about: it may have re-registered.
            if fence:
                changed = await self.controller.fence_broker(broker_id, broker_epoch, timeout)
            else:
                changed = await self.controller.unfence_broker(broker_id, broker_epoch, timeout)
            if changed:
                self.logger.info("broker fenced" if fence else "broker unfenced", broker_id=broker_id,
                                 broker_epoch=broker_epoch, reason=reason)
        except KafkaError as exc:
            self.logger.info("broker session change not committed", broker_id=broker_id, fence=fence,
                             error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the session watcher must go on
            self.logger.error("broker session change failed", broker_id=broker_id, error=repr(exc))
        finally:
            self._busy.discard(broker_id)

    async def _watch(self) -> None:
        # Short: a dead broker found by a refused connection is fenced within this.
        interval = min(0.05, self.session_timeout_s / 4)
        while not self._stopping:
            await asyncio.sleep(interval)
            if not self.driver.decisions_ready:
                continue
            now = time.monotonic()
            if self._leader_term != self.driver.term:
                # A new active controller: every broker gets a fresh session (but a
                # broker whose port refuses connections is still fenced at once below).
                self._leader_term = self.driver.term
                self._last_seen = {b: now for b in self.driver.image.brokers}
                self._streams.clear()
            for broker in self.driver.image.brokers.values():
                if broker.fenced or broker.broker_id == self.config.node_id:
                    continue
                seen = self._last_seen.setdefault(broker.broker_id, now)
                refused = None if self.transport is None else self.transport.refused_since.get(broker.broker_id)
                if refused is not None and broker.broker_id not in self._streams:
                    self._spawn(broker.broker_id, broker.broker_epoch, fence=True, reason="connection refused")
                elif now - seen > self.session_timeout_s:
                    self._spawn(broker.broker_id, broker.broker_epoch, fence=True, reason="session expired")

