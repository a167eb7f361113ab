"""Bad input gets its Kafka error code, never crashes a broker, never changes data."""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
import pytest

from raftlog.node.broker.replica_manager import LogFactory
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import broker_pb2, replication_pb2, replication_pb2_grpc
from tests.broker.harness import Cluster, batch, poll, run


def corrupt_crc(data: bytes) -> bytes:
    out = bytearray(data)
    out[-1] ^= 0xFF
    return bytes(out)


def bad_magic(data: bytes) -> bytes:
    out = bytearray(data)
    out[16] = 1
    return bytes(out)


def test_bad_client_input(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]], {"max.message.bytes": "200"})
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            await c.produce(1, "t", batch([b"good"]))
            await poll(lambda: all(c[b].partition("t").log_end_offset == 1 for b in (2, 3)), what="replicated")
            before = {b: c.log_bytes(b, "t", 1) for b in (1, 2, 3)}
            good = batch([b"v"])

            async def expect(code: ErrorCode, coro: object) -> None:
                with pytest.raises(KafkaError) as err:
                    await coro  # type: ignore[misc]
                assert err.value.code == code, err.value

            await expect(ErrorCode.CORRUPT_MESSAGE, c.produce(1, "t", corrupt_crc(good)))
            await expect(ErrorCode.CORRUPT_MESSAGE, c.produce(1, "t", bad_magic(good)))
            await expect(ErrorCode.CORRUPT_MESSAGE, c.produce(1, "t", good[:-3]))
            await expect(ErrorCode.CORRUPT_MESSAGE, c.produce(1, "t", b"\x00" * 10))
            await expect(ErrorCode.CORRUPT_MESSAGE, c.produce(1, "t", good + corrupt_crc(good)))
            await expect(ErrorCode.INVALID_RECORD, c.produce(1, "t", b""))
            await expect(ErrorCode.RECORD_TOO_LARGE, c.produce(1, "t", batch([b"x" * 300])))
            await expect(ErrorCode.INVALID_REQUIRED_ACKS, c.produce(1, "t", good, acks=5))
            await expect(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, c.produce(1, "nope", good))
            await expect(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, c.produce(1, "t", good, pid=7))
            await expect(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, c.produce(1, "t", good, pid=-1))
            await expect(ErrorCode.NOT_LEADER_OR_FOLLOWER, c.produce(2, "t", good))
            await expect(ErrorCode.OFFSET_OUT_OF_RANGE, c.fetch(1, "t", -5))
            await expect(ErrorCode.OFFSET_OUT_OF_RANGE, c.fetch(1, "t", 99))
            await expect(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, c.fetch(1, "nope", 0))
            await expect(ErrorCode.INVALID_REQUEST, c.call(1, "ListOffsets", broker_pb2.ListOffsetsRequest(
                topic="t", partition=0, timestamp=-7)))
            await expect(ErrorCode.NOT_LEADER_OR_FOLLOWER, c.call(3, "ListOffsets", broker_pb2.ListOffsetsRequest(
                topic="t", partition=0, timestamp=-1)))
            await expect(ErrorCode.INVALID_REQUEST, c.call(1, "InitProducerId", broker_pb2.InitProducerIdRequest(
                producer_id=5, producer_epoch=-1)))

            # Replication requests from a confused or hostile peer.
            topic_id = c.controller.image.topic_ids["t"]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{c[1].port}") as channel:
                stub = replication_pb2_grpc.ReplicationStub(channel)
                with pytest.raises(grpc.RpcError) as rpc_err:
                    await stub.ReplicaFetch(replication_pb2.ReplicaFetchRequest(replica_id=0), timeout=5)
                assert rpc_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                response = await stub.ReplicaFetch(replication_pb2.ReplicaFetchRequest(
                    replica_id=2, max_wait_ms=0, partitions=[
                        replication_pb2.ReplicaFetchPartition(topic_id=topic_id, partition=0, fetch_offset=-3,
                                                              current_leader_epoch=0),
                        replication_pb2.ReplicaFetchPartition(topic_id="bogus", partition=0),
                        replication_pb2.ReplicaFetchPartition(topic_id=topic_id, partition=0, fetch_offset=0,
                                                              current_leader_epoch=7),
                    ]), timeout=5)
                codes = [p.error.error_code for p in response.partitions]
                assert codes == [ErrorCode.OFFSET_OUT_OF_RANGE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                 ErrorCode.UNKNOWN_LEADER_EPOCH]
                response = await stub.ReplicaFetch(replication_pb2.ReplicaFetchRequest(
                    replica_id=9, partitions=[replication_pb2.ReplicaFetchPartition(topic_id=topic_id)]), timeout=5)
                assert response.partitions[0].error.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
                epochs = await stub.OffsetForLeaderEpoch(replication_pb2.OffsetForLeaderEpochRequest(
                    replica_id=2, partitions=[replication_pb2.EpochQuery(topic_id=topic_id, current_leader_epoch=-5,
                                                                        leader_epoch=-9)]), timeout=5)
                assert epochs.partitions[0].end_offset == -1

            # Nothing changed anywhere, and the brokers still work.
            assert {b: c.log_bytes(b, "t", 1) for b in (1, 2, 3)} == before
            assert all(c[b].partition("t").log_end_offset == 1 for b in (1, 2, 3))
            r = await c.produce(1, "t", good, acks=-1)
            assert r.base_offset == 1

    run(scenario())
