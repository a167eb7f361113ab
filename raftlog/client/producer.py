"""``Producer``: the blocking producer (kafka-python / confluent-kafka shape).

It runs the shared :class:`~raftlog.client.producer_core.ProducerCore` on a private
event-loop thread; ``send`` appends in the caller's thread (the record is encoded
there) and only crosses to the loop thread to wait for metadata it does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raftlog.client.config import ProducerConfig, build_config
from raftlog.client.errors import BufferExhaustedError, ProducerClosedError
from raftlog.client.futures import DeliveryCallback, FutureRecordMetadata
from raftlog.client.loop_thread import LoopThread
from raftlog.client.producer_core import HeadersArg, ProducerCore


class Producer:
    """Send records to raftlog topics. Thread-safe; one per application is typical::

        with Producer(bootstrap_servers="localhost:9092", value_serializer=StringSerializer()) as producer:
            future = producer.send("orders", "hello", key=b"customer-1")
            print(future.get(timeout=10))      # RecordMetadata(topic, partition, offset, timestamp)

    Settings are Kafka's producer configs in kafka-python's spelling, or a
    confluent-kafka style dict (``Producer({"bootstrap.servers": ..., "linger.ms": 5})``):
    ``bootstrap_servers`` (list or "h1:p1,h2:p2"), ``acks`` (0, 1, "all" — default all),
    ``enable_idempotence`` (default on), ``linger_ms``, ``batch_size``,
    ``max_request_size``, ``buffer_memory``, ``max_block_ms``, ``block_on_buffer_full``,
    ``max_in_flight_requests_per_connection``, ``retries``, ``retry_backoff_ms``,
    ``delivery_timeout_ms``, ``request_timeout_ms``, ``compression_type`` ("gzip"; "lz4",
    "zstd", "snappy" with cramjam installed), ``key_serializer``, ``value_serializer``,
    ``partitioner``. The constructor contacts the bootstrap list and raises
    NoBrokersAvailable when no node answers.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, **configs: Any) -> None:
        self.config: ProducerConfig = build_config(ProducerConfig, config, configs)
        self._thread = LoopThread.shared()
        self._core: ProducerCore = self._thread.run(self._make_core(), what="connecting the producer")

    async def _make_core(self) -> ProducerCore:
        core = ProducerCore(self.config)
        try:
            await core.start()
        except BaseException:
            await core.pool.close()
            raise
        return core

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        headers: HeadersArg = None,
        timestamp_ms: int | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> FutureRecordMetadata:
        """Hand a record to the producer and return its future (``.get(timeout)``
        gives the :class:`RecordMetadata`). Records are batched per partition and sent
        in the background. Raises at once — and accepts nothing — for a closed
        producer (ProducerClosedError), a key/value the serializer rejects
        (SerializationError), a record over ``max_request_size`` (RecordTooLargeError),
        a topic the cluster does not know after ``max_block_ms``
        (UnknownTopicOrPartitionError), or a buffer that stays full for ``max_block_ms``
        (BufferExhaustedError). ``on_delivery(err, metadata)`` runs once the record is
        delivered (err None) or failed, on the producer's I/O thread."""
        core = self._core
        core.check_open()
        key_bytes, value_bytes = core.serialize(topic, key, value)
        record_headers = core.headers(headers)
        meta = core.cached_topic(topic)
        if meta is None:
            meta = self._thread.run(core.wait_topic(topic), core.max_block_s + 5, f"metadata for {topic!r}")
        tp = core.choose_partition(meta, key_bytes, partition)
        future = core.append_fast(tp, timestamp_ms, key_bytes, value_bytes, record_headers)
        if future is None:
            size = core.record_size(key_bytes, value_bytes, record_headers)
            reserve = core.accumulator.reservation_for(size)
            if not core.buffer.try_reserve(reserve):
                if not self.config.block_on_buffer_full:
                    raise BufferExhaustedError(f"buffer_memory={self.config.buffer_memory} is full")
                if self._thread.in_loop_thread():
                    raise BufferExhaustedError(
                        f"buffer_memory={self.config.buffer_memory} is full, and a delivery callback cannot wait"
                        " for it (that would block the thread that frees it)")
                core.buffer.reserve(reserve, core.max_block_s)
            future = core.append_reserved(tp, timestamp_ms, key_bytes, value_bytes, record_headers, reserve)
        if on_delivery is not None:
            future.add_delivery_callback(on_delivery)
        return future

    def produce(self, topic: str, value: Any = None, key: Any = None, partition: int | None = None,
                on_delivery: DeliveryCallback | None = None, timestamp: int | None = None,
                headers: HeadersArg = None) -> FutureRecordMetadata:
        """confluent-kafka's spelling of :meth:`send` (``timestamp`` in ms)."""
        return self.send(topic, value, key, partition, headers, timestamp, on_delivery)

    def flush(self, timeout: float | None = None) -> None:
        """Send every buffered record now and block until each is delivered or failed;
        KafkaTimeoutError after ``timeout`` seconds (records stay pending, none lost);
        ProducerClosedError after close()."""
        if self._core.closed:
            raise ProducerClosedError("cannot flush: the producer is closed")
        self._thread.run(self._core.flush(timeout), None, "flush")

    def partitions_for(self, topic: str) -> set[int]:
        """The partition ids of ``topic`` (waits up to ``max_block_ms`` for its metadata)."""
        meta = self._core.cached_topic(topic) or self._thread.run(
            self._core.wait_topic(topic), self._core.max_block_s + 5, f"metadata for {topic!r}")
        return self._core.partitions_for(meta)

    def metrics(self) -> dict[str, int]:
        """Counters of the producer's I/O: requests, request_errors, batches_sent,
        batches_retried, batches_split, batches_failed, records_sent, epoch_bumps."""
        return dict(self._core.sender.stats)

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting records and deliver what was accepted; after ``timeout``
        seconds whatever is left fails with ProducerClosedError — each future ends
        delivered or failed, none is dropped. Without a timeout, the wait is bounded
        by ``delivery_timeout_ms``. Idempotent."""
        self._thread.run(self._core.close(timeout), None, "close")

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._core.closed

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
