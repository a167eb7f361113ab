"""``AIOConsumer``: the asyncio consumer — and the implementation the blocking one runs.

No consumer groups yet (their own issue): ``assign`` takes explicit partitions,
``subscribe`` without a ``group_id`` assigns every partition of the topics (and
picks up partitions added later, at the next metadata refresh). Groups will plug
in by driving :meth:`AIOConsumer.assign` from a coordinator and committing
:meth:`AIOConsumer.position`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any


from raftlog.client.logs import get_logger
from raftlog.client.config import ConsumerConfig, build_config
from raftlog.client.connection import ConnectionPool
from raftlog.client.errors import ConsumerClosedError, IllegalStateError, KafkaTimeoutError
from raftlog.client.fetcher import EARLIEST, LATEST, Fetcher
from raftlog.client.metadata import MetadataManager
from raftlog.client.types import ConsumerRecord, OffsetAndTimestamp, TopicPartition

logger = get_logger("raftlog.client.consumer")


class AIOConsumer:
    """Consume records from asyncio::

        async with AIOConsumer("orders", bootstrap_servers="localhost:9092",
                               auto_offset_reset="earliest") as consumer:
            async for record in consumer:
                print(record.offset, record.key, record.value)

    Settings (kafka-python names, or a dotted dict): ``bootstrap_servers``,
    ``auto_offset_reset`` ("earliest", "latest" — the default — or "none"),
    ``fetch_max_wait_ms``, ``fetch_min_bytes``, ``max_partition_fetch_bytes``,
    ``max_poll_records``, ``key_deserializer``, ``value_deserializer``,
    ``request_timeout_ms``, ``retry_backoff_ms``, ``consumer_timeout_ms`` (iteration
    stops after that long without a record; default never), ``check_crcs``.
    """

    def __init__(self, *topics: str, config: Mapping[str, Any] | None = None, **configs: Any) -> None:
        self.config: ConsumerConfig = build_config(ConsumerConfig, config, configs)
        self._initial_topics = list(topics)
        self._pool: ConnectionPool | None = None
        self._metadata: MetadataManager | None = None
        self._fetcher: Fetcher | None = None
        self._subscription: set[str] | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Connect: learn the cluster from the bootstrap list (NoBrokersAvailable when
        no node answers); subscribes to the topics given to the constructor. Idempotent."""
        if self._fetcher is not None:
            return
        if self._closed:
            raise ConsumerClosedError("the consumer is closed")
        pool = ConnectionPool(self.config.max_message_size)
        metadata = MetadataManager(self.config, pool)
        try:
            await metadata.refresh(self.config.request_timeout_ms / 1000)
        except BaseException:
            await pool.close()
            raise
        self._pool, self._metadata = pool, metadata
        self._fetcher = Fetcher(self.config, metadata, pool)
        if self._initial_topics:
            self.subscribe(self._initial_topics)

    @property
    def fetcher(self) -> Fetcher:
        """The fetcher (after :meth:`start`)."""
        if self._closed:
            raise ConsumerClosedError("the consumer is closed")
        if self._fetcher is None:
            raise IllegalStateError("AIOConsumer is not started: use 'async with' or 'await consumer.start()'")
        return self._fetcher

    async def close(self) -> None:
        """Stop fetching and close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._fetcher is not None:
            await self._fetcher.close()
        if self._pool is not None:
            await self._pool.close()

    async def __aenter__(self) -> AIOConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ assignment
    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Consume exactly these partitions (replaces any subscription)."""
        tps = [TopicPartition(*tp) for tp in partitions]
        self._subscription = None
        self.fetcher.assign(tps)

    def assignment(self) -> set[TopicPartition]:
        """The partitions being consumed."""
        return set(self.fetcher.states)

    def subscribe(self, topics: Iterable[str]) -> None:
        """Consume every partition of ``topics`` (no group: this consumer gets them all)."""
        if isinstance(topics, str):
            topics = [topics]
        self._subscription = set(topics)
        assert self._metadata is not None
        self._metadata.add_topics(self._subscription)
        self._sync_subscription()

    def subscription(self) -> set[str]:
        """The subscribed topics (empty after ``assign``)."""
        return set(self._subscription or ())

    def unsubscribe(self) -> None:
        """Stop consuming everything."""
        self._subscription = None
        self.fetcher.assign([])

    def _sync_subscription(self) -> None:
        if self._subscription is None or self._metadata is None:
            return
        wanted: list[TopicPartition] = []
        for topic in sorted(self._subscription):
            meta = self._metadata.topic(topic)
            if meta is not None:
                wanted.extend(TopicPartition(topic, p) for p in sorted(meta.partitions))
        if set(wanted) != set(self.fetcher.states):
            self.fetcher.assign(wanted)

    async def _ensure_subscription(self) -> None:
        if self._subscription is None or self._metadata is None:
            return
        if self._metadata.needs_refresh() or any(self._metadata.topic(t) is None for t in self._subscription):
            if any(self._metadata.topic(t) is None for t in self._subscription):
                self._metadata.request_update()
            await self._metadata.maybe_refresh()
        self._sync_subscription()

    # ------------------------------------------------------------------ positions
    def _state(self, tp: TopicPartition) -> Any:
        state = self.fetcher.states.get(TopicPartition(*tp))
        if state is None:
            raise IllegalStateError(f"{tp[0]}-{tp[1]} is not assigned to this consumer")
        return state

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """The next poll returns ``partition``'s records from ``offset``."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        self._state(partition)
        self.fetcher.seek(TopicPartition(*partition), offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Seek to the log start of these partitions (all assigned when none given)."""
        for tp in partitions or tuple(self.fetcher.states):
            self._state(tp)
            self.fetcher.seek_to(TopicPartition(*tp), EARLIEST)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Seek to the end (high watermark) of these partitions (all assigned when none given)."""
        for tp in partitions or tuple(self.fetcher.states):
            self._state(tp)
            self.fetcher.seek_to(TopicPartition(*tp), LATEST)

    async def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        """The offset of the next record poll will return for ``partition`` (looks it
        up per ``auto_offset_reset`` when there is none yet)."""
        state = self._state(partition)
        loop = asyncio.get_running_loop()
        timeout_s = (timeout_ms if timeout_ms is not None else self.config.request_timeout_ms) / 1000
        deadline = loop.time() + timeout_s
        while state.position is None:
            if state.error is not None:
                raise state.error
            if loop.time() >= deadline:
                raise KafkaTimeoutError(f"no position for {partition[0]}-{partition[1]} within {timeout_s}s")
            await asyncio.sleep(0.01)
        return int(state.position)

    def highwater(self, partition: TopicPartition) -> int | None:
        """The partition's high watermark as of the last fetch (None before one)."""
        hw = self._state(partition).high_watermark
        return None if hw < 0 else int(hw)

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop fetching and returning these partitions until :meth:`resume`."""
        for tp in partitions:
            self._state(tp).paused = True

    def resume(self, *partitions: TopicPartition) -> None:
        """Fetch and return these partitions again."""
        for tp in partitions:
            state = self._state(tp)
            state.paused = False
            state.room.set()
        self.fetcher.data_ready.set()

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        return {tp for tp, st in self.fetcher.states.items() if st.paused}

    async def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The log start offset of each partition."""
        return {TopicPartition(*tp): (await self.fetcher.list_offset(TopicPartition(*tp), EARLIEST))[0]
                for tp in partitions}

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offset (high watermark) of each partition."""
        return {TopicPartition(*tp): (await self.fetcher.list_offset(TopicPartition(*tp), LATEST))[0]
                for tp in partitions}

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """The first offset whose timestamp is >= the given one (None when no such record)."""
        out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, ts in timestamps.items():
            if ts < 0:
                raise ValueError(f"timestamp must be >= 0, not {ts}")
            found = await self.fetcher.offset_for_time(TopicPartition(*tp), ts)
            out[TopicPartition(*tp)] = None if found is None else OffsetAndTimestamp(*found)
        return out

    async def topics(self) -> set[str]:
        """Every topic of the cluster."""
        assert self._metadata is not None
        self.fetcher  # noqa: B018 - raises when closed / not started
        self._metadata.all_topics = True
        try:
            cluster = await self._metadata.refresh()
        finally:
            self._metadata.all_topics = False
        return {name for name, t in cluster.topics.items() if not t.error_code}

    async def partitions_for_topic(self, topic: str, timeout_ms: int = 2000) -> set[int]:
        """The partition ids of ``topic``; UnknownTopicOrPartitionError when the cluster
        still does not know it after ``timeout_ms`` (a topic just created needs a moment
        to reach every node)."""
        assert self._metadata is not None
        meta = self._metadata.topic(topic) or await self._metadata.wait_for_topic(topic, timeout_ms / 1000)
        return set(meta.partitions)

    # ------------------------------------------------------------------ poll
    async def poll(self, timeout_ms: float = 0, max_records: int | None = None) -> list[ConsumerRecord]:
        """Records fetched for the assigned partitions, in offset order per partition
        (up to ``max_records``, default ``max_poll_records``), waiting up to
        ``timeout_ms`` when none are buffered. Raises a partition's error
        (OffsetOutOfRangeError with auto_offset_reset='none', SerializationError for a
        record the deserializer rejects — the position stays on it until a seek)."""
        if self._fetcher is None:
            await self.start()
        fetcher = self.fetcher
        limit = max_records or self.config.max_poll_records
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_ms) / 1000
        while True:
            await self._ensure_subscription()
            records = fetcher.collect(limit)
            if records:
                return records
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            try:
                await asyncio.wait_for(fetcher.data_ready.wait(), min(remaining, 1.0))
            except TimeoutError:
                pass

    async def getmany(self, *partitions: TopicPartition, timeout_ms: float = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord]]:
        """aiokafka's shape: ``poll`` grouped by partition."""
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        for record in await self.poll(timeout_ms, max_records):
            tp = TopicPartition(record.topic, record.partition)
            if not partitions or tp in partitions:
                out.setdefault(tp, []).append(record)
        return out

    async def getone(self) -> ConsumerRecord:
        """The next record (waits as long as it takes)."""
        while True:
            records = await self.poll(1000, 1)
            if records:
                return records[0]

    def __aiter__(self) -> AsyncIterator[ConsumerRecord]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ConsumerRecord]:
        timeout_s = self.config.consumer_timeout_ms / 1000
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not self._closed:
            records = await self.poll(min(1000.0, self.config.consumer_timeout_ms))
            if records:
                for record in records:
                    yield record
                last = loop.time()
            elif loop.time() - last >= timeout_s:
                return
