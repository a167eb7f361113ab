"""``Consumer``: the blocking consumer (runs ``AIOConsumer`` on a private loop thread)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from raftlog.client.aio_consumer import AIOConsumer
from raftlog.client.loop_thread import LoopThread
from raftlog.client.types import ConsumerRecord, OffsetAndTimestamp, TopicPartition

T = TypeVar("T")


class Consumer:
    """Read records from raftlog topics (kafka-python's KafkaConsumer shape)::

        consumer = Consumer("orders", bootstrap_servers="localhost:9092", auto_offset_reset="earliest")
        for record in consumer:
            print(record.partition, record.offset, record.key, record.value)

    or ``consumer.assign([TopicPartition("orders", 0)])`` and
    ``consumer.poll(timeout_ms=1000)`` -> list of :class:`ConsumerRecord`. Settings as
    :class:`~raftlog.aio.AIOConsumer`. Records are fetched in the background (a long
    poll per partition, a couple of fetches ahead), so a loop of ``poll`` calls does
    not wait a round trip each; leader changes are followed without errors.
    Not thread-safe (as Kafka's consumer): use it from one thread.
    """

    def __init__(self, *topics: str, config: Mapping[str, Any] | None = None, **configs: Any) -> None:
        self._aio = AIOConsumer(*topics, config=config, **configs)
        self.config = self._aio.config
        self._thread = LoopThread.shared()
        self._iter_buffer: deque[ConsumerRecord] = deque()
        self._run(self._aio.start())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._thread.run(coro, None, "consumer call")

    async def _call(self, fn: Any, *args: Any) -> Any:
        return fn(*args)

    # ------------------------------------------------------------------ assignment
    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Consume exactly these partitions."""
        self._run(self._call(self._aio.assign, list(partitions)))

    def assignment(self) -> set[TopicPartition]:
        """The partitions being consumed."""
        result: set[TopicPartition] = self._run(self._call(self._aio.assignment))
        return result

    def subscribe(self, topics: Iterable[str]) -> None:
        """Consume every partition of ``topics`` (no consumer group)."""
        self._run(self._call(self._aio.subscribe, [topics] if isinstance(topics, str) else list(topics)))

    def subscription(self) -> set[str]:
        """The subscribed topics."""
        result: set[str] = self._run(self._call(self._aio.subscription))
        return result

    def unsubscribe(self) -> None:
        """Stop consuming everything."""
        self._iter_buffer.clear()
        self._run(self._call(self._aio.unsubscribe))

    # ------------------------------------------------------------------ positions
    def seek(self, partition: TopicPartition, offset: int) -> None:
        """The next poll returns ``partition``'s records from ``offset``."""
        self._drop_buffered(partition)
        self._run(self._call(self._aio.seek, partition, offset))

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Seek to the start of these partitions (all assigned when none given)."""
        self._drop_buffered(*partitions)
        self._run(self._call(self._aio.seek_to_beginning, *partitions))

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Seek to the end of these partitions (all assigned when none given)."""
        self._drop_buffered(*partitions)
        self._run(self._call(self._aio.seek_to_end, *partitions))

    def _drop_buffered(self, *partitions: TopicPartition) -> None:
        if not partitions:
            self._iter_buffer.clear()
            return
        keep = {TopicPartition(*tp) for tp in partitions}
        self._iter_buffer = deque(r for r in self._iter_buffer if (r.topic, r.partition) not in keep)

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        """The offset of the next record for ``partition`` (records handed out by the
        iterator count as consumed)."""
        pending = [r.offset for r in self._iter_buffer if (r.topic, r.partition) == tuple(partition)]
        if pending:
            return pending[0]
        return self._run(self._aio.position(partition, timeout_ms))

    def highwater(self, partition: TopicPartition) -> int | None:
        """The high watermark as of the last fetch."""
        result: int | None = self._run(self._call(self._aio.highwater, partition))
        return result

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop fetching these partitions."""
        self._run(self._call(self._aio.pause, *partitions))

    def resume(self, *partitions: TopicPartition) -> None:
        """Resume fetching these partitions."""
        self._run(self._call(self._aio.resume, *partitions))

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        result: set[TopicPartition] = self._run(self._call(self._aio.paused))
        return result

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Log start offsets."""
        return self._run(self._aio.beginning_offsets(list(partitions)))

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """End offsets (high watermarks)."""
        return self._run(self._aio.end_offsets(list(partitions)))

    def offsets_for_times(self, timestamps: Mapping[TopicPartition, int]) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """First offsets with a timestamp >= the given ones."""
        return self._run(self._aio.offsets_for_times(timestamps))

    def topics(self) -> set[str]:
        """Every topic of the cluster."""
        return self._run(self._aio.topics())

    def partitions_for_topic(self, topic: str, timeout_ms: int = 2000) -> set[int]:
        """The partition ids of ``topic`` (UnknownTopicOrPartitionError when unknown)."""
        return self._run(self._aio.partitions_for_topic(topic, timeout_ms))

    # ------------------------------------------------------------------ records
    def poll(self, timeout_ms: float = 0, max_records: int | None = None) -> list[ConsumerRecord]:
        """Up to ``max_records`` records (default ``max_poll_records``), waiting up to
        ``timeout_ms`` when none are buffered; see :meth:`AIOConsumer.poll`."""
        if self._iter_buffer:
            limit = max_records or self.config.max_poll_records
            out: list[ConsumerRecord] = []
            while self._iter_buffer and len(out) < limit:
                out.append(self._iter_buffer.popleft())
            return out
        return self._run(self._aio.poll(timeout_ms, max_records))

    def __iter__(self) -> Iterator[ConsumerRecord]:
        return self

    def __next__(self) -> ConsumerRecord:
        if self._iter_buffer:
            return self._iter_buffer.popleft()
        timeout_ms = self.config.consumer_timeout_ms
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            wait = min(1000.0, max(0.0, (deadline - time.monotonic()) * 1000))
            records = self._run(self._aio.poll(wait))
            if records:
                self._iter_buffer.extend(records)
                return self._iter_buffer.popleft()
            if time.monotonic() >= deadline:
                raise StopIteration

    def close(self) -> None:
        """Stop fetching and close the connections. Idempotent."""
        self._run(self._aio.close())

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
