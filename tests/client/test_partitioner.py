"""Kafka's default partitioner, without a cluster."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from raftlog.client.partitioner import DefaultPartitioner, murmur2, partition_for_key, to_positive

# org.apache.kafka.common.utils.UtilsTest.testMurmur2
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}

# kafka-python's test_murmur2_java_compatibility: partitions of 1000 chosen by the Java client.
JAVA_PARTITIONS_OF_1000 = {b"": 681, b"a": 524, b"ab": 434, b"abc": 107, b"123456789": 566, b"\x00 ": 742}


@pytest.mark.parametrize(("key", "expected"), sorted(KAFKA_MURMUR2.items()))
def test_murmur2_matches_kafka(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), sorted(JAVA_PARTITIONS_OF_1000.items()))
def test_keyed_partition_matches_the_java_client(key: bytes, expected: int) -> None:
    assert partition_for_key(key, 1000) == expected
    assert DefaultPartitioner().partition("t", key, 1000, [1, 2]) == expected  # all partitions, not available


def test_to_positive_clears_the_sign_bit() -> None:
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-790332482) == 1357151166
    assert partition_for_key(b"foobar", 50) == 1357151166 % 50


def test_keyless_records_stick_until_the_batch_closes() -> None:
    partitioner = DefaultPartitioner(random.Random(7))
    first = partitioner.partition("t", None, 6, list(range(6)))
    assert all(partitioner.partition("t", None, 6, list(range(6))) == first for _ in range(100))
    partitioner.batch_closed("t", first, 6, list(range(6)))
    second = partitioner.partition("t", None, 6, list(range(6)))
    assert second != first
    partitioner.batch_closed("t", first, 6, list(range(6)))  # stale notice: no move
    assert partitioner.partition("t", None, 6, list(range(6))) == second


def test_sticky_spreads_over_available_partitions_only() -> None:
    partitioner = DefaultPartitioner(random.Random(1))
    seen: Counter[int] = Counter()
    for _ in range(300):
        p = partitioner.partition("t", None, 4, [0, 2, 3])
        seen[p] += 1
        partitioner.batch_closed("t", p, 4, [0, 2, 3])
    assert set(seen) == {0, 2, 3}
    assert min(seen.values()) > 50
