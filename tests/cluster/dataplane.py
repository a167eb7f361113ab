"""A deliberately plain data-path client for cluster tests: raw gRPC calls, leader
lookup through Metadata, retries only where a test asks for them. Tests of the SDK
live in tests/client; these check the broker itself."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from raftlog.cli.local_cluster import LocalCluster, wait_for
from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import build_batch, read_records, split_batches
from raftlog.status import kafka_error_from_rpc
from raftlog.storage.node_db import NodeDB
from raftlog.storage.partition_log import PartitionLog
from raftlog.v1 import admin_pb2, admin_pb2_grpc, broker_pb2, broker_pb2_grpc

RETRIABLE_ROUTING = {
    ErrorCode.NOT_LEADER_OR_FOLLOWER,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.LEADER_NOT_AVAILABLE,
    ErrorCode.NETWORK_EXCEPTION,
    ErrorCode.REQUEST_TIMED_OUT,
    ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    ErrorCode.NOT_CONTROLLER,
    ErrorCode.FENCED_LEADER_EPOCH,
    ErrorCode.UNKNOWN_LEADER_EPOCH,
}


def rpc(address: str, service: str, method: str, request: object, timeout_s: float = 5.0) -> object:
    """One call; a failure is raised as KafkaError."""
    stub_class = {"admin": admin_pb2_grpc.AdminStub, "broker": broker_pb2_grpc.BrokerStub}[service]
    with grpc.insecure_channel(address) as channel:
        try:
            return getattr(stub_class(channel), method)(request, timeout=timeout_s)
        except grpc.RpcError as err:
            raise kafka_error_from_rpc(err) from None


def create_topic(cluster: LocalCluster, name: str, partitions: int, rf: int, **configs: str) -> admin_pb2.TopicDescription:
    def attempt() -> admin_pb2.TopicDescription | None:
        for address in live_addresses(cluster):
            try:
                response = rpc(address, "admin", "CreateTopic", admin_pb2.CreateTopicRequest(
                    name=name, partitions=partitions, replication_factor=rf,
                    configs={k.replace("_", "."): v for k, v in configs.items()}))
                assert isinstance(response, admin_pb2.CreateTopicResponse)
                return response.topic
            except KafkaError as err:
                if err.code == ErrorCode.TOPIC_ALREADY_EXISTS:
                    return describe(cluster, name)
                if err.code not in RETRIABLE_ROUTING and err.code != ErrorCode.INVALID_REPLICATION_FACTOR:
                    raise
        return None

    topic = wait_for(attempt, 60, f"topic {name} created")
    # Brokers create their replicas when they apply the records: wait until every
    # partition answers on its leader.
    for p in topic.partitions:
        wait_for(lambda p=p: _answers(cluster, name, p.partition), 30, f"{name}-{p.partition} served")
    return topic


def _answers(cluster: LocalCluster, topic: str, partition: int) -> bool:
    try:
        list_offsets(cluster, topic, partition, -1)
        return True
    except KafkaError:
        return False


def live_addresses(cluster: LocalCluster) -> list[str]:
    return [n.address for n in cluster.nodes if n.alive]


def describe(cluster: LocalCluster, name: str) -> admin_pb2.TopicDescription:
    last: Exception | None = None
    for address in live_addresses(cluster):
        try:
            desc = rpc(address, "admin", "DescribeTopic", admin_pb2.DescribeTopicRequest(name=name))
            assert isinstance(desc, admin_pb2.TopicDescription)
            return desc
        except KafkaError as err:
            last = err
    raise AssertionError(f"no node described {name}: {last}")


def leader_address(cluster: LocalCluster, topic: str, partition: int) -> str | None:
    """The leader as the metadata of a live node says (None: offline or unknown)."""
    for address in live_addresses(cluster):
        try:
            md = rpc(address, "broker", "Metadata", broker_pb2.MetadataRequest(topics=[topic]), 2.0)
        except KafkaError:
            continue
        assert isinstance(md, broker_pb2.MetadataResponse)
        hosts = {b.broker_id: f"{b.host}:{b.port}" for b in md.brokers}
        for t in md.topics:
            for p in t.partitions:
                if p.partition == partition and p.leader in hosts:
                    return hosts[p.leader]
        return None
    return None


def produce(cluster: LocalCluster, topic: str, partition: int, values: list[bytes], *, acks: int = -1,
            retry_for_s: float = 0.0, timeout_ms: int = 5000) -> int:
    """Produce one batch to the leader; returns its base offset. With ``retry_for_s``,
    retriable errors (leader moved, not enough replicas...) are retried until then."""
    batch = build_batch([(None, v) for v in values])
    deadline = time.monotonic() + retry_for_s
    while True:
        address = leader_address(cluster, topic, partition)
        try:
            if address is None:
                raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, f"{topic}-{partition} has no leader")
            response = rpc(address, "broker", "Produce", broker_pb2.ProduceRequest(
                topic=topic, partition=partition, records=batch, acks=acks, timeout_ms=timeout_ms),
                timeout_s=timeout_ms / 1000 + 2)
            assert isinstance(response, broker_pb2.ProduceResponse)
            return response.base_offset
        except KafkaError as err:
            if err.code not in RETRIABLE_ROUTING or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def list_offsets(cluster: LocalCluster, topic: str, partition: int, timestamp: int) -> int:
    address = leader_address(cluster, topic, partition)
    if address is None:
        raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, f"{topic}-{partition} has no leader")
    response = rpc(address, "broker", "ListOffsets",
                   broker_pb2.ListOffsetsRequest(topic=topic, partition=partition, timestamp=timestamp))
    assert isinstance(response, broker_pb2.ListOffsetsResponse)
    return response.offset


@dataclass(frozen=True)
class Fetched:
    records: list[tuple[int, bytes]]  # (offset, value)
    high_watermark: int


def fetch_all(address: str, topic: str, partition: int, start: int = 0) -> Fetched:
    """Everything below the high watermark, from ``address`` (which must lead)."""
    records: list[tuple[int, bytes]] = []
    offset = start
    hw = -1
    while hw < 0 or offset < hw:
        response = rpc(address, "broker", "Fetch", broker_pb2.FetchRequest(
            topic=topic, partition=partition, offset=offset, max_bytes=1 << 20, max_wait_ms=0,
            min_bytes=1, current_leader_epoch=-1))
        assert isinstance(response, broker_pb2.FetchResponse)
        hw = response.high_watermark
        fetched = [(r.offset, r.value or b"") for _, b in split_batches(response.records)
                   for r in read_records(b) if r.offset >= offset]
        if not fetched:
            break
        records.extend(fetched)
        offset = fetched[-1][0] + 1
    return Fetched(records, hw)


def replica_bytes(data_dir: Path, topic_id: str, partition: int, below: int) -> bytes:
    """A stopped node's stored batches of one partition, below offset ``below``."""
    db = NodeDB.open(data_dir)
    try:
        log = PartitionLog.open(db, topic_id, partition)
        out = b""
        offset = log.log_start_offset
        while offset < min(below, log.log_end_offset):
            chunk = log.read(offset, 1 << 20, below)
            if not chunk.records:
                break
            out += chunk.records
            offset = chunk.next_offset
        return out
    finally:
        db.close()
