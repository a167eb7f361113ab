"""Every kind of bad input gets its Kafka error code; the node keeps serving and no
stored data changes."""

from __future__ import annotations


import pytest

from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import build_batch
from raftlog.v1 import admin_pb2, broker_pb2
from tests.cluster.conftest import ClusterFactory
from tests.cluster.dataplane import create_topic, describe, fetch_all, leader_address, list_offsets, produce, rpc

pytestmark = pytest.mark.cluster


def error_of(address: str, service: str, method: str, request: object) -> ErrorCode:
    with pytest.raises(KafkaError) as info:
        rpc(address, service, method, request)
    assert info.value.info.message, "an error must say what is wrong"
    return info.value.code


def test_bad_input_gets_its_error_and_changes_nothing(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    cluster.wait_for_leader()
    create_topic(cluster, "good", 1, 3, max_message_bytes="2000")
    for i in range(3):
        produce(cluster, "good", 0, [f"keep-{i}".encode()], retry_for_s=20)
    any_node = cluster.node(1).address
    leader = leader_address(cluster, "good", 0)
    assert leader is not None
    follower = next(n.address for n in cluster.nodes if n.address != leader)
    before = fetch_all(leader, "good", 0)
    topics_before = sorted(rpc(any_node, "admin", "ListTopics", admin_pb2.ListTopicsRequest()).names)  # type: ignore[attr-defined]

    def create(name: str, partitions: int = 1, rf: int = 1) -> ErrorCode:
        return error_of(any_node, "admin", "CreateTopic",
                        admin_pb2.CreateTopicRequest(name=name, partitions=partitions, replication_factor=rf))

    assert create("") == ErrorCode.INVALID_TOPIC
    assert create("x" * 250) == ErrorCode.INVALID_TOPIC
    assert create("bad/name") == ErrorCode.INVALID_TOPIC
    assert create(".") == ErrorCode.INVALID_TOPIC
    assert create("..") == ErrorCode.INVALID_TOPIC
    assert create("ok", partitions=0) == ErrorCode.INVALID_PARTITIONS
    assert create("ok", rf=0) == ErrorCode.INVALID_REPLICATION_FACTOR
    assert create("ok", rf=4) == ErrorCode.INVALID_REPLICATION_FACTOR
    assert create("good") == ErrorCode.TOPIC_ALREADY_EXISTS

    def produce_raw(address: str, records: bytes, partition: int = 0, topic: str = "good") -> ErrorCode:
        return error_of(address, "broker", "Produce", broker_pb2.ProduceRequest(
            topic=topic, partition=partition, records=records, acks=-1, timeout_ms=2000))

    good_batch = build_batch([(None, b"valid")])
    bad_crc = bytearray(good_batch)
    bad_crc[-1] ^= 0xFF
    bad_magic = bytearray(good_batch)
    bad_magic[16] = 1
    assert produce_raw(leader, bytes(bad_crc)) == ErrorCode.CORRUPT_MESSAGE
    assert produce_raw(leader, bytes(bad_magic)) == ErrorCode.CORRUPT_MESSAGE
    assert produce_raw(leader, b"\x00" * 10) == ErrorCode.CORRUPT_MESSAGE
    assert produce_raw(leader, build_batch([(None, b"x" * 5000)])) == ErrorCode.RECORD_TOO_LARGE
    assert produce_raw(leader, good_batch, topic="missing") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert produce_raw(leader, good_batch, partition=7) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert produce_raw(follower, good_batch) == ErrorCode.NOT_LEADER_OR_FOLLOWER
    with pytest.raises(KafkaError) as info:
        rpc(follower, "broker", "Produce", broker_pb2.ProduceRequest(topic="good", partition=0, records=good_batch, acks=-1))
    assert info.value.info.leader_address == leader, "NOT_LEADER_OR_FOLLOWER names the leader"
    assert error_of(leader, "broker", "Produce", broker_pb2.ProduceRequest(
        topic="good", partition=0, records=good_batch, acks=5)) == ErrorCode.INVALID_REQUIRED_ACKS

    def fetch(offset: int) -> ErrorCode:
        return error_of(leader, "broker", "Fetch", broker_pb2.FetchRequest(
            topic="good", partition=0, offset=offset, max_bytes=1 << 20, max_wait_ms=0, min_bytes=1,
            current_leader_epoch=-1))

    assert fetch(-1) == ErrorCode.OFFSET_OUT_OF_RANGE
    assert fetch(1_000_000) == ErrorCode.OFFSET_OUT_OF_RANGE
    # The node kept serving and nothing it stores changed.
    assert fetch_all(leader, "good", 0) == before
    assert list_offsets(cluster, "good", 0, -1) == before.high_watermark
    assert sorted(rpc(any_node, "admin", "ListTopics", admin_pb2.ListTopicsRequest()).names) == topics_before  # type: ignore[attr-defined]
    assert describe(cluster, "good").partitions[0].leader >= 1
    assert all(n.alive for n in cluster.nodes)
