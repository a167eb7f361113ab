"""``raftlog.v1.Quorum``: Raft messages between voters.

There is no client write here: the metadata log is written only by the active
controller's operations (node/controller), never by appending records a caller sends.
"""

from __future__ import annotations

from typing import Any

from raftlog.node.quorum.codec import CodecError, messages_from_pb
from raftlog.node.config import NodeConfig
from raftlog.node.logging import get_logger
from raftlog.node.quorum.driver import RaftDriver
from raftlog.node.api.grpc.errors import rpc_method
from raftlog.errors import ErrorCode, KafkaError
from raftlog.raft import InvalidMessageError
from raftlog.v1 import raft_pb2, raft_pb2_grpc


class QuorumService(raft_pb2_grpc.QuorumServicer):
    def __init__(self, config: NodeConfig, driver: RaftDriver[Any]) -> None:
        self.config = config
        self.driver = driver
        self.logger = get_logger("quorum-service", config.node_id)
        self._voters = frozenset(config.voter_ids)

    @rpc_method
    async def Step(self, request: raft_pb2.StepRequest, context: Any) -> raft_pb2.StepResponse:
        if request.cluster_id != self.config.cluster_id:
            raise KafkaError(
                ErrorCode.INCONSISTENT_CLUSTER_ID,
                f"message from cluster {request.cluster_id!r}, this is cluster "
                f"{self.config.cluster_id!r}",
            )
        sender = request.sender
        if sender not in self._voters or sender == self.config.node_id:
            raise KafkaError(
                ErrorCode.INCONSISTENT_VOTER_SET,
                f"node {sender} is not a voter of this quorum ({sorted(self._voters)})",
            )
        try:
            messages = messages_from_pb(request.messages)
        except CodecError as exc:
            raise KafkaError(ErrorCode.INVALID_REQUEST, str(exc)) from None
        for msg in messages:
            if msg.sender != sender:
                raise KafkaError(
                    ErrorCode.INVALID_REQUEST,
                    f"{msg.type.name} claims sender {msg.sender} in a batch from node {sender}",
                )
            if msg.to != self.config.node_id:
                raise KafkaError(
                    ErrorCode.INVALID_REQUEST,
                    f"{msg.type.name} for node {msg.to} delivered to node {self.config.node_id}",
                )
        try:
            await self.driver.step(messages)
        except InvalidMessageError as exc:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"refused by raft: {exc}") from None
        return raft_pb2.StepResponse()
