"""The consumer's background fetching: one long-poll loop per assigned partition.

Each loop asks the partition's leader for records from its fetch offset (long
poll: ``fetch_max_wait_ms``/``fetch_min_bytes``, ``max_partition_fetch_bytes``),
buffers the raw batches (up to two fetches ahead), and moves on — so a consumer
loop rarely waits for a round trip. Batches are decoded only when ``poll`` takes
them, in the caller's ``poll``, and records before the position inside the first
batch (a fetch returns whole batches) are skipped there.

Leader changes are followed without the caller noticing: NOT_LEADER_OR_FOLLOWER,
leader-epoch and connection errors refresh metadata (with backoff) and the loop
fetches again from the same offset from the new leader — nothing skipped, nothing
read twice. A ``seek`` bumps the partition's generation: buffered data and an
answer still in flight for the old position are dropped.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatch

from raftlog.client.logs import get_logger
from raftlog.compression import CorruptPayload, DecompressedTooLarge
from raftlog.client.config import ConsumerConfig
from raftlog.client.connection import ConnectionPool
from raftlog.client.errors import (
    BrokerResponseError,
    CorruptRecordError,
    InconsistentTopicIdError,
    KafkaException,
    OffsetOutOfRangeError,
)
from raftlog.client.metadata import MetadataManager
from raftlog.client.serializers import BytesDeserializer, deserialize
from raftlog.client.types import ConsumerRecord, TopicPartition
from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import HEADER_SIZE, LOG_OVERHEAD, BatchHeader, crc_ok, plain_batch, read_header
from raftlog.v1 import broker_pb2

logger = get_logger("raftlog.client.consumer")

EARLIEST = -2
LATEST = -1

_LEADER_MOVED = frozenset({
    ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.LEADER_NOT_AVAILABLE,
    ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH, ErrorCode.NETWORK_EXCEPTION,
    ErrorCode.REQUEST_TIMED_OUT, ErrorCode.REPLICA_NOT_AVAILABLE,
})


@dataclass(slots=True)
class Chunk:
    """Batches fetched from ``start`` (a jump chunk only moves the position to ``start``)."""

    generation: int
    start: int
    data: bytes
    jump: bool = False


@dataclass
class PartitionState:
    """Fetch and consume positions of one assigned partition."""

    tp: TopicPartition
    position: int | None = None  # next offset poll returns; None: reset first
    fetch_offset: int | None = None  # next offset to fetch (ahead of position by what is buffered)
    reset_to: int | None = None  # EARLIEST/LATEST for a pending seek_to_beginning/end
    generation: int = 0
    paused: bool = False
    chunks: deque[Chunk] = field(default_factory=deque)
    buffered_bytes: int = 0
    records: deque[ConsumerRecord] = field(default_factory=deque)
    error: KafkaException | None = None
    topic_id: str = ""  # the topic id first seen for this assignment ("": not yet)
    high_watermark: int = -1
    task: asyncio.Task[None] | None = None
    room: asyncio.Event = field(default_factory=asyncio.Event)


class Fetcher:
    """Fetch loops, buffers and decoding for one consumer (on its event loop)."""

    def __init__(self, config: ConsumerConfig, metadata: MetadataManager, pool: ConnectionPool) -> None:
        self.config = config
        self.metadata = metadata
        self.pool = pool
        self.states: dict[TopicPartition, PartitionState] = {}
        self.data_ready = asyncio.Event()
        self.closed = False
        self._rng = random.Random()
        self._order: list[TopicPartition] = []
        self._next = 0
        self.buffer_limit = max(2 * config.max_partition_fetch_bytes, 1 << 16)
        # A compressed batch may decompress to at most this (decompression bombs).
        self._max_batch_bytes = max(config.fetch_max_bytes, 1 << 20)
        # Bytes in, bytes out: records are built final at decode time (no second pass).
        self._raw = type(config.key_de) is BytesDeserializer and type(config.value_de) is BytesDeserializer

    # ------------------------------------------------------------------ assignment
    def assign(self, partitions: list[TopicPartition]) -> None:
        """Fetch exactly these partitions (positions of ones kept stay as they are)."""
        wanted = list(dict.fromkeys(partitions))
        for tp in list(self.states):
            if tp not in wanted:
                self._stop(self.states.pop(tp))
        for tp in wanted:
            if tp not in self.states:
                self.states[tp] = PartitionState(tp)
                self._start(self.states[tp])
        self._order = list(self.states)
        self.metadata.add_topics({tp.topic for tp in wanted})

    def _start(self, st: PartitionState) -> None:
        st.task = asyncio.ensure_future(self._loop(st))

    def _stop(self, st: PartitionState) -> None:
        if st.task is not None:
            st.task.cancel()
            st.task = None

    def restart(self, st: PartitionState) -> None:
        """Drop buffered data and the fetch in flight (after a seek)."""
        st.generation += 1
        st.chunks.clear()
        st.records.clear()
        st.buffered_bytes = 0
        st.error = None
        self._stop(st)
        if not self.closed:
            self._start(st)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Next poll returns ``tp`` from ``offset``."""
        st = self.states[tp]
        st.position = offset
        st.fetch_offset = offset
        st.reset_to = None
        self.restart(st)

    def seek_to(self, tp: TopicPartition, where: int) -> None:
        """Reset to EARLIEST or LATEST (looked up lazily, by the fetch loop)."""
        st = self.states[tp]
        st.position = None
        st.fetch_offset = None
        st.reset_to = where
        self.restart(st)

    async def close(self) -> None:
        """Stop every fetch loop."""
        self.closed = True
        tasks = [st.task for st in self.states.values() if st.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ offsets
    async def list_offset(self, tp: TopicPartition, timestamp: int, timeout_s: float | None = None) -> tuple[int, int]:
        """ListOffsets at the leader, following leader changes, until ``timeout_s``
        (``request_timeout_ms`` by default): (offset, timestamp)."""
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.config.request_timeout_ms / 1000)
        attempts = 0
        while True:
            leader = self.metadata.leader_for(tp)
            error: BrokerResponseError | None = None
            if leader is not None:
                try:
                    response = await self.pool.call(
                        leader[1], "broker", "ListOffsets",
                        broker_pb2.ListOffsetsRequest(topic=tp.topic, partition=tp.partition, timestamp=timestamp),
                        max(0.05, deadline - time.monotonic()),
                    )
                    return response.offset, response.timestamp
                except BrokerResponseError as exc:
                    if not exc.retriable:
                        raise
                    error = exc
                    self._leader_error(tp, exc)
            else:
                self.metadata.add_topics([tp.topic])
                self.metadata.request_update()
            attempts += 1
            if time.monotonic() >= deadline:
                if error is not None:
                    raise error
                from raftlog.client.errors import LeaderNotAvailableError

                raise LeaderNotAvailableError(f"no leader known for {tp.topic}-{tp.partition}")
            await self.metadata.maybe_refresh()
            await asyncio.sleep(min(self._backoff(attempts), max(0.0, deadline - time.monotonic())))

    async def offset_for_time(self, tp: TopicPartition, timestamp: int) -> tuple[int, int] | None:
        """Kafka's offsets_for_times for one partition: the first record whose timestamp
        is >= ``timestamp``. The broker answers with the first *batch* that has one; the
        record inside it is found here by reading that batch."""
        offset, found_ts = await self.list_offset(tp, timestamp)
        if offset < 0:
            return None
        leader = self.metadata.leader_for(tp)
        if leader is None:
            return offset, found_ts
        try:
            response = await self.pool.call(
                leader[1], "broker", "Fetch",
                broker_pb2.FetchRequest(topic=tp.topic, partition=tp.partition, offset=offset, max_bytes=1,
                                        max_wait_ms=0, min_bytes=0, current_leader_epoch=-1),
                self.config.request_timeout_ms / 1000,
            )
        except BrokerResponseError:
            return offset, found_ts
        try:
            for header, view in _batches(tp, response.records, offset):
                for r in DefaultRecordBatch(plain_batch(header, view, self._max_batch_bytes)):
                    if r.offset >= offset and r.timestamp >= timestamp:
                        return r.offset, r.timestamp
        except (KafkaException, CorruptPayload, DecompressedTooLarge, CorruptRecordException, ValueError,
                IndexError):
            pass  # a batch that does not decode: the broker's answer (its first offset) stands
        return offset, found_ts

    def _backoff(self, attempts: int) -> float:
        base = self.config.retry_backoff_ms / 1000 * (2 ** max(0, attempts - 1))
        capped: float = min(base, self.config.retry_backoff_max_ms / 1000)
        return capped * (0.8 + 0.4 * self._rng.random())

    def _leader_error(self, tp: TopicPartition, error: BrokerResponseError) -> None:
        if error.code == ErrorCode.NOT_LEADER_OR_FOLLOWER and error.leader_id > 0:
            self.metadata.leader_moved(tp, error.leader_id)
        else:
            self.metadata.request_update()

    async def _reset(self, st: PartitionState) -> None:
        where = st.reset_to
        if where is None:
            policy = self.config.auto_offset_reset
            if policy == "none":
                raise OffsetOutOfRangeError(
                    f"{st.tp.topic}-{st.tp.partition} has no position and auto_offset_reset='none'")
            where = EARLIEST if policy == "earliest" else LATEST
        offset, _ = await self.list_offset(st.tp, where, timeout_s=3600.0)
        st.reset_to = None
        st.fetch_offset = offset
        if st.position is None:
            st.position = offset
        else:
            self._push(st, Chunk(st.generation, offset, b"", jump=True))
        logger.debug("offset reset", topic=st.tp.topic, partition=st.tp.partition, offset=offset,
                  strategy="earliest" if where == EARLIEST else "latest")

    # ------------------------------------------------------------------ fetch loop
    async def _loop(self, st: PartitionState) -> None:
        tp = st.tp
        generation = st.generation
        attempts = 0
        wait_s = self.config.fetch_max_wait_ms / 1000
        while not self.closed and st.generation == generation:
            if st.paused or st.buffered_bytes >= self.buffer_limit:
                st.room.clear()
                await st.room.wait()
                continue
            try:
                if st.fetch_offset is None:
                    await self._reset(st)
                    continue
                leader = self.metadata.leader_for(tp)
                if leader is None:
                    self.metadata.add_topics([tp.topic])
                    self.metadata.request_update()
                    await self.metadata.maybe_refresh()
                    attempts += 1
                    await asyncio.sleep(self._backoff(attempts))
                    continue
                if not self._same_topic(st):
                    return
                request = broker_pb2.FetchRequest(
                    topic=tp.topic, partition=tp.partition, offset=st.fetch_offset,
                    max_bytes=self.config.max_partition_fetch_bytes, max_wait_ms=self.config.fetch_max_wait_ms,
                    min_bytes=self.config.fetch_min_bytes, current_leader_epoch=leader[2], topic_id=st.topic_id,
                )
                response = await self.pool.call(leader[1], "broker", "Fetch", request,
                                                wait_s + self.config.request_timeout_ms / 1000)
            except OffsetOutOfRangeError as exc:
                if st.generation != generation:
                    return
                attempts += 1
                await self._out_of_range(st, exc)
                await asyncio.sleep(self._backoff(1) if st.error is None else self._backoff(attempts))
                continue
            except BrokerResponseError as exc:
                if st.generation != generation:
                    return
                attempts += 1
                if exc.code in _LEADER_MOVED:
                    self._leader_error(tp, exc)
                    logger.debug("fetch: leader moved or unreachable; retrying", topic=tp.topic, partition=tp.partition,
                              error=str(exc))
                elif not exc.retriable:
                    self._set_error(st, exc)
                await self.metadata.maybe_refresh()
                await asyncio.sleep(self._backoff(attempts))
                continue
            if st.generation != generation:
                return
            attempts = 0
            st.high_watermark = response.high_watermark
            data = response.records
            if data:
                try:
                    next_offset = _next_offset(data)
                except KafkaError:
                    # A header that does not parse: hand the data to poll, which returns
                    # the good batches before it and then raises CorruptRecordError;
                    # fetching resumes after a seek.
                    self._push(st, Chunk(generation, st.fetch_offset, data))
                    return
                if next_offset > st.fetch_offset:
                    self._push(st, Chunk(generation, st.fetch_offset, data))
                    st.fetch_offset = next_offset

    def _same_topic(self, st: PartitionState) -> bool:
        """Whether the topic is still the one this assignment started reading: a topic
        deleted and re-created under the same name has a new id (KIP-516), and reading on
        would silently mix two topics' offsets. On a change: a sticky
        InconsistentTopicIdError (assign the partition afresh to read the new topic)."""
        meta = self.metadata.cluster.topics.get(st.tp.topic)
        if meta is None or not meta.topic_id or meta.error_code:
            return True
        if not st.topic_id:
            st.topic_id = meta.topic_id
        elif meta.topic_id != st.topic_id:
            self._set_error(st, InconsistentTopicIdError(
                f"{st.tp.topic}-{st.tp.partition}: topic {st.tp.topic!r} was deleted and re-created"
                f" (id {st.topic_id} is now {meta.topic_id}); position {st.position}",
            ))
            return False
        return True

    async def _out_of_range(self, st: PartitionState, error: OffsetOutOfRangeError) -> None:
        """Reset as ``auto_offset_reset`` says — unless the offset is in range after
        all (the answer came from a replica that was behind): then just fetch again."""
        earliest, _ = await self.list_offset(st.tp, EARLIEST)
        latest, _ = await self.list_offset(st.tp, LATEST)
        offset = st.fetch_offset if st.fetch_offset is not None else -1
        if earliest <= offset <= latest:
            return
        policy = self.config.auto_offset_reset
        if policy == "none":
            self._set_error(st, error)
            return
        target = earliest if policy == "earliest" else latest
        logger.info("fetch offset out of range; resetting", topic=st.tp.topic, partition=st.tp.partition,
                 offset=offset, reset_to=target, policy=policy)
        st.fetch_offset = target
        self._push(st, Chunk(st.generation, target, b"", jump=True))

    def _set_error(self, st: PartitionState, error: KafkaException) -> None:
        st.error = error
        self.data_ready.set()

    def _push(self, st: PartitionState, chunk: Chunk) -> None:
        st.chunks.append(chunk)
        st.buffered_bytes += len(chunk.data)
        self.data_ready.set()

    # ------------------------------------------------------------------ poll side
    def has_data(self) -> bool:
        """True when poll could return something (records or an error) now."""
        return any((st.records or st.chunks or st.error) and not st.paused for st in self.states.values())

    def collect(self, max_records: int) -> list[ConsumerRecord]:
        """Up to ``max_records`` records, round robin over partitions; raises a
        partition's error (before returning nothing) — an error met after some records
        were collected is raised by the next call."""
        out: list[ConsumerRecord] = []
        order = self._order
        if not order:
            return out
        count = len(order)
        start = self._next % count
        for i in range(count):
            if len(out) >= max_records:
                break
            st = self.states.get(order[(start + i) % count])
            if st is None or st.paused:
                continue
            self._take(st, out, max_records)
            if st.error is not None and len(out) < max_records:
                # Raised once every record before it has been returned (by this call or
                # an earlier one): _take stops only at the error or a full ``out``.
                # Sticky until a seek.
                if out:
                    break
                raise st.error
        self._next = start + 1
        if not self.has_data():
            self.data_ready.clear()
        return out

    def _take(self, st: PartitionState, out: list[ConsumerRecord], max_records: int) -> None:
        while len(out) < max_records:
            if not st.records:
                if not st.chunks or st.error is not None:
                    return
                chunk = st.chunks.popleft()
                st.buffered_bytes -= len(chunk.data)
                st.room.set()
                if chunk.generation != st.generation:
                    continue
                if chunk.jump:
                    st.position = chunk.start
                    continue
                try:
                    self._decode(st, chunk)
                except KafkaException as exc:
                    st.error = exc  # the records of the batches before it are still taken
                continue
            record = st.records[0]
            if st.position is not None and record.offset < st.position:
                st.records.popleft()
                continue
            try:
                out.append(record if self._raw else self._deserialize(record))
            except KafkaException as exc:
                st.error = exc  # sticky until a seek; the position stays at this record
                return
            st.records.popleft()
            st.position = record.offset + 1

    def _decode(self, st: PartitionState, chunk: Chunk) -> None:
        """Decode a chunk's batches into ``st.records``, batch by batch: a batch that
        fails its CRC (``check_crcs``) or does not decode adds none of its records and
        raises CorruptRecordError naming its offset — after every good batch before it
        went into ``st.records``."""
        tp = st.tp
        position = st.position if st.position is not None else chunk.start
        check = self.config.check_crcs
        append = st.records.extend
        topic, partition, raw = tp.topic, tp.partition, self._raw
        for header, view in _batches(tp, chunk.data, position):
            if header.next_offset <= position:
                continue
            bad_offset = max(header.base_offset, position)
            if check and not crc_ok(view, header):
                raise _corrupt(tp, bad_offset, f"CRC {header.crc:#010x} does not match its contents")
            if header.is_control:
                continue
            try:
                batch = DefaultRecordBatch(plain_batch(header, view, self._max_batch_bytes))
                ts_type = batch.timestamp_type
                decoded: list[ConsumerRecord] = []
                add = decoded.append
                for r in batch:
                    if r.offset < position:
                        continue
                    if raw:
                        key, value = r.key, r.value
                        add(ConsumerRecord(topic, partition, r.offset, key, value, r.headers, r.timestamp, ts_type,
                                           -1 if key is None else len(key), -1 if value is None else len(value)))
                    else:
                        add(ConsumerRecord(topic, partition, r.offset, r.key, r.value, r.headers, r.timestamp,
                                           ts_type))
            except (CorruptPayload, DecompressedTooLarge, CorruptRecordException, ValueError, IndexError) as exc:
                raise _corrupt(tp, bad_offset, f"records do not decode: {exc}") from exc
            append(decoded)

    def _deserialize(self, raw: ConsumerRecord) -> ConsumerRecord:
        key_de, value_de = self.config.key_de, self.config.value_de
        key, value = raw.key, raw.value
        return ConsumerRecord(
            raw.topic, raw.partition, raw.offset,
            key if key is None else deserialize(key_de, raw.topic, raw.partition, raw.offset, key, "key"),
            deserialize(value_de, raw.topic, raw.partition, raw.offset, value, "value"),
            raw.headers, raw.timestamp, raw.timestamp_type,
            -1 if key is None else len(key), -1 if value is None else len(value),
        )


def _corrupt(tp: TopicPartition, offset: int, why: str) -> CorruptRecordError:
    return CorruptRecordError(f"{tp.topic}-{tp.partition}: batch at offset {offset} is corrupt: {why}",
                              topic=tp.topic, partition=tp.partition, offset=offset)


def _batches(tp: TopicPartition, data: bytes, position: int) -> Iterator[tuple[BatchHeader, memoryview]]:
    """The batches of a fetch answer; a header that does not parse is a corrupt batch
    at the offset the consumer is at."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        try:
            header = read_header(view, pos)
        except KafkaError as exc:
            raise _corrupt(tp, position, exc.info.message) from exc
        end = pos + header.size
        if end > len(view) or header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
            if pos == 0:
                raise _corrupt(tp, max(header.base_offset, position), "batch runs past the fetched data")
            return  # a fetch may end with a partial batch
        yield header, view[pos:end]
        position = max(position, header.next_offset)
        pos = end


def _next_offset(data: bytes) -> int:
    """The offset after the last batch of a fetch answer (headers only, no decoding)."""
    view = memoryview(data)
    pos = 0
    next_offset = -1
    while pos < len(view):
        header = read_header(view, pos)
        next_offset = header.next_offset
        pos += header.size
    return next_offset
