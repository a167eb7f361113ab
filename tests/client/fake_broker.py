"""An in-process stand-in for the cluster's Broker service, with fault injection.

It keeps Kafka's idempotent-producer rules (the last 5 batches per producer and
partition: a retried batch is answered with its original offset, a gap is refused
with OUT_OF_ORDER_SEQUENCE_NUMBER, a producer it does not know is accepted at any
sequence) and can, at random: fail a request before appending (retriable), append
and then lose the answer, delay requests so that concurrent ones are applied out
of order, and refuse batches over ``max_message_bytes``. The SDK's connection pool
is swapped for it, so the real producer code runs against it.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka.record.memory_records import MemoryRecords

from raftlog.client.errors import (
    NetworkExceptionError,
    NotEnoughReplicasError,
    OutOfOrderSequenceNumberError,
    RecordTooLargeError,
    RequestTimedOutError,
)
from raftlog.records import split_batches, validate_batch
from raftlog.v1 import broker_pb2


@dataclass
class Faults:
    before_append: float = 0.0  # retriable error, nothing written
    after_append: float = 0.0  # written, but the answer is lost (timeout)
    max_delay_s: float = 0.0  # random delay before applying: concurrent requests reorder


@dataclass
class FakeBroker:
    topic: str = "t"
    partitions: int = 2
    seed: int = 0
    faults: Faults = field(default_factory=Faults)
    max_message_bytes: int = 1 << 20
    logs: dict[int, list[tuple[bytes | None, bytes | None]]] = field(default_factory=lambda: defaultdict(list))
    producer_state: dict[tuple[int, int], tuple[int, deque[tuple[int, int, int]]]] = field(default_factory=dict)
    next_producer_id: int = 1000
    requests: int = 0
    duplicates: int = 0
    lost_answers: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def call(self, address: str, service: str, method: str, request: Any, timeout_s: float) -> Any:
        if method == "Metadata":
            response = broker_pb2.MetadataResponse(cluster_id="fake", controller_id=1)
            response.brokers.append(broker_pb2.BrokerEndpoint(broker_id=1, host="fake", port=1))
            topic = response.topics.add(name=self.topic, topic_id="id")
            for p in range(self.partitions):
                topic.partitions.add(partition=p, leader=1, leader_epoch=0, replicas=[1], isr=[1])
            return response
        if method == "InitProducerId":
            if request.producer_id < 0:
                self.next_producer_id += 1
                return broker_pb2.InitProducerIdResponse(producer_id=self.next_producer_id, producer_epoch=0)
            return broker_pb2.InitProducerIdResponse(producer_id=request.producer_id,
                                                     producer_epoch=request.producer_epoch + 1)
        assert method == "Produce", method
        self.requests += 1
        if self.faults.max_delay_s:
            await asyncio.sleep(self.rng.random() * self.faults.max_delay_s)
        if self.rng.random() < self.faults.before_append:
            raise (NotEnoughReplicasError if self.rng.random() < 0.5 else NetworkExceptionError)("injected")
        offsets = self._append(request)
        if self.rng.random() < self.faults.after_append:
            self.lost_answers += 1
            raise RequestTimedOutError("injected: written, answer lost")
        return broker_pb2.ProduceResponse(base_offset=offsets[0], batch_base_offsets=offsets)

    def _append(self, request: broker_pb2.ProduceRequest) -> list[int]:
        log = self.logs[request.partition]
        batches = list(split_batches(request.records))
        for header, view in batches:
            if header.size > self.max_message_bytes:
                raise RecordTooLargeError(f"batch of {header.size} bytes is over max.message.bytes")
            validate_batch(view, 1 << 30)
        offsets: list[int] = []
        pending: list[tuple[tuple[int, int], int, int, int, int]] = []
        staged: dict[tuple[int, int], tuple[int, deque[tuple[int, int, int]]]] = {}
        next_offset = len(log)
        for header, view in batches:
            key = (header.producer_id, request.partition)
            epoch, window = staged.get(key) or self.producer_state.get(key) or (-1, deque(maxlen=5))
            window = deque(window, maxlen=5)
            duplicate = next((b for b in window if epoch == header.producer_epoch
                              and b[0] == header.base_sequence and b[1] == header.last_sequence), None)
            if duplicate is not None:
                self.duplicates += 1
                offsets.append(duplicate[2])
                continue
            if epoch == header.producer_epoch and window:
                expected = window[-1][1] + 1
                if header.base_sequence != expected:
                    raise OutOfOrderSequenceNumberError(f"expected sequence {expected}, got {header.base_sequence}")
            elif epoch != -1 and header.producer_epoch != epoch and header.base_sequence != 0:
                raise OutOfOrderSequenceNumberError("a new epoch starts at sequence 0")
            if header.producer_epoch != epoch:
                window = deque(maxlen=5)
            window.append((header.base_sequence, header.last_sequence, next_offset))
            staged[key] = (header.producer_epoch, window)
            pending.append((key, header.base_sequence, header.last_sequence, next_offset, 0))
            offsets.append(next_offset)
            records = MemoryRecords(bytes(view))
            batch = records.next_batch()
            assert batch is not None
            for r in batch:
                log.append((r.key, r.value))
                next_offset += 1
        self.producer_state.update(staged)
        return offsets
