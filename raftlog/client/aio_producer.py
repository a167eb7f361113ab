"""``AIOProducer``: the asyncio producer (runs the shared core on the caller's loop)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raftlog.client.config import ProducerConfig, build_config
from raftlog.client.errors import BufferExhaustedError, IllegalStateError
from raftlog.client.futures import DeliveryCallback, FutureRecordMetadata
from raftlog.client.producer_core import HeadersArg, ProducerCore
from raftlog.client.types import RecordMetadata


class AIOProducer:
    """Produce records from asyncio (aiokafka's shape)::

        async with AIOProducer(bootstrap_servers="localhost:9092") as producer:
            future = await producer.send("orders", b"value", key=b"k")
            metadata = await future            # or: await producer.send_and_wait(...)

    Settings as :class:`~raftlog.Producer` (kafka-python names, or a dotted dict).
    ``await start()`` (or ``async with``) learns the cluster; ``send`` waits (without
    blocking the loop) for metadata and buffer memory, then returns the record's
    future; ``flush`` and ``close`` as in the blocking producer.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, **configs: Any) -> None:
        self.config: ProducerConfig = build_config(ProducerConfig, config, configs)
        self._core: ProducerCore | None = None

    async def start(self) -> None:
        """Connect: fetch metadata from the bootstrap list (NoBrokersAvailable when no
        node answers) and start the background sender. Idempotent."""
        if self._core is None:
            core = ProducerCore(self.config)
            await core.start()
            self._core = core

    @property
    def core(self) -> ProducerCore:
        """The shared producer core (after :meth:`start`)."""
        if self._core is None:
            raise IllegalStateError("AIOProducer is not started: use 'async with' or 'await producer.start()'")
        return self._core

    async def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        headers: HeadersArg = None,
        timestamp_ms: int | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> FutureRecordMetadata:
        """Hand a record to the producer; returns its future (``await`` it for the
        :class:`RecordMetadata`). Raises at once — and accepts nothing — for a closed
        producer, a value the serializer rejects, a record over ``max_request_size``,
        an unknown topic (after waiting ``max_block_ms`` for metadata) or a full buffer.
        ``on_delivery(err, metadata)`` runs on delivery or failure."""
        if self._core is None:
            await self.start()
        core = self.core
        core.check_open()
        key_bytes, value_bytes = core.serialize(topic, key, value)
        record_headers = core.headers(headers)
        meta = core.cached_topic(topic) or await core.wait_topic(topic)
        tp = core.choose_partition(meta, key_bytes, partition)
        future = core.append_fast(tp, timestamp_ms, key_bytes, value_bytes, record_headers)
        if future is None:
            size = core.record_size(key_bytes, value_bytes, record_headers)
            reserve = core.accumulator.reservation_for(size)
            if not core.buffer.try_reserve(reserve):
                if not self.config.block_on_buffer_full:
                    raise BufferExhaustedError(f"buffer_memory={self.config.buffer_memory} is full")
                await core.buffer.reserve_async(reserve, core.max_block_s)
            future = core.append_reserved(tp, timestamp_ms, key_bytes, value_bytes, record_headers, reserve)
        if on_delivery is not None:
            future.add_delivery_callback(on_delivery)
        return future

    async def send_and_wait(self, topic: str, value: Any = None, key: Any = None, partition: int | None = None,
                            headers: HeadersArg = None, timestamp_ms: int | None = None) -> RecordMetadata:
        """``send`` and wait for the record's metadata (raises the delivery error)."""
        future = await self.send(topic, value, key, partition, headers, timestamp_ms)
        return await future

    async def flush(self, timeout: float | None = None) -> None:
        """Send every buffered record now and wait until each is delivered or failed;
        KafkaTimeoutError after ``timeout`` seconds (records stay pending, none lost)."""
        if self._core is not None:
            await self._core.flush(timeout)

    async def partitions_for(self, topic: str) -> set[int]:
        """The partition ids of ``topic`` (waits up to ``max_block_ms`` for its metadata)."""
        if self._core is None:
            await self.start()
        core = self.core
        meta = core.cached_topic(topic) or await core.wait_topic(topic)
        return core.partitions_for(meta)

    def metrics(self) -> dict[str, int]:
        """Counters of the producer's I/O (see :meth:`raftlog.Producer.metrics`)."""
        return dict(self.core.sender.stats)

    async def close(self, timeout: float | None = None) -> None:
        """Stop accepting records and deliver what was accepted; after ``timeout``
        seconds the rest fail with ProducerClosedError (never silently dropped).
        Without a timeout, bounded by ``delivery_timeout_ms``. Idempotent."""
        if self._core is not None:
            await self._core.close(timeout)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._core is not None and self._core.closed

    async def __aenter__(self) -> AIOProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
