"""Requests bounded by what a correct peer could send (hardening: request sizes)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import grpc
import pytest

from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.broker.replica_manager import LogFactory
from raftlog.node.controller.cluster_control import validate_registration
from raftlog.status import kafka_error_from_rpc
from raftlog.v1 import metadata_pb2, replication_pb2, replication_pb2_grpc
from tests.broker.harness import Cluster, poll, run


def _registration(host: str, endpoints: int = 1) -> metadata_pb2.RegisterBrokerRecord:
    return metadata_pb2.RegisterBrokerRecord(
        broker_id=4, incarnation_id=str(uuid.uuid4()),
        endpoints=[metadata_pb2.Endpoint(name=f"L{i}", host=host, port=9000) for i in range(endpoints)],
    )


@pytest.mark.parametrize(("host", "endpoints"), [("h" * 1_000_000, 1), ("h", 100)])
def test_oversized_registrations_are_refused(host: str, endpoints: int) -> None:
    # A 35 MB hostname was accepted, and every later Metadata answer exceeded 64 MB.
    with pytest.raises(KafkaError) as err:
        validate_registration(_registration(host, endpoints))
    assert err.value.code == ErrorCode.INVALID_REQUEST
    assert len(err.value.info.message) < 300
    validate_registration(_registration("broker-4.example.internal"))


def test_a_replica_fetch_naming_far_more_partitions_than_hosted_is_refused_at_once(
        tmp_path: Path, log_factory: LogFactory | None) -> None:
    # 200,000 to 1,000,000 entries (a node accepts 64 MB messages) stalled the event loop for seconds.
    async def scenario() -> None:
        async with Cluster(tmp_path, size=2, log_factory=log_factory) as c:
            topic_id = c.controller.create_topic("t", [[1, 2]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader 1")
            async with grpc.aio.insecure_channel(f"127.0.0.1:{c[1].port}") as channel:
                stub = replication_pb2_grpc.ReplicationStub(channel)
                item = replication_pb2.ReplicaFetchPartition(topic_id=topic_id, partition=0, fetch_offset=0)
                flood = replication_pb2.ReplicaFetchRequest(replica_id=2, max_wait_ms=0, partitions=[item] * 120_000)  # under the test server's 4 MB limit
                started = time.monotonic()
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.ReplicaFetch(flood, timeout=30)
                assert kafka_error_from_rpc(info.value).code == ErrorCode.INVALID_REQUEST
                assert time.monotonic() - started < 5
                # A fetch of what it follows is still answered.
                answer = await stub.ReplicaFetch(
                    replication_pb2.ReplicaFetchRequest(replica_id=2, max_wait_ms=0, partitions=[item]), timeout=10)
                assert len(answer.partitions) == 1

    run(scenario(), 60)
