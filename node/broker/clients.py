"""What the replica manager needs from other processes, as narrow Protocols.

- ``ReplicationPeer``: the Replication service of a partition leader (followers pull).
  ``GrpcReplicationPeer`` is the production implementation over one ``grpc.aio``
  channel; ``grpc_peer_factory`` is the ``peer_client_factory`` to pass.
- ``ControllerClient``: AlterPartition / AllocateProducerIds on the *active*
  controller. The node supplies it (forwarding to the Raft leader); tests supply a
  fake that commits instantly. Both raise ``KafkaError`` on failure (transport
  failures as NETWORK_EXCEPTION / REQUEST_TIMED_OUT).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import grpc
import grpc.aio

from raftlog.node.quorum.transport import CHANNEL_OPTIONS  # the same options as every node-to-node channel
from raftlog.status import kafka_error_from_rpc
from raftlog.v1 import controller_pb2, replication_pb2, replication_pb2_grpc



class ReplicationPeer(Protocol):
    async def replica_fetch(
        self, request: replication_pb2.ReplicaFetchRequest, timeout: float
    ) -> replication_pb2.ReplicaFetchResponse: ...

    async def offset_for_leader_epoch(
        self, request: replication_pb2.OffsetForLeaderEpochRequest, timeout: float
    ) -> replication_pb2.OffsetForLeaderEpochResponse: ...

    async def close(self) -> None: ...


#: (leader broker id, "host:port") -> a client of that broker's Replication service.
PeerClientFactory = Callable[[int, str], ReplicationPeer]


class ControllerClient(Protocol):
    async def alter_partition(
        self, request: controller_pb2.AlterPartitionRequest, timeout: float
    ) -> controller_pb2.AlterPartitionResponse: ...

    async def allocate_producer_ids(
        self, request: controller_pb2.AllocateProducerIdsRequest, timeout: float
    ) -> controller_pb2.AllocateProducerIdsResponse: ...


class GrpcReplicationPeer:
    """Replication client over one long-lived channel; errors become KafkaError."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = replication_pb2_grpc.ReplicationStub(self._channel)

    async def replica_fetch(
        self, request: replication_pb2.ReplicaFetchRequest, timeout: float
    ) -> replication_pb2.ReplicaFetchResponse:
        try:
            response: replication_pb2.ReplicaFetchResponse = await self._stub.ReplicaFetch(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise kafka_error_from_rpc(exc) from None
        return response

    async def offset_for_leader_epoch(
        self, request: replication_pb2.OffsetForLeaderEpochRequest, timeout: float
    ) -> replication_pb2.OffsetForLeaderEpochResponse:
        try:
            response: replication_pb2.OffsetForLeaderEpochResponse = await self._stub.OffsetForLeaderEpoch(
                request, timeout=timeout
            )
        except grpc.RpcError as exc:
            raise kafka_error_from_rpc(exc) from None
        return response

    async def close(self) -> None:
        await self._channel.close(grace=None)


def grpc_peer_factory(broker_id: int, address: str) -> ReplicationPeer:
    """The production ``peer_client_factory``."""
    del broker_id  # one channel per fetcher; the id is for fakes in tests
    return GrpcReplicationPeer(address)
