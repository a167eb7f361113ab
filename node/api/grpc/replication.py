"""``raftlog.v1.Replication``: the leader side of follower pulls (ReplicaFetch,
OffsetForLeaderEpoch). Partition-level errors travel inside the response (one RPC
carries many partitions); only a malformed request fails the whole call."""

from __future__ import annotations

from typing import Any

from raftlog.node.broker.replica_manager import ReplicaManager
from raftlog.node.logging import get_logger
from raftlog.node.api.grpc.errors import rpc_method
from raftlog.v1 import replication_pb2, replication_pb2_grpc


class ReplicationService(replication_pb2_grpc.ReplicationServicer):
    def __init__(self, node_id: int, replica_manager: ReplicaManager) -> None:
        self.node_id = node_id
        self.replicas = replica_manager
        self.logger = get_logger("replication-service", node_id)

    @rpc_method
    async def ReplicaFetch(
        self, request: replication_pb2.ReplicaFetchRequest, context: Any
    ) -> replication_pb2.ReplicaFetchResponse:
        return await self.replicas.replica_fetch(request)

    @rpc_method
    async def OffsetForLeaderEpoch(
        self, request: replication_pb2.OffsetForLeaderEpochRequest, context: Any
    ) -> replication_pb2.OffsetForLeaderEpochResponse:
        return self.replicas.offset_for_leader_epoch(request)
