"""``raftlog.v1.Admin``: topics, configs, features, DescribeQuorum and DescribeCluster."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from raftlog.node.config import NodeConfig
from raftlog.node.controller.quorum_controller import QuorumController
from raftlog.node.logging import get_logger
from raftlog.node.controller.errors import controller_error
from raftlog.node.metadata.raft_driver import MetadataRaftDriver
from raftlog.node.api.grpc.forwarding import LeaderRouter, on_active_controller
from raftlog.node.api.grpc.errors import rpc_method
from raftlog.raft.types import Role, Status
from raftlog.v1 import admin_pb2, admin_pb2_grpc


def describe_quorum_from_status(
    config: NodeConfig, status: Status, last_received: dict[int, float], now: float
) -> admin_pb2.DescribeQuorumResponse:
    """The leader's view: every voter's log end offset, lag and last contact."""
    progress = dict(status.progress)
    response = admin_pb2.DescribeQuorumResponse(
        leader_id=status.leader_id,
        leader_epoch=status.term,
        high_watermark=status.commit,
        answered_by=config.node_id,
        cluster_id=config.cluster_id,
    )
    for voter in config.voters:
        if voter.node_id == config.node_id:
            log_end, last_fetch, state = status.last_index, 0, "Leader"
        else:
            pr = progress.get(voter.node_id)
            log_end = pr.match if pr is not None else 0
            seen = last_received.get(voter.node_id)
            last_fetch = int((now - seen) * 1000) if seen is not None else -1
            state = "Follower"
        response.voters.append(
            admin_pb2.VoterState(
                node_id=voter.node_id,
                address=voter.address,
                log_end_offset=log_end,
                lag=max(0, status.last_index - log_end),
                last_fetch_ms_ago=last_fetch,
                status=state,
            )
        )
    return response


class AdminService(admin_pb2_grpc.AdminServicer):
    """Topic writes and reads, and DescribeQuorum, are answered by the active
    controller (``@on_active_controller``); DescribeCluster by any node."""

    stub_class: ClassVar[Any] = admin_pb2_grpc.AdminStub

    def __init__(
        self, config: NodeConfig, driver: MetadataRaftDriver, router: LeaderRouter, controller: QuorumController
    ) -> None:
        self.config = config
        self.driver = driver
        self.router = router
        self.controller = controller
        self.logger = get_logger("admin-service", config.node_id)

    @property
    def default_timeout_s(self) -> float:
        return self.config.request_timeout_ms / 1000

    @rpc_method
    @on_active_controller
    async def CreateTopic(self, request: admin_pb2.CreateTopicRequest, timeout_s: float) -> admin_pb2.CreateTopicResponse:
        return await self.controller.create_topic(request, timeout_s)

    @rpc_method
    @on_active_controller
    async def DeleteTopic(self, request: admin_pb2.DeleteTopicRequest, timeout_s: float) -> admin_pb2.DeleteTopicResponse:
        return await self.controller.delete_topic(request, timeout_s)

    @rpc_method
    @on_active_controller
    async def ListTopics(self, request: admin_pb2.ListTopicsRequest, timeout_s: float) -> admin_pb2.ListTopicsResponse:
        return await self.controller.list_topics(request, timeout_s)

    @rpc_method
    @on_active_controller
    async def DescribeTopic(self, request: admin_pb2.DescribeTopicRequest, timeout_s: float) -> admin_pb2.TopicDescription:
        return await self.controller.describe_topic(request, timeout_s)

    @rpc_method
    @on_active_controller
    async def AlterConfigs(self, request: admin_pb2.AlterConfigsRequest, timeout_s: float) -> admin_pb2.AlterConfigsResponse:
        return await self.controller.alter_configs(request, timeout_s)

    @rpc_method
    @on_active_controller
    async def UpdateFeatures(
        self, request: admin_pb2.UpdateFeaturesRequest, timeout_s: float
    ) -> admin_pb2.UpdateFeaturesResponse:
        return await self.controller.update_features(request, timeout_s)

    async def local_quorum_view(self) -> admin_pb2.DescribeQuorumResponse:
        """This node's own idea of term, leader and commit (voters left empty)."""
        status = await self.driver.status()
        return admin_pb2.DescribeQuorumResponse(
            leader_id=status.leader_id,
            leader_epoch=status.term,
            high_watermark=status.commit,
            answered_by=self.config.node_id,
            cluster_id=self.config.cluster_id,
        )

    async def leader_quorum_view(self) -> admin_pb2.DescribeQuorumResponse:
        status = await self.driver.status()
        if status.role != Role.LEADER:
            raise controller_error(self.driver.not_leader("this node is not the active controller"))
        return describe_quorum_from_status(
            self.config, status, self.driver.last_received, time.monotonic()
        )

    async def DescribeQuorum(
        self, request: admin_pb2.DescribeQuorumRequest, context: Any
    ) -> admin_pb2.DescribeQuorumResponse:
        if request.local_view:
            return await self._local_view(request, context)
        return await self._leader_view(request, context)

    @rpc_method
    async def _local_view(self, request: admin_pb2.DescribeQuorumRequest, context: Any) -> admin_pb2.DescribeQuorumResponse:
        return await self.local_quorum_view()

    async def _leader_view_here(
        self, request: admin_pb2.DescribeQuorumRequest, timeout_s: float
    ) -> admin_pb2.DescribeQuorumResponse:
        return await self.leader_quorum_view()

    _leader_view_here.rpc_name = "DescribeQuorum"  # type: ignore[attr-defined]  # forwarded as this RPC
    _leader_view = rpc_method(on_active_controller(_leader_view_here))

    @rpc_method
    async def DescribeCluster(
        self, request: admin_pb2.DescribeClusterRequest, context: Any
    ) -> admin_pb2.DescribeClusterResponse:
        image = self.driver.image
        response = admin_pb2.DescribeClusterResponse(
            cluster_id=self.config.cluster_id,
            controller_id=self.driver.leader_id,
            metadata_offset=image.offset,
            answered_by=self.config.node_id,
        )
        for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
            response.brokers.append(
                admin_pb2.BrokerDescription(
                    broker_id=broker.broker_id,
                    address=broker.address,
                    incarnation_id=broker.incarnation_id,
                    broker_epoch=broker.broker_epoch,
                    fenced=broker.fenced,
                    rack=broker.rack,
                )
            )
        return response
