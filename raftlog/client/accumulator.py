"""Per-partition batching of produced records (Kafka's RecordAccumulator).

``send`` appends a record to the open batch of its partition (a RecordBatch v2
being built by aiokafka's C builder, so the encoding cost is paid in the caller's
thread); the sender drains batches that are full, have waited ``linger_ms``, are
being flushed, or are due for a retry. Memory is reserved per batch from a
:class:`BufferPool` of ``buffer_memory`` bytes and given back when the batch is
done, so a producer that outpaces the cluster blocks (or fails) in ``send``
instead of growing without bound.

Thread-safe: appends may come from any thread, draining happens on the sender's
event loop; one lock guards the queues.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

from raftlog.client.errors import BufferExhaustedError, KafkaException, ProducerClosedError
from raftlog.client.futures import BatchResult, FutureRecordMetadata
from raftlog.client.types import Headers, TopicPartition
from raftlog.records import NO_PRODUCER_ID, NO_SEQUENCE

_PRODUCER_STATE = struct.Struct(">qhi")  # producerId, producerEpoch, baseSequence at byte 43
_CRC = struct.Struct(">I")
_PRODUCER_STATE_AT = 43
_CRC_AT = 17
_CRC_FROM = 21


class BufferPool:
    """``total`` bytes shared by all open batches; ``reserve`` blocks (thread or
    coroutine) until enough is released, up to a deadline."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.available = total
        self._cond = threading.Condition()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def try_reserve(self, size: int) -> bool:
        """Take ``size`` bytes if they are free now."""
        with self._cond:
            if self.available >= size:
                self.available -= size
                return True
            return False

    def reserve(self, size: int, timeout_s: float) -> None:
        """Take ``size`` bytes, blocking up to ``timeout_s``; BufferExhaustedError then."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.available < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._exhausted(size, timeout_s)
                self._cond.wait(remaining)
            self.available -= size

    async def reserve_async(self, size: int, timeout_s: float) -> None:
        """:meth:`reserve` for an event loop (does not block the loop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.try_reserve(size):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._exhausted(size, timeout_s)
            future: asyncio.Future[None] = loop.create_future()
            with self._cond:
                self._async_waiters.append((loop, future))
            try:
                await asyncio.wait_for(future, min(remaining, 0.5))
            except TimeoutError:
                pass

    def release(self, size: int) -> None:
        """Give ``size`` bytes back and wake whoever waits for memory."""
        if size <= 0:
            return
        with self._cond:
            self.available += size
            self._cond.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    def _exhausted(self, size: int, timeout_s: float) -> BufferExhaustedError:
        return BufferExhaustedError(
            f"buffer_memory={self.total} is full: could not reserve {size} bytes within {timeout_s * 1000:.0f} ms"
            " (the cluster is slower than the producer, or unreachable)"
        )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ProducerBatch:
    """Records of one partition sent (and retried) together as one RecordBatch v2."""

    __slots__ = (
        "tp", "builder", "created", "deadline", "result", "record_count", "reserved", "attempts", "retry_at",
        "base_sequence", "producer_id", "producer_epoch", "data", "last_error", "sent", "full", "solo",
        "compression", "split_from",
    )

    def __init__(self, tp: TopicPartition, compression: int, batch_size: int, now: float,
                 delivery_timeout_s: float, reserved: int) -> None:
        self.tp = tp
        self.compression = compression
        self.builder: DefaultRecordBatchBuilder | None = DefaultRecordBatchBuilder(
            magic=2, compression_type=compression, is_transactional=False, producer_id=NO_PRODUCER_ID,
            producer_epoch=-1, base_sequence=NO_SEQUENCE, batch_size=batch_size,
        )
        self.created = now
        self.deadline = now + delivery_timeout_s
        self.result = BatchResult(tp.topic, tp.partition)
        self.record_count = 0
        self.reserved = reserved
        self.attempts = 0
        self.retry_at = 0.0
        self.base_sequence = NO_SEQUENCE
        self.producer_id = NO_PRODUCER_ID
        self.producer_epoch = -1
        self.data: bytes | None = None
        self.last_error: KafkaException | None = None
        self.sent = False  # sent at least once: a failure after that may have been written
        self.full = False
        self.solo = False  # send alone in its request (after a RECORD_TOO_LARGE of a multi-batch request)
        self.split_from: tuple[SplitTracker, int] | None = None

    def try_append(self, timestamp: int | None, key: bytes | None, value: bytes | None,
                   headers: Headers) -> FutureRecordMetadata | None:
        """Append one record; None when the batch is full (it is then marked full)."""
        builder = self.builder
        if builder is None or self.full:
            return None
        meta = builder.append(self.record_count, timestamp=timestamp, key=key, value=value, headers=headers)
        if meta is None:
            self.full = True
            return None
        index = self.record_count
        self.record_count = index + 1
        return FutureRecordMetadata(
            self.result, index, self.tp.topic, meta.timestamp,
            -1 if key is None else len(key), -1 if value is None else len(value),
        )

    def size(self) -> int:
        """Bytes of the batch (the built bytes once built)."""
        if self.data is not None:
            return len(self.data)
        return self.builder.size() if self.builder is not None else 0

    def build(self, producer_id: int, producer_epoch: int, base_sequence: int) -> bytes:
        """The batch's bytes with this producer state (built once; re-stamped after)."""
        if self.data is None:
            assert self.builder is not None
            self.builder.set_producer_state(producer_id, producer_epoch, base_sequence)
            self.data = bytes(self.builder.build())
            self.builder = None
        elif (producer_id, producer_epoch, base_sequence) != (self.producer_id, self.producer_epoch,
                                                               self.base_sequence):
            self.data = restamp(self.data, producer_id, producer_epoch, base_sequence)
        self.producer_id, self.producer_epoch, self.base_sequence = producer_id, producer_epoch, base_sequence
        return self.data

    def records(self) -> list[tuple[int, bytes | None, bytes | None, Headers]]:
        """(timestamp, key, value, headers) of every record (decoded from the built bytes)."""
        assert self.data is not None
        return [(r.timestamp, r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(self.data)]

    def __repr__(self) -> str:
        return (f"<ProducerBatch {self.tp.topic}-{self.tp.partition} records={self.record_count}"
                f" seq={self.base_sequence} attempts={self.attempts}>")


def restamp(data: bytes, producer_id: int, producer_epoch: int, base_sequence: int) -> bytes:
    """A built batch with another producer id/epoch/base sequence (inside the CRC, so
    the CRC-32C is recomputed). Used to renumber batches after a failed one."""
    out = bytearray(data)
    _PRODUCER_STATE.pack_into(out, _PRODUCER_STATE_AT, producer_id, producer_epoch, base_sequence)
    _CRC.pack_into(out, _CRC_AT, calc_crc32c(bytes(out[_CRC_FROM:])))
    return bytes(out)


@dataclass
class SplitTracker:
    """A batch split in parts after RECORD_TOO_LARGE: resolves the original batch's
    futures, record by record, once every part is done."""

    parent: ProducerBatch
    offsets: list[int]
    errors: list[KafkaException | None]
    pending: int
    on_done: Callable[[SplitTracker], None]

    def part_done(self, part: ProducerBatch, first_index: int) -> None:
        """Copy a finished part's outcome into the per-record arrays; when it was the
        last part, complete the parent (``on_done``, which also tells the parent's own
        tracker when the parent was itself a part)."""
        result = part.result
        for i in range(part.record_count):
            if result.record_offsets is not None and result.record_errors is not None:
                self.errors[first_index + i] = result.record_errors[i]
                self.offsets[first_index + i] = result.record_offsets[i]
            else:
                self.errors[first_index + i] = result.error
                self.offsets[first_index + i] = -1 if result.error is not None or result.base_offset < 0 else (
                    result.base_offset + i)
        self.pending -= 1
        if self.pending == 0:
            self.on_done(self)


class RecordAccumulator:
    """The per-partition queues of batches between ``send`` and the sender."""

    def __init__(self, *, batch_size: int, compression: int, linger_ms: int, delivery_timeout_ms: int,
                 pool: BufferPool, on_new_batch: Callable[[], None],
                 on_batch_full: Callable[[TopicPartition], None] | None = None) -> None:
        self.batch_size = batch_size
        self.compression = compression
        self.linger_s = linger_ms / 1000
        self.delivery_timeout_s = delivery_timeout_ms / 1000
        self.pool = pool
        self._on_new_batch = on_new_batch
        self._on_batch_full = on_batch_full
        self._queues: dict[TopicPartition, deque[ProducerBatch]] = {}
        self._lock = threading.Lock()
        self.incomplete: set[ProducerBatch] = set()
        self.flushing = 0
        self.closing = False

    # ------------------------------------------------------------------ append side
    def try_append(self, tp: TopicPartition, timestamp: int | None, key: bytes | None, value: bytes | None,
                   headers: Headers) -> FutureRecordMetadata | None:
        """Append to the partition's open batch; None when a new batch is needed.
        Raises ProducerClosedError once the producer is closing."""
        with self._lock:
            if self.closing:
                raise ProducerClosedError(f"cannot send to {tp.topic}: the producer is closed")
            queue = self._queues.get(tp)
            if queue:
                future = queue[-1].try_append(timestamp, key, value, headers)
                if future is not None:
                    return future
        return None

    def append_new_batch(self, tp: TopicPartition, timestamp: int | None, key: bytes | None,
                         value: bytes | None, headers: Headers, reserved: int) -> tuple[FutureRecordMetadata, int]:
        """Append with ``reserved`` bytes reserved for a new batch. Returns the future and
        the bytes not used (another thread opened a batch meanwhile), to give back."""
        full_tp: TopicPartition | None = None
        with self._lock:
            if self.closing:
                self.pool.release(reserved)
                raise ProducerClosedError(f"cannot send to {tp.topic}: the producer is closed")
            queue = self._queues.setdefault(tp, deque())
            if queue:
                last = queue[-1]
                future = last.try_append(timestamp, key, value, headers)
                if future is not None:
                    return future, reserved
                full_tp = tp
            batch = ProducerBatch(tp, self.compression, self.batch_size, time.monotonic(),
                                  self.delivery_timeout_s, reserved)
            new_future = batch.try_append(timestamp, key, value, headers)
            assert new_future is not None  # the first record of a batch always fits
            queue.append(batch)
            self.incomplete.add(batch)
            wake = len(queue) == 1 or full_tp is not None and len(queue) == 2
        if full_tp is not None and self._on_batch_full is not None:
            self._on_batch_full(full_tp)
        if wake:
            # The sender has a timer for queued batches (linger_ms); wake it only when
            # this partition had nothing sendable, not for every batch of a burst.
            self._on_new_batch()
        return new_future, 0

    def reservation_for(self, record_size: int) -> int:
        """Bytes to reserve for a new batch holding a record of ``record_size``."""
        return max(self.batch_size, record_size)

    # ------------------------------------------------------------------ sender side
    def ready(self, now: float, sendable: Callable[[TopicPartition], bool]) -> tuple[list[TopicPartition], float]:
        """Partitions whose first batch may be sent now (and ``sendable(tp)`` agrees),
        and the seconds until the next batch becomes ready (linger or backoff)."""
        out: list[TopicPartition] = []
        wait = 3600.0
        force = self.flushing > 0 or self.closing
        with self._lock:
            for tp, queue in self._queues.items():
                if not queue:
                    continue
                head = queue[0]
                if head.retry_at > now:
                    wait = min(wait, head.retry_at - now)
                    continue
                due = head.created + self.linger_s
                if force or head.full or len(queue) > 1 or head.attempts > 0 or due <= now:
                    if sendable(tp):
                        out.append(tp)
                else:
                    wait = min(wait, due - now)
        return out, max(0.0, wait)

    def drain(self, tp: TopicPartition, now: float, max_batches: int, max_bytes: int) -> list[ProducerBatch]:
        """Take up to ``max_batches`` sendable batches (``max_bytes`` in total, at least one)
        from the front of the partition's queue; they are closed to appends."""
        out: list[ProducerBatch] = []
        total = 0
        force = self.flushing > 0 or self.closing
        with self._lock:
            queue = self._queues.get(tp)
            while queue and len(out) < max_batches:
                batch = queue[0]
                if batch.retry_at > now:
                    break
                if not (force or batch.full or len(queue) > 1 or batch.attempts > 0
                        or batch.created + self.linger_s <= now):
                    break
                size = batch.size()
                if out and (total + size > max_bytes or batch.solo or out[0].solo):
                    break
                if out and out[0].attempts > 0 and batch.attempts == 0:
                    break  # retried batches go out on their own (see Sender)
                queue.popleft()
                batch.full = True
                out.append(batch)
                total += size
        return out

    def reenqueue(self, batches: Iterable[ProducerBatch]) -> None:
        """Put batches back at the front of their queues, keeping their order."""
        by_tp: dict[TopicPartition, list[ProducerBatch]] = {}
        for batch in batches:
            by_tp.setdefault(batch.tp, []).append(batch)
        with self._lock:
            for tp, items in by_tp.items():
                queue = self._queues.setdefault(tp, deque())
                for batch in reversed(items):
                    queue.appendleft(batch)
                    self.incomplete.add(batch)

    def queued(self, tp: TopicPartition) -> list[ProducerBatch]:
        """The batches waiting in a partition's queue (a copy)."""
        with self._lock:
            return list(self._queues.get(tp, ()))

    def partitions(self) -> list[TopicPartition]:
        """Partitions that have queued batches."""
        with self._lock:
            return [tp for tp, queue in self._queues.items() if queue]

    def expire(self, now: float, keep: Callable[[ProducerBatch], bool]) -> list[ProducerBatch]:
        """Remove queued batches whose delivery deadline passed (unless ``keep(batch)``)."""
        out: list[ProducerBatch] = []
        with self._lock:
            for queue in self._queues.values():
                if queue and queue[0].deadline <= now:
                    kept: deque[ProducerBatch] = deque()
                    for batch in queue:
                        (out if batch.deadline <= now and not keep(batch) else kept).append(batch)
                    queue.clear()
                    queue.extend(kept)
        return out

    def remove_all(self) -> list[ProducerBatch]:
        """Take every queued batch out (force close)."""
        with self._lock:
            out = [batch for queue in self._queues.values() for batch in queue]
            for queue in self._queues.values():
                queue.clear()
        return out

    def has_queued(self) -> bool:
        """True while any batch waits to be sent."""
        with self._lock:
            return any(self._queues.values())

    def finished(self, batch: ProducerBatch) -> None:
        """A batch is done: forget it and give its memory back."""
        with self._lock:
            self.incomplete.discard(batch)
        self.pool.release(batch.reserved)
        batch.reserved = 0

    def incomplete_results(self) -> list[BatchResult]:
        """Results of every batch not yet done (what ``flush`` waits for)."""
        with self._lock:
            return [batch.result for batch in self.incomplete]
