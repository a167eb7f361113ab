"""``raftlog.v1.Controller``: broker-to-active-controller calls.

Every unary method is answered by the active controller (``@on_active_controller``
forwards it there); the heartbeat stream is served by the active controller only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from raftlog.node.config import NodeConfig
from raftlog.node.controller.broker_heartbeat_manager import BrokerHeartbeatManager
from raftlog.node.controller.quorum_controller import QuorumController
from raftlog.node.logging import get_logger
from raftlog.node.api.grpc.errors import abort_with, rpc_method
from raftlog.node.api.grpc.forwarding import LeaderRouter, call_active_controller, on_active_controller
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import controller_pb2, controller_pb2_grpc


class ControllerService(controller_pb2_grpc.ControllerServicer):
    stub_class: ClassVar[Any] = controller_pb2_grpc.ControllerStub

    def __init__(
        self,
        config: NodeConfig,
        controller: QuorumController,
        router: LeaderRouter,
        heartbeats: BrokerHeartbeatManager | None = None,
    ) -> None:
        self.config = config
        self.controller = controller
        self.router = router
        self.heartbeats = heartbeats
        self.logger = get_logger("controller-service", config.node_id)

    @property
    def default_timeout_s(self) -> float:
        return self.config.request_timeout_ms / 1000

    @rpc_method
    @on_active_controller
    async def AlterPartition(
        self, request: controller_pb2.AlterPartitionRequest, timeout_s: float
    ) -> controller_pb2.AlterPartitionResponse:
        return await self.controller.alter_partition(request, timeout_s)

    @rpc_method
    @on_active_controller
    async def AllocateProducerIds(
        self, request: controller_pb2.AllocateProducerIdsRequest, timeout_s: float
    ) -> controller_pb2.AllocateProducerIdsResponse:
        return await self.controller.allocate_producer_ids(request, timeout_s)

    @rpc_method
    @on_active_controller
    async def RegisterBroker(
        self, request: controller_pb2.RegisterBrokerRequest, timeout_s: float
    ) -> controller_pb2.RegisterBrokerResponse:
        return await self.controller.register_broker(request, timeout_s)

    async def BrokerHeartbeat(
        self, request_iterator: AsyncIterator[controller_pb2.BrokerHeartbeatRequest], context: Any
    ) -> AsyncIterator[controller_pb2.BrokerHeartbeatResponse]:
        """A broker's long-lived session stream (answered by the active controller only)."""
        try:
            if self.heartbeats is None:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "broker sessions are not served by this node")
            async for response in self.heartbeats.heartbeat_stream(request_iterator, context):
                yield response
        except KafkaError as exc:
            await abort_with(context, exc.info)

    # ------------------------------------------------------------------ in-process callers
    async def register_broker(
        self, request: controller_pb2.RegisterBrokerRequest, timeout_s: float
    ) -> controller_pb2.RegisterBrokerResponse:
        response: controller_pb2.RegisterBrokerResponse = await call_active_controller(
            self, "RegisterBroker", request, timeout_s
        )
        return response


class NodeControllerClient:
    """The broker's ``ControllerClient``: its requests go to the active controller,
    through the same routing as a client's call."""

    def __init__(self, service: ControllerService) -> None:
        self.service = service

    async def alter_partition(
        self, request: controller_pb2.AlterPartitionRequest, timeout: float
    ) -> controller_pb2.AlterPartitionResponse:
        response: controller_pb2.AlterPartitionResponse = await call_active_controller(
            self.service, "AlterPartition", request, timeout
        )
        return response

    async def allocate_producer_ids(
        self, request: controller_pb2.AllocateProducerIdsRequest, timeout: float
    ) -> controller_pb2.AllocateProducerIdsResponse:
        response: controller_pb2.AllocateProducerIdsResponse = await call_active_controller(
            self.service, "AllocateProducerIds", request, timeout
        )
        return response
