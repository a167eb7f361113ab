"""Producer -> cluster -> Consumer round trips against real node processes."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import pytest

from raftlog.cli.local_cluster import LocalCluster
from raftlog import (
    AdminClient,
    Consumer,
    ConsumerRecord,
    JsonDeserializer,
    JsonSerializer,
    NewTopic,
    Producer,
    ProtobufDeserializer,
    ProtobufSerializer,
    RecordMetadata,
    StringDeserializer,
    StringSerializer,
    TopicAlreadyExistsError,
    TopicPartition,
    UnknownTopicOrPartitionError,
)
from raftlog.aio import AIOAdminClient, AIOConsumer, AIOProducer
from raftlog.client.partitioner import partition_for_key
from raftlog.v1 import broker_pb2
from tests.client.conftest import bootstrap, new_topic

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]


def consume_all(consumer: Consumer, count: int, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    """Poll until ``count`` records arrived (or the deadline: then return what came)."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        records.extend(consumer.poll(timeout_ms=500))
    return records


def test_10k_keyed_records_with_headers_round_trip(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=3)
    n = 10_000
    with Producer(bootstrap_servers=bootstrap(cluster), key_serializer=StringSerializer(),
                  value_serializer=StringSerializer(), linger_ms=5) as producer:
        futures = [
            producer.send(topic, f"value-{i}", key=f"key-{i % 997}", headers=[("i", str(i).encode()), ("n", None)])
            for i in range(n)
        ]
        producer.flush(timeout=60)
        sent = [f.get(timeout=0) for f in futures]

    # Same key -> the partition Kafka's default partitioner would choose.
    for i, md in enumerate(sent):
        assert md.topic == topic
        assert md.partition == partition_for_key(f"key-{i % 997}".encode(), 3)
    # Offsets per partition are 0..count-1 in send order.
    by_partition: dict[int, list[int]] = defaultdict(list)
    for i, md in enumerate(sent):
        by_partition[md.partition].append(i)
    for p, indexes in by_partition.items():
        offsets = [sent[i].offset for i in indexes]
        assert offsets == list(range(len(indexes))), f"partition {p} offsets not contiguous in send order"

    consumer = Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest",
                        key_deserializer=StringDeserializer(), value_deserializer=StringDeserializer())
    try:
        consumer.subscribe([topic])
        records = consume_all(consumer, n)
        assert len(records) == n
        assert consumer.poll(timeout_ms=300) == []  # nothing more, nothing twice
    finally:
        consumer.close()

    expected = {(sent[i].partition, sent[i].offset): i for i in range(n)}
    seen: dict[int, list[int]] = defaultdict(list)
    for r in records:
        i = expected.pop((r.partition, r.offset))  # KeyError = unexpected record or a duplicate
        assert r.value == f"value-{i}" and r.key == f"key-{i % 997}"
        assert r.headers == [("i", str(i).encode()), ("n", None)]
        assert r.timestamp == sent[i].timestamp
        seen[r.partition].append(r.offset)
    assert not expected
    for p, offsets in seen.items():
        assert offsets == sorted(offsets), f"partition {p} out of order"


def test_keyless_records_stick_then_spread(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=3)
    with Producer(bootstrap_servers=bootstrap(cluster), batch_size=1024, linger_ms=0) as producer:
        futures = [producer.send(topic, b"x" * 100) for _ in range(600)]
        partitions = [f.get(timeout=30).partition for f in futures]
    # Sticky: long runs on one partition, but every partition gets some.
    switches = sum(1 for a, b in zip(partitions, partitions[1:]) if a != b)
    assert set(partitions) == {0, 1, 2}
    assert switches < len(partitions) / 5


def test_explicit_partition_timestamp_callbacks_and_acks(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=2)
    delivered: list[tuple[object, RecordMetadata | None]] = []
    ts = int(time.time() * 1000) - 1000
    for acks in (1, "all", 0):
        with Producer(bootstrap_servers=bootstrap(cluster), acks=acks) as producer:
            future = producer.send(topic, b"v", partition=1, timestamp_ms=ts,
                                   on_delivery=lambda err, md: delivered.append((err, md)))
            md = future.get(timeout=30)
            assert md.partition == 1 and md.timestamp == ts
            assert md.offset == (-1 if acks == 0 else md.offset) and (acks == 0 or md.offset >= 0)
    assert len(delivered) == 3 and all(err is None for err, _ in delivered)
    consumer = Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition(topic, 1)])
        records = consume_all(consumer, 3)
        assert [r.offset for r in records] == [0, 1, 2]
        assert all(r.timestamp == ts for r in records)
    finally:
        consumer.close()


def test_compression_json_and_protobuf_serializers(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=1)
    values = [{"n": i, "text": "x" * 50} for i in range(500)]
    with Producer(bootstrap_servers=bootstrap(cluster), compression_type="gzip",
                  value_serializer=JsonSerializer()) as producer:
        for v in values:
            producer.send(topic, v)
        producer.flush(30)
    consumer = Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest",
                        value_deserializer=JsonDeserializer())
    try:
        consumer.assign([TopicPartition(topic, 0)])
        assert [r.value for r in consume_all(consumer, 500)] == values
    finally:
        consumer.close()

    proto_topic = new_topic(cluster, partitions=1)
    messages = [broker_pb2.FetchRequest(topic="t", offset=i) for i in range(20)]
    with Producer(bootstrap_servers=bootstrap(cluster),
                  value_serializer=ProtobufSerializer(broker_pb2.FetchRequest)) as producer:
        for m in messages:
            producer.send(proto_topic, m)
    consumer = Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest",
                        value_deserializer=ProtobufDeserializer(broker_pb2.FetchRequest))
    try:
        consumer.assign([TopicPartition(proto_topic, 0)])
        assert [r.value for r in consume_all(consumer, 20)] == messages
    finally:
        consumer.close()


def test_seek_position_offsets_and_latest_reset(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=1)
    tp = TopicPartition(topic, 0)
    base_ts = int(time.time() * 1000) - 60_000  # recent: retention.ms would delete old timestamps
    with Producer(bootstrap_servers=bootstrap(cluster)) as producer:
        for i in range(100):
            producer.send(topic, str(i).encode(), timestamp_ms=base_ts + i)
    consumer = Consumer(bootstrap_servers=bootstrap(cluster))  # auto_offset_reset="latest"
    try:
        consumer.assign([tp])
        assert consumer.position(tp) == 100
        assert consumer.poll(timeout_ms=200) == []
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 100}
        assert consumer.offsets_for_times({tp: base_ts + 50})[tp].offset == 50  # type: ignore[union-attr]
        consumer.seek(tp, 42)
        assert consumer.position(tp) == 42
        assert [r.offset for r in consume_all(consumer, 58)] == list(range(42, 100))
        consumer.seek_to_beginning(tp)
        first = consumer.poll(timeout_ms=5000, max_records=5)
        assert [r.offset for r in first] == [0, 1, 2, 3, 4]
        assert consumer.position(tp) == 5
        consumer.seek_to_end()
        assert consumer.position(tp) == 100
    finally:
        consumer.close()
    # Iteration stops after consumer_timeout_ms without records.
    with Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest",
                  consumer_timeout_ms=1000) as consumer:
        consumer.assign([tp])
        assert [r.offset for r in consumer] == list(range(100))


def test_admin_client(cluster: LocalCluster) -> None:
    with AdminClient({"bootstrap.servers": bootstrap(cluster)}) as admin:
        name = "admin-topic"
        created = admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=3,
                                                topic_configs={"retention.ms": "60000"})])
        assert created[name].configs["retention.ms"] == "60000"
        assert len(created[name].partitions) == 2
        assert name in admin.list_topics()
        with pytest.raises(TopicAlreadyExistsError) as exc:
            admin.create_topic(name, 2, 3)
        assert name in str(exc.value) and not exc.value.retriable
        described = admin.describe_topic(name)
        assert {p.partition for p in described.partitions} == {0, 1}
        assert all(len(p.isr) == 3 for p in described.partitions)
        configs = admin.alter_topic_configs(name, {"max.message.bytes": "2048"}, delete=["retention.ms"])
        assert configs["max.message.bytes"] == "2048" and configs["retention.ms"] == "604800000"
        cluster_info = admin.describe_cluster()
        assert sorted(b.broker_id for b in cluster_info.brokers) == [1, 2, 3]
        assert cluster_info.controller_id in (1, 2, 3)
        quorum = admin.describe_quorum()
        assert quorum.leader_id == cluster_info.controller_id or quorum.leader_id in (1, 2, 3)
        assert sorted(v.node_id for v in quorum.voters) == [1, 2, 3]
        admin.delete_topics([name])
        assert name not in admin.list_topics()
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.describe_topic(name)


def test_asyncio_twin_round_trip(cluster: LocalCluster) -> None:
    async def main() -> None:
        async with AIOAdminClient(bootstrap_servers=cluster.addresses) as admin:
            await admin.create_topic("aio-topic", 3, 3)
        results = []
        async with AIOProducer(bootstrap_servers=cluster.addresses, compression_type="gzip") as producer:
            futures = [await producer.send("aio-topic", f"v{i}".encode(), key=f"k{i}".encode())
                       for i in range(2000)]
            await producer.flush()
            results = [await f for f in futures]
            one = await producer.send_and_wait("aio-topic", b"last", key=b"k-last")
        assert one.offset >= 0
        async with AIOConsumer("aio-topic", bootstrap_servers=cluster.addresses,
                               auto_offset_reset="earliest") as consumer:
            got: list[ConsumerRecord] = []
            deadline = asyncio.get_running_loop().time() + 30
            while len(got) < 2001 and asyncio.get_running_loop().time() < deadline:
                got.extend(await consumer.poll(timeout_ms=500))
        assert len(got) == 2001
        assert {(r.partition, r.offset) for r in got} == {(m.partition, m.offset) for m in results} | {
            (one.partition, one.offset)}

    asyncio.run(asyncio.wait_for(main(), 60))
