"""The broker's side of its session: one long-lived heartbeat stream to the active
controller, re-opened whenever the controller changes, and controlled shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio

from raftlog.node.controller.broker_registration import BrokerRegistrationManager as ActiveController
from raftlog.node.config import NodeConfig
from raftlog.node.logging import get_logger
from raftlog.node.metadata.raft_driver import MetadataRaftDriver as RaftDriver
from raftlog.node.quorum.transport import CHANNEL_OPTIONS
from raftlog.errors import ErrorCode
from raftlog.v1 import controller_pb2, controller_pb2_grpc


class BrokerHeartbeater:
    def __init__(self, config: NodeConfig, driver: RaftDriver, controller: ActiveController) -> None:
        self.config = config
        self.driver = driver
        self.controller = controller
        self.interval_s = config.broker_heartbeat_interval_ms / 1000
        self.fenced = True
        self._want_shutdown = False
        self._shutdown_done = asyncio.Event()
        self._stopping = False
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_response = 0.0
        self.logger = get_logger("heartbeat", config.node_id)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"heartbeat-{self.config.node_id}")

    async def controlled_shutdown(self, timeout_s: float) -> bool:
        """Ask the controller to move this broker's leaderships away; True once it
        says no leadership is left (bounded by ``timeout_s``)."""
        if self._task is None or self.controller.broker_epoch is None:
            return False
        self._want_shutdown = True
        try:
            await asyncio.wait_for(self._shutdown_done.wait(), timeout_s)
        except TimeoutError:
            self.logger.warning("controlled shutdown not confirmed in time", waited_ms=int(timeout_s * 1000))
            return False
        return True

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for channel in self._channels.values():
            await channel.close(grace=None)
        self._channels.clear()

    def _channel(self, leader: int) -> grpc.aio.Channel:
        address = next(v.address for v in self.config.voters if v.node_id == leader)
        if leader == self.config.node_id:
            address = f"{self.config.listen_host}:{self.config.listen_port}"
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            self._channels[address] = channel
        return channel

    async def _run(self) -> None:
        await self.controller.registered.wait()
        failures = 0
        while not self._stopping:
            leader = await self.driver.wait_for_leader(1.0)
            if leader == 0:
                continue
            try:
                await self._stream(leader)
                failures = 0
            except asyncio.CancelledError:
                raise
            except grpc.RpcError as exc:
                failures += 1
                level = "debug" if failures < 5 else "info"
                getattr(self.logger, level)("heartbeat stream ended", leader=leader, error=str(exc.code()))
            except Exception as exc:  # noqa: BLE001 - never let the session die silently
                failures += 1
                self.logger.warning("heartbeat stream failed", leader=leader, error=repr(exc))
            await asyncio.sleep(min(self.interval_s, 0.05 * failures))

    async def _requests(self, leader: int) -> AsyncIterator[controller_pb2.BrokerHeartbeatRequest]:
        while not self._stopping and self.driver.leader_id == leader:
            epoch = self.controller.broker_epoch
            if epoch is None:
                return
            yield controller_pb2.BrokerHeartbeatRequest(
                broker_id=self.config.node_id,
                broker_epoch=epoch,
                current_metadata_offset=self.driver.image.offset,
                want_shutdown=self._want_shutdown,
            )
            # Leave early when the controller changes, so the stream moves with it.
            await self.driver.wait_until(lambda: self.driver.leader_id != leader, self.interval_s)

    async def _stream(self, leader: int) -> None:
        stub = controller_pb2_grpc.ControllerStub(self._channel(leader))
        call = stub.BrokerHeartbeat(self._requests(leader))
        reader = asyncio.ensure_future(self._read(call, leader))
        # A controller cut off the network never answers and never closes the stream:
        # leave as soon as the quorum has another leader, and after a silent session
        # timeout, instead of waiting on it (which kept this broker fenced).
        moved = asyncio.ensure_future(self._until_unresponsive(leader))
        try:
            await asyncio.wait({reader, moved}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done():
                reader.result()  # re-raise what ended the stream
        finally:
            call.cancel()
            for task in (reader, moved):
                task.cancel()
            await asyncio.gather(reader, moved, return_exceptions=True)

    async def _until_unresponsive(self, leader: int) -> None:
        silence_limit = self.config.broker_session_timeout_ms / 1000
        while not self._stopping:
            changed = await self.driver.wait_until(lambda: self.driver.leader_id != leader, self.interval_s)
            if changed or time.monotonic() - self._last_response > silence_limit:
                return

    async def _read(self, call: grpc.aio.StreamStreamCall[Any, Any], leader: int) -> None:
        self._last_response = time.monotonic()
        async for response in call:
            self._last_response = time.monotonic()
            if response.error.error_code == ErrorCode.STALE_BROKER_EPOCH:
                # The controller no longer knows this incarnation: register again.
                self.logger.info("broker epoch is stale; registering again")
                await self.controller.register_again()
                return
            if response.is_fenced != self.fenced:
                self.fenced = response.is_fenced
                self.logger.info("broker fenced" if self.fenced else "broker unfenced", controller=leader)
            if response.should_shut_down:
                self._shutdown_done.set()
            if self.driver.leader_id != leader or self._stopping:
                return
