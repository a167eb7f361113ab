"""Leader failures under load: SIGKILL a partition leader while producing and while
consuming, and close a producer with records in flight."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from raftlog.cli.local_cluster import LocalCluster
from raftlog import (
    AdminClient,
    Consumer,
    ConsumerRecord,
    KafkaException,
    KafkaTimeoutError,
    Producer,
    ProducerClosedError,
    TopicPartition,
)
from raftlog.client.futures import FutureRecordMetadata
from tests.client.conftest import ClusterFactory, bootstrap, new_topic

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]


def leader_of(cluster: LocalCluster, topic: str, partition: int) -> int:
    with AdminClient(bootstrap_servers=bootstrap(cluster)) as admin:
        return admin.describe_topic(topic).partitions[partition].leader


def read_all(cluster: LocalCluster, topic: str, partitions: int,
             timeout_s: float = 60.0) -> dict[int, list[ConsumerRecord]]:
    """Every record of the topic, from the beginning to the end offsets of now."""
    out: dict[int, list[ConsumerRecord]] = defaultdict(list)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    with Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest",
                  request_timeout_ms=10_000) as consumer:
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500):
                out[record.partition].append(record)
    return out


def test_idempotent_producer_keeps_order_without_duplicates_when_leader_killed(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    topic = new_topic(cluster, partitions=3)
    victim = leader_of(cluster, topic, 0)
    n = 30_000
    futures: list[FutureRecordMetadata] = []
    killed_at = None
    with Producer(bootstrap_servers=bootstrap(cluster), linger_ms=2, batch_size=4096,
                  request_timeout_ms=10_000, delivery_timeout_ms=90_000) as producer:
        started = time.monotonic()
        for i in range(n):
            futures.append(producer.send(topic, str(i).encode(), key=f"key-{i % 60}".encode()))
            if i == n // 3:
                cluster.node(victim).kill()  # SIGKILL with batches in flight to it
                killed_at = i
            if time.monotonic() - started > 90:
                break
        producer.flush(timeout=120)
        stats = producer.metrics()
    assert killed_at is not None
    errors = [f.exception(0) for f in futures if f.exception(0) is not None]
    assert not errors, f"{len(errors)} records failed, first: {errors[0]}"
    assert stats["batches_retried"] > 0, f"the kill forced no retry: {stats}"

    sent = [f.get(0) for f in futures]
    log = read_all(cluster, topic, 3)
    values = [int(r.value) for records in log.values() for r in records]
    assert len(values) == len(set(values)), "a record was written twice"
    assert sorted(values) == list(range(len(sent))), "a record is missing"
    for partition, records in log.items():
        sequence = [int(r.value) for r in records]
        assert sequence == sorted(sequence), f"partition {partition} reordered"
        assert [r.offset for r in records] == list(range(len(records)))
    for i, md in enumerate(sent):
        assert int(log[md.partition][md.offset].value) == i


def test_consumer_follows_leader_failover_without_gap_or_duplicate(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    topic = new_topic(cluster, partitions=1)
    first, second = 20_000, 2_000
    with Producer(bootstrap_servers=bootstrap(cluster)) as producer:
        for i in range(first):
            producer.send(topic, b"%08d" % i + b"x" * 92)
        producer.flush(60)
    victim = leader_of(cluster, topic, 0)
    got: list[ConsumerRecord] = []
    with Consumer(bootstrap_servers=bootstrap(cluster), auto_offset_reset="earliest",
                  max_partition_fetch_bytes=32 * 1024, max_poll_records=200,
                  retry_backoff_max_ms=500) as consumer:
        consumer.assign([TopicPartition(topic, 0)])
        deadline = time.monotonic() + 90
        while len(got) < first // 3 and time.monotonic() < deadline:
            got.extend(consumer.poll(timeout_ms=500))
        cluster.node(victim).kill()
        with Producer(bootstrap_servers=bootstrap(cluster)) as producer:  # written to the new leader
            for i in range(first, first + second):
                producer.send(topic, b"%08d" % i + b"x" * 92)
            producer.flush(60)
        while len(got) < first + second and time.monotonic() < deadline:
            got.extend(consumer.poll(timeout_ms=500))
        got.extend(consumer.poll(timeout_ms=500))
    offsets = [r.offset for r in got]
    assert offsets == list(range(first + second)), "gap or duplicate across the failover"
    assert all(r.value[:8] == b"%08d" % r.offset for r in got)
    assert leader_of(cluster, topic, 0) != victim


def test_close_delivers_or_fails_every_record_in_flight(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    topic = new_topic(cluster, partitions=3)

    # close() without a timeout delivers everything that was accepted.
    producer = Producer(bootstrap_servers=bootstrap(cluster), linger_ms=20)
    futures = [producer.send(topic, b"a-%d" % i) for i in range(20_000)]
    producer.close()
    assert all(f.done() and f.exception(0) is None for f in futures)
    delivered = {(f.get(0).partition, f.get(0).offset) for f in futures}

    # close(timeout=0): whatever is not delivered at once fails — none stays pending.
    producer = Producer(bootstrap_servers=bootstrap(cluster), linger_ms=20)
    futures = [producer.send(topic, b"b-%d" % i) for i in range(20_000)]
    producer.close(timeout=0)
    assert all(f.done() for f in futures)
    ok = [f for f in futures if f.exception(0) is None]
    failed = [f.exception(0) for f in futures if f.exception(0) is not None]
    assert all(isinstance(e, (ProducerClosedError, KafkaTimeoutError)) for e in failed), failed[:3]
    assert len(ok) + len(failed) == 20_000
    assert failed, "close(timeout=0) right after 20,000 sends should have had records to fail"
    delivered |= {(f.get(0).partition, f.get(0).offset) for f in ok}

    log = read_all(cluster, topic, 3)
    in_log = {(p, r.offset): r.value for p, records in log.items() for r in records}
    assert delivered <= set(in_log), "a record reported delivered is not in the log"
    values = list(in_log.values())
    assert len(values) == len(set(values)), "a record was written twice"

    # The whole cluster gone: close(timeout) still ends every future, with an error.
    producer = Producer(bootstrap_servers=bootstrap(cluster), linger_ms=20, request_timeout_ms=3000,
                        delivery_timeout_ms=10_000)
    producer.send(topic, b"warm-up").get(timeout=30)
    cluster.kill_all()
    stranded = [producer.send(topic, b"c-%d" % i) for i in range(1000)]
    started = time.monotonic()
    producer.close(timeout=2)
    assert time.monotonic() - started < 10
    assert all(f.done() for f in stranded)
    errors = [f.exception(0) for f in stranded]
    assert all(isinstance(e, KafkaException) for e in errors)
    assert "closed" in str(errors[-1])
