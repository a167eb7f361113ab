"""Bad input: each raises a typed exception naming the cause; nothing accepted is lost."""

from __future__ import annotations

import time

import pytest

from raftlog.cli.local_cluster import LocalCluster, free_ports
from raftlog import (
    AdminClient,
    Consumer,
    ConsumerRecord,
    JsonSerializer,
    KafkaException,
    NoBrokersAvailable,
    Producer,
    ProducerClosedError,
    RecordTooLargeError,
    SerializationError,
    StringDeserializer,
    TopicPartition,
    UnknownTopicOrPartitionError,
)
from raftlog.aio import AIOProducer
from raftlog.client.errors import IllegalStateError, KafkaConfigurationError
from raftlog.errors import ErrorCode, KafkaError
from tests.client.conftest import bootstrap, new_topic

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]


def read_partition(cluster: LocalCluster, topic: str, partition: int, count: int,
                   timeout_s: float = 20.0) -> list[ConsumerRecord]:
    with Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest") as consumer:
        consumer.assign([TopicPartition(topic, partition)])
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            records.extend(consumer.poll(timeout_ms=300))
        records.extend(consumer.poll(timeout_ms=300))  # anything beyond ``count`` is a bug
        return records


def test_unknown_topic(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=1)
    with Producer(bootstrap_servers=bootstrap(cluster), max_block_ms=1500) as producer:
        accepted = producer.send(topic, b"before")
        started = time.monotonic()
        with pytest.raises(UnknownTopicOrPartitionError) as exc:
            producer.send("no-such-topic", b"x")
        assert "no-such-topic" in str(exc.value)
        assert exc.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION and exc.value.retriable
        assert isinstance(exc.value, KafkaError) and isinstance(exc.value, KafkaException)
        assert time.monotonic() - started < 10
        with pytest.raises(UnknownTopicOrPartitionError, match="partition 5 of topic"):
            producer.send(topic, b"x", partition=5)
        assert accepted.get(timeout=30).offset == 0
        assert producer.send(topic, b"after").get(timeout=30).offset == 1
    with Consumer(bootstrap_servers=bootstrap(cluster)) as consumer:
        with pytest.raises(UnknownTopicOrPartitionError, match="no-such-topic"):
            consumer.partitions_for_topic("no-such-topic")
    assert [r.value for r in read_partition(cluster, topic, 0, 2)] == [b"before", b"after"]


def test_value_the_serializer_rejects(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=1)
    with Producer(bootstrap_servers=bootstrap(cluster), value_serializer=JsonSerializer()) as producer:
        accepted = producer.send(topic, {"ok": 1})
        with pytest.raises(SerializationError) as exc:
            producer.send(topic, {"bad": {1, 2}})
        message = str(exc.value)
        assert "value" in message and topic in message and "JsonSerializer" in message and "set" in message
        assert isinstance(exc.value.cause, TypeError)
        with pytest.raises(SerializationError, match="key"):
            producer.send(topic, {"ok": 2}, key=12345)  # no key serializer: keys must be bytes
        with pytest.raises(SerializationError, match="header"):
            producer.send(topic, {"ok": 3}, headers=[("h", 12)])
        assert accepted.get(timeout=30).offset == 0
    records = read_partition(cluster, topic, 0, 1)
    assert [r.value for r in records] == [b'{"ok":1}']

    # The consumer side: a record the deserializer rejects is named, and the position stays on it.
    with Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest",
                  value_deserializer=lambda b: b.decode("ascii") if b != b'{"ok":1}' else 1 / 0) as consumer:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        deadline = time.monotonic() + 20
        with pytest.raises(SerializationError) as exc2:
            while time.monotonic() < deadline:
                consumer.poll(timeout_ms=300)
        assert "offset 0" in str(exc2.value) and "ZeroDivisionError" in str(exc2.value)
        assert consumer.position(tp) == 0
        consumer.seek(tp, 1)
        assert consumer.poll(timeout_ms=300) == []


def test_record_above_max_message_bytes(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=1, configs={"max.message.bytes": "2000"})
    with Producer(bootstrap_servers=bootstrap(cluster), linger_ms=50) as producer:
        # Small records around a big one, all in one batch: the broker refuses the batch,
        # the producer splits it, and only the big record fails.
        futures = [producer.send(topic, f"small-{i}".encode()) for i in range(20)]
        big = producer.send(topic, b"x" * 5000)
        futures += [producer.send(topic, f"small-{i}".encode()) for i in range(20, 40)]
        producer.flush(30)
        with pytest.raises(RecordTooLargeError) as exc:
            big.get(timeout=0)
        assert "max.message.bytes" in str(exc.value) and not exc.value.retriable
        offsets = [f.get(timeout=0).offset for f in futures]
        assert offsets == list(range(40))
        # Over the producer's own max_request_size: refused in send, before anything is sent.
        with pytest.raises(RecordTooLargeError, match="max_request_size"):
            producer.send(topic, b"y" * 2_000_000)
        assert producer.send(topic, b"last").get(timeout=30).offset == 40
    values = [r.value for r in read_partition(cluster, topic, 0, 41)]
    assert values == [f"small-{i}".encode() for i in range(40)] + [b"last"]


def test_unreachable_bootstrap_list() -> None:
    ports = free_ports("127.0.0.1", 2)
    servers = f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    for make in (
        lambda: Producer(bootstrap_servers=servers, request_timeout_ms=2000, max_block_ms=2000),
        lambda: Consumer(bootstrap_servers=servers, request_timeout_ms=2000),
        lambda: AdminClient(bootstrap_servers=servers, request_timeout_ms=2000),
    ):
        started = time.monotonic()
        with pytest.raises(NoBrokersAvailable) as exc:
            make()
        assert str(ports[0]) in str(exc.value) and str(ports[1]) in str(exc.value)
        assert exc.value.retriable
        assert time.monotonic() - started < 10
    with pytest.raises(KafkaConfigurationError, match="host:port"):
        Producer(bootstrap_servers="no-port-here")
    with pytest.raises(KafkaConfigurationError, match="lingr_ms"):
        Producer(bootstrap_servers=servers, lingr_ms=5)


def test_closed_producer_used_again(cluster: LocalCluster) -> None:
    topic = new_topic(cluster, partitions=1)
    producer = Producer(bootstrap_servers=bootstrap(cluster))
    accepted = producer.send(topic, b"accepted")
    producer.close()
    assert accepted.get(timeout=0).offset == 0  # close delivered it
    with pytest.raises(ProducerClosedError, match="closed"):
        producer.send(topic, b"late")
    assert isinstance(ProducerClosedError(), IllegalStateError)
    producer.close()  # idempotent
    with pytest.raises(IllegalStateError):
        producer.flush()
    consumer = Consumer(bootstrap_servers=bootstrap(cluster), value_deserializer=StringDeserializer())
    consumer.close()
    with pytest.raises(IllegalStateError):
        consumer.poll(timeout_ms=10)


def test_closed_aio_producer_used_again(cluster: LocalCluster) -> None:
    import asyncio

    topic = new_topic(cluster, partitions=1)

    async def main() -> None:
        producer = AIOProducer(bootstrap_servers=bootstrap(cluster))
        await producer.start()
        future = await producer.send(topic, b"accepted")
        await producer.close()
        assert (await future).offset == 0
        with pytest.raises(ProducerClosedError):
            await producer.send(topic, b"late")

    asyncio.run(asyncio.wait_for(main(), 30))
