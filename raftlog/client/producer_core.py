"""The one producer implementation behind ``Producer`` (blocking) and ``AIOProducer``.

Everything that decides something lives here and in the modules it composes —
serialization, partitioning, batching, sending, retries, idempotence. The two
front ends only differ in how they wait (block a thread, or await) for the two
things ``send`` may have to wait for: a topic's metadata and buffer memory.
The core's asyncio parts (metadata, sender) run on one event loop: the caller's
(``AIOProducer``) or a private loop thread (``Producer``); appends are thread-safe.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from raftlog.client.logs import get_logger
from raftlog.client.accumulator import BufferPool, RecordAccumulator
from raftlog.client.config import ProducerConfig
from raftlog.client.connection import ConnectionPool
from raftlog.client.errors import (
    KafkaTimeoutError,
    ProducerClosedError,
    RecordTooLargeError,
    SerializationError,
    UnknownServerError,
    UnknownTopicOrPartitionError,
)
from raftlog.client.futures import FutureRecordMetadata
from raftlog.client.metadata import MetadataManager, TopicMetadata
from raftlog.client.partitioner import DefaultPartitioner
from raftlog.client.sender import Sender
from raftlog.client.serializers import BytesSerializer, serialize
from raftlog.client.types import Headers, TopicPartition

logger = get_logger("raftlog.client.producer")

HeadersArg = list[tuple[str, Any]] | Mapping[str, Any] | None


class ProducerCore:
    """State and logic of one producer. Create it on the event loop it will use."""

    def __init__(self, config: ProducerConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.loop_thread_id = threading.get_ident()
        self.pool = ConnectionPool(config.max_message_size)
        self.metadata = MetadataManager(config, self.pool)
        self.partitioner = DefaultPartitioner()
        self.buffer = BufferPool(config.buffer_memory)
        self.accumulator = RecordAccumulator(
            batch_size=config.batch_size, compression=config.compression_codec, linger_ms=config.linger_ms,
            delivery_timeout_ms=config.delivery_timeout_ms, pool=self.buffer, on_new_batch=self._wake_sender,
            on_batch_full=self._batch_full,
        )
        self.sender = Sender(config, self.accumulator, self.metadata, self.pool)
        self.sender_task: asyncio.Task[None] | None = None
        self.closed = False
        self._wake_pending = False
        self.max_block_s = config.max_block_ms / 1000
        # bytes pass through the default serializer unchanged: skip the call
        self._raw_key = type(config.key_ser) is BytesSerializer
        self._raw_value = type(config.value_ser) is BytesSerializer
        self._tps: dict[tuple[str, int], TopicPartition] = {}

    # ------------------------------------------------------------------ lifecycle (on the loop)
    async def start(self) -> None:
        """Learn the cluster from the bootstrap list (NoBrokersAvailable when nobody
        answers) and start the sender."""
        timeout_s = min(self.config.max_block_ms, self.config.request_timeout_ms) / 1000
        await self.metadata.refresh(timeout_s)
        self.sender_task = asyncio.ensure_future(self._run_sender())

    async def _run_sender(self) -> None:
        try:
            await self.sender.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - never leave records pending forever
            logger.exception("producer sender crashed; failing pending records")
            self.accumulator.closing = True
            await self.sender.abort(UnknownServerError(f"producer I/O failed: {type(exc).__name__}: {exc}"))

    async def flush(self, timeout_s: float | None) -> None:
        """Send everything now and wait until each record sent before is delivered or
        failed; KafkaTimeoutError (nothing lost, still pending) after ``timeout_s``."""
        results = self.accumulator.incomplete_results()
        if not results:
            return
        self.accumulator.flushing += 1
        self._wake_sender()
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        try:
            for result in results:
                if result.done:
                    continue
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise self._flush_timeout(timeout_s)
                try:
                    await asyncio.wait_for(result.wait_async(), remaining)
                except TimeoutError:
                    raise self._flush_timeout(timeout_s) from None
        finally:
            self.accumulator.flushing -= 1

    def _flush_timeout(self, timeout_s: float | None) -> KafkaTimeoutError:
        pending = sum(1 for r in self.accumulator.incomplete_results() if not r.done)
        return KafkaTimeoutError(f"flush did not complete within {timeout_s}s: {pending} batch(es) still pending")

    async def close(self, timeout_s: float | None) -> None:
        """Stop accepting records, deliver what was accepted (up to ``timeout_s``), then
        fail whatever is left — every future ends delivered or failed."""
        if self.closed:
            if self.sender_task is not None:
                await asyncio.shield(self.sender_task)
            return
        self.closed = True
        self.accumulator.closing = True
        self._wake_sender()
        task = self.sender_task
        try:
            if task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout_s)
                except TimeoutError:
                    logger.warning("producer close timed out; failing the records not yet delivered",
                                timeout_s=timeout_s)
                    await self.sender.abort(ProducerClosedError(
                        f"the producer was closed (timeout {timeout_s}s) before the record was delivered"))
                    self.sender.wake()
                    await task
            else:
                await self.sender.abort(ProducerClosedError("the producer was closed before it started"))
        finally:
            await self.pool.close()

    # ------------------------------------------------------------------ send (any thread)
    def check_open(self) -> None:
        """Raise ProducerClosedError after close()."""
        if self.closed or self.accumulator.closing:
            raise ProducerClosedError("cannot send: the producer is closed")

    def serialize(self, topic: str, key: Any, value: Any) -> tuple[bytes | None, bytes | None]:
        """Key and value bytes; SerializationError naming the topic, field and cause."""
        if key is None or (type(key) is bytes and self._raw_key):
            key_bytes = key
        else:
            key_bytes = serialize(self.config.key_ser, topic, key, "key")
        if value is None and self._raw_value or type(value) is bytes and self._raw_value:
            value_bytes = value
        else:
            value_bytes = serialize(self.config.value_ser, topic, value, "value")
        return key_bytes, value_bytes

    def headers(self, headers: HeadersArg) -> Headers:
        """Headers as a list of (str, bytes | None); SerializationError for bad ones."""
        if not headers:
            return []
        items = headers.items() if isinstance(headers, Mapping) else headers
        out: Headers = []
        for item in items:
            try:
                name, value = item
            except (TypeError, ValueError):
                raise SerializationError(f"header {item!r} is not a (name, value) pair") from None
            if not isinstance(name, str):
                raise SerializationError(f"header name {name!r} must be str, not {type(name).__name__}")
            if isinstance(value, str):
                value = value.encode("utf-8")
            elif isinstance(value, (bytearray, memoryview)):
                value = bytes(value)
            elif value is not None and not isinstance(value, bytes):
                raise SerializationError(
                    f"header {name!r} value must be bytes, str or None, not {type(value).__name__}")
            out.append((name, value))
        return out

    def record_size(self, key: bytes | None, value: bytes | None, headers: Headers) -> int:
        """Upper bound of the record's size in a batch of its own; RecordTooLargeError
        when over ``max_request_size`` or ``buffer_memory`` (refused before sending)."""
        size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
        if size > self.config.max_request_size:
            raise RecordTooLargeError(
                f"the record is {size} bytes when serialized, larger than max_request_size="
                f"{self.config.max_request_size}")
        if size > self.config.buffer_memory:
            raise RecordTooLargeError(
                f"the record is {size} bytes when serialized, larger than buffer_memory={self.config.buffer_memory}")
        return size

    def cached_topic(self, topic: str) -> TopicMetadata | None:
        """The topic's metadata when already known."""
        return self.metadata.topic(topic)

    async def wait_topic(self, topic: str) -> TopicMetadata:
        """The topic's metadata, waiting up to ``max_block_ms`` (on the loop)."""
        return await self.metadata.wait_for_topic(topic, self.max_block_s)

    def choose_partition(self, meta: TopicMetadata, key: bytes | None, partition: int | None) -> TopicPartition:
        """The partition for a record: the one given, the custom partitioner's, or
        Kafka's default (murmur2 of the key, sticky without one)."""
        count = len(meta.partitions)
        if partition is None and key is None and self.config.partitioner is None:
            sticky = self.partitioner.sticky(meta.name)
            if sticky is not None and sticky < count:
                return self._tp(meta.name, sticky)
        if partition is not None:
            if not isinstance(partition, int) or not 0 <= partition < count:
                raise UnknownTopicOrPartitionError(
                    f"partition {partition!r} of topic {meta.name!r} does not exist (it has {count} partitions)")
            return self._tp(meta.name, partition)
        available = meta.available()
        custom = self.config.partitioner
        if custom is not None:
            chosen = custom(key, sorted(meta.partitions), available)
        else:
            chosen = self.partitioner.partition(meta.name, key, count, available)
        return self._tp(meta.name, chosen)

    def _tp(self, topic: str, partition: int) -> TopicPartition:
        tp = self._tps.get((topic, partition))
        if tp is None:
            tp = self._tps[(topic, partition)] = TopicPartition(topic, partition)
        return tp

    def append_fast(self, tp: TopicPartition, timestamp_ms: int | None, key: bytes | None, value: bytes | None,
                    headers: Headers) -> FutureRecordMetadata | None:
        """Append to the open batch; None when a new batch (and memory) is needed."""
        return self.accumulator.try_append(tp, timestamp_ms, key, value, headers)

    def append_reserved(self, tp: TopicPartition, timestamp_ms: int | None, key: bytes | None,
                        value: bytes | None, headers: Headers, reserved: int) -> FutureRecordMetadata:
        """Append into a new batch for which ``reserved`` bytes were taken from the buffer."""
        future, unused = self.accumulator.append_new_batch(tp, timestamp_ms, key, value, headers, reserved)
        self.buffer.release(unused)
        return future

    def _batch_full(self, tp: TopicPartition) -> None:
        meta = self.metadata.topic(tp.topic)
        if meta is not None:
            self.partitioner.batch_closed(tp.topic, tp.partition, meta.num_partitions, meta.available())

    def _wake_sender(self) -> None:
        if threading.get_ident() == self.loop_thread_id:
            self.sender.wake()
            return
        if self._wake_pending:
            return
        self._wake_pending = True

        def wake() -> None:
            self._wake_pending = False
            self.sender.wake()

        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(wake)

    def partitions_for(self, meta: TopicMetadata) -> set[int]:
        """All partition ids of a topic."""
        return set(meta.partitions)

