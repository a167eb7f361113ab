"""``raftlog.v1.Quorum``: Raft messages between voters, and metadata proposals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raftlog.node.quorum.codec import CodecError, messages_from_pb
from raftlog.node.config import NodeConfig
from raftlog.node.logging import get_logger
from raftlog.node.quorum.driver import RaftDriver
from raftlog.node.api.grpc.forwarding import LeaderRouter, time_remaining
from raftlog.node.api.grpc.errors import rpc_method
from raftlog.errors import ErrorCode, KafkaError
from raftlog.raft import InvalidMessageError
from raftlog.node.controller.cluster_control import validate_registration
from raftlog.v1 import metadata_pb2, raft_pb2, raft_pb2_grpc
from google.protobuf.message import DecodeError

MAX_RECORD_BYTES = 1 << 20


def validate_records(records: Sequence[bytes]) -> None:
    """Reject anything that is not a well-formed MetadataRecord before it is proposed."""
    if not records:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "no records to propose")
    for i, data in enumerate(records):
        if len(data) > MAX_RECORD_BYTES:
            raise KafkaError(ErrorCode.INVALID_RECORD, f"record {i} is {len(data)} bytes, over {MAX_RECORD_BYTES}")
        record = metadata_pb2.MetadataRecord()
        try:
            record.ParseFromString(data)
        except DecodeError as exc:
            raise KafkaError(ErrorCode.INVALID_RECORD, f"record {i} does not decode: {exc}") from exc
        kind = record.WhichOneof("record")
        if kind is None:
            raise KafkaError(ErrorCode.INVALID_RECORD, f"record {i} has no record type set")
        if kind == "register_broker":
            validate_registration(record.register_broker)


class QuorumService(raft_pb2_grpc.QuorumServicer):
    def __init__(
        self,
        config: NodeConfig,
        driver: RaftDriver,
        router: LeaderRouter,
    ) -> None:
        self.config = config
        self.driver = driver
        self.router = router
        self.log = get_logger("quorum-service", config.node_id)
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

    @rpc_method
    async def Propose(
        self, request: raft_pb2.ProposeRequest, context: Any
    ) -> raft_pb2.ProposeResponse:
        records: Sequence[bytes] = list(request.records)
        validate_records(records)
        wanted = (request.timeout_ms or self.config.request_timeout_ms) / 1000
        timeout = time_remaining(context, wanted)

        async def local(remaining: float) -> raft_pb2.ProposeResponse:
            result = await self.driver.propose(records, remaining)
            return raft_pb2.ProposeResponse(
                term=result.term, first_index=result.first_index, last_index=result.last_index
            )

        async def remote(channel: Any, remaining: float, metadata: Any) -> raft_pb2.ProposeResponse:
            forwarded = raft_pb2.ProposeRequest(
                records=records, timeout_ms=max(1, int(remaining * 1000))
            )
            response: raft_pb2.ProposeResponse = await raft_pb2_grpc.QuorumStub(channel).Propose(
                forwarded, timeout=remaining, metadata=metadata
            )
            return response

        return await self.router.route(context, timeout, local, remote)
