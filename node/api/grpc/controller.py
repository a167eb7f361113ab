"""``raftlog.v1.Controller``: broker-to-active-controller calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from raftlog.node.controller.active import ActiveController
from raftlog.node.config import NodeConfig
from raftlog.node.logging import get_logger
from raftlog.node.api.grpc.forwarding import time_remaining
from raftlog.node.controller.broker_sessions import BrokerSessions
from raftlog.node.controller.partition_control import PartitionControl
from raftlog.node.api.grpc.errors import abort_with, rpc_method
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import controller_pb2, controller_pb2_grpc


class ControllerService(controller_pb2_grpc.ControllerServicer):
    def __init__(
        self,
        config: NodeConfig,
        controller: ActiveController,
        partitions: PartitionControl | None = None,
        sessions: BrokerSessions | None = None,
    ) -> None:
        self.config = config
        self.controller = controller
        self.partitions = partitions
        self.sessions = sessions
        self.log = get_logger("controller-service", config.node_id)

    def _timeout(self, context: Any) -> float:
        return time_remaining(context, self.config.request_timeout_ms / 1000)

    def _partitions(self) -> PartitionControl:
        if self.partitions is None:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "partitions are not served by this node")
        return self.partitions

    @rpc_method
    async def AlterPartition(
        self, request: controller_pb2.AlterPartitionRequest, context: Any
    ) -> controller_pb2.AlterPartitionResponse:
        return await self._partitions().alter_partition(request, context, self._timeout(context))

    @rpc_method
    async def AllocateProducerIds(
        self, request: controller_pb2.AllocateProducerIdsRequest, context: Any
    ) -> controller_pb2.AllocateProducerIdsResponse:
        return await self._partitions().allocate_producer_ids(request, context, self._timeout(context))

    async def BrokerHeartbeat(
        self, request_iterator: AsyncIterator[controller_pb2.BrokerHeartbeatRequest], context: Any
    ) -> AsyncIterator[controller_pb2.BrokerHeartbeatResponse]:
        """A broker's long-lived session stream (answered by the active controller only)."""
        try:
            if self.sessions is None:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "broker sessions are not served by this node")
            async for response in self.sessions.heartbeat_stream(request_iterator, context):
                yield response
        except KafkaError as exc:
            await abort_with(context, exc.info)

    @rpc_method
    async def RegisterBroker(
        self, request: controller_pb2.RegisterBrokerRequest, context: Any
    ) -> controller_pb2.RegisterBrokerResponse:
        timeout = time_remaining(context, self.config.request_timeout_ms / 1000)
        return await self.controller.register_broker(request, context, timeout)
