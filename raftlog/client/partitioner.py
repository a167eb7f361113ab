"""Kafka's default partitioner: murmur2 of the key, sticky partitions for keyless records.

A keyed record goes to ``toPositive(murmur2(key)) % num_partitions`` over *all*
partitions of the topic — the formula of Kafka's Java client
(``BuiltInPartitioner.partitionForKey``), so a key lands on the partition Kafka
would put it on. A record without a key sticks to one partition until the batch it
went into is closed, then another partition is picked among those with a leader
(Kafka's sticky partitioner, KIP-480): fewer, fuller batches than round robin.
"""

from __future__ import annotations

import random
import threading

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: the signed 32-bit MurmurHash2 of ``data``."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    end4 = length & ~3
    for i in range(0, end4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[end4 + 2] << 16
    if rest >= 2:
        h ^= data[end4 + 1] << 8
    if rest >= 1:
        h ^= data[end4]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (not ``abs``)."""
    return number & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a keyed record."""
    return to_positive(murmur2(key)) % num_partitions


class DefaultPartitioner:
    """murmur2 for keys, sticky for keyless records. Thread-safe."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._sticky: dict[str, int] = {}
        self._lock = threading.Lock()

    def partition(self, topic: str, key: bytes | None, all_partitions: int, available: list[int]) -> int:
        """The partition for a record of ``topic`` (``available``: partitions with a leader now)."""
        if key is not None:
            return partition_for_key(key, all_partitions)
        current = self._sticky.get(topic)
        if current is not None and current < all_partitions:
            return current
        return self.next_sticky(topic, all_partitions, available, current)

    def sticky(self, topic: str) -> int | None:
        """The current sticky partition of ``topic`` (None before the first keyless record)."""
        return self._sticky.get(topic)

    def next_sticky(self, topic: str, all_partitions: int, available: list[int], previous: int | None) -> int:
        """Pick a new sticky partition for ``topic`` (after the batch of ``previous`` closed):
        another available one when there is a choice."""
        with self._lock:
            if self._sticky.get(topic) != previous and previous is not None:
                return self._sticky[topic]  # another thread moved it already
            choices = [p for p in available if p != previous] or available or list(range(all_partitions))
            chosen = choices[self._rng.randrange(len(choices))] if len(choices) > 1 else choices[0]
            self._sticky[topic] = chosen
            return chosen

    def batch_closed(self, topic: str, partition: int, all_partitions: int, available: list[int]) -> None:
        """A batch of ``topic``-``partition`` is full: move the sticky partition on."""
        if self._sticky.get(topic) == partition:
            self.next_sticky(topic, all_partitions, available, partition)
