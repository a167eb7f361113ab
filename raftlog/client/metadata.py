"""What a client knows of the cluster: brokers, partition leaders, and how it learns more.

The first Metadata request goes to the bootstrap list; later ones to any known
broker (bootstrap addresses stay as a fallback), trying the next node when one
does not answer. The cache is an immutable :class:`ClusterMetadata` swapped whole,
so readers in any thread see one consistent view. Errors that mean "the leader
moved" (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, leader-epoch errors,
connection failures) call :meth:`MetadataManager.request_update`; refreshes are
single-flight and spaced by ``retry_backoff_ms`` (exponential up to
``retry_backoff_max_ms`` while the cluster gives nothing new), so a storm of errors
costs one request per backoff, not one per error.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field, replace


from raftlog.client.logs import get_logger
from raftlog.client.config import CommonConfig
from raftlog.client.connection import ConnectionPool
from raftlog.client.errors import (
    BrokerResponseError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    UnknownTopicOrPartitionError,
    error_class,
)
from raftlog.client.types import BrokerInfo, PartitionInfo, TopicPartition
from raftlog.v1 import broker_pb2

logger = get_logger("raftlog.client")


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    """A topic's partitions (by id), or the error the cluster answered for it."""

    name: str
    topic_id: str
    partitions: dict[int, PartitionInfo]
    error_code: int = 0

    @property
    def num_partitions(self) -> int:
        """Number of partitions (all of them, with a leader or not)."""
        return len(self.partitions)

    def available(self) -> list[int]:
        """Partitions that have a leader now."""
        return [p for p, info in self.partitions.items() if info.leader >= 0]


@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    """One consistent view of brokers and topics."""

    cluster_id: str = ""
    controller_id: int = -1
    brokers: dict[int, BrokerInfo] = field(default_factory=dict)
    topics: dict[str, TopicMetadata] = field(default_factory=dict)
    updated_at: float = 0.0

    def leader_for(self, tp: TopicPartition) -> tuple[int, str, int] | None:
        """(leader id, address, leader epoch) of a partition, or None when unknown/offline."""
        topic = self.topics.get(tp.topic)
        if topic is None:
            return None
        info = topic.partitions.get(tp.partition)
        if info is None or info.leader < 0:
            return None
        broker = self.brokers.get(info.leader)
        if broker is None or not broker.port:
            return None
        return info.leader, broker.address, info.leader_epoch


def _from_response(response: broker_pb2.MetadataResponse, previous: ClusterMetadata,
                   full: bool) -> ClusterMetadata:
    brokers = {
        b.broker_id: BrokerInfo(b.broker_id, b.host, b.port, b.rack, b.fenced) for b in response.brokers
    }
    topics = {} if full else dict(previous.topics)
    for t in response.topics:
        partitions = {
            p.partition: PartitionInfo(
                t.name, p.partition, p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr),
                offline_replicas=tuple(p.offline_replicas),
            )
            for p in t.partitions
        }
        topics[t.name] = TopicMetadata(t.name, t.topic_id, partitions, t.error_code)
    return ClusterMetadata(response.cluster_id, response.controller_id, brokers, topics, time.monotonic())


class MetadataManager:
    """The metadata cache of one client and its refreshes (runs on the client's loop)."""

    def __init__(self, config: CommonConfig, pool: ConnectionPool) -> None:
        self.config = config
        self.pool = pool
        self.bootstrap = list(config.bootstrap_servers)
        self.cluster = ClusterMetadata()
        self.topics: set[str] = set()
        """Topics this client uses: refreshed together (all topics when ``all_topics``)."""
        self.all_topics = False
        self._refreshing: asyncio.Task[ClusterMetadata] | None = None
        self._last_attempt = 0.0
        self._backoff_s = config.retry_backoff_ms / 1000
        self._stale = True
        self._rng = random.Random()

    # ------------------------------------------------------------------ reads (any thread)
    def leader_for(self, tp: TopicPartition) -> tuple[int, str, int] | None:
        """The cached leader of ``tp``."""
        return self.cluster.leader_for(tp)

    def topic(self, name: str) -> TopicMetadata | None:
        """The cached metadata of a topic that exists (None when unknown)."""
        topic = self.cluster.topics.get(name)
        if topic is None or topic.error_code or not topic.partitions:
            return None
        return topic

    # ------------------------------------------------------------------ updates
    def request_update(self) -> None:
        """Mark the cache stale: the next :meth:`maybe_refresh` fetches metadata."""
        self._stale = True

    def leader_moved(self, tp: TopicPartition, leader_id: int) -> None:
        """A broker said who leads ``tp`` now (NOT_LEADER_OR_FOLLOWER's hint): use it at
        once and refresh to confirm."""
        self._stale = True
        topic = self.cluster.topics.get(tp.topic)
        info = topic.partitions.get(tp.partition) if topic is not None else None
        if topic is None or info is None or leader_id <= 0 or leader_id == info.leader \
                or leader_id not in self.cluster.brokers:
            return
        partitions = dict(topic.partitions)
        partitions[tp.partition] = replace(info, leader=leader_id)
        topics = dict(self.cluster.topics)
        topics[tp.topic] = replace(topic, partitions=partitions)
        self.cluster = replace(self.cluster, topics=topics)

    def add_topics(self, names: set[str] | list[str]) -> None:
        """Track more topics (the next refresh includes them)."""
        new = set(names) - self.topics
        if new:
            self.topics |= new
            self._stale = True

    def needs_refresh(self) -> bool:
        """Stale, or older than ``metadata_max_age_ms``."""
        age = time.monotonic() - self.cluster.updated_at
        return self._stale or age * 1000 >= self.config.metadata_max_age_ms

    async def maybe_refresh(self) -> None:
        """Refresh when stale and the backoff allows; never raises (errors are logged)."""
        if not self.needs_refresh() or (self._refreshing is None and
                                        time.monotonic() - self._last_attempt < self._backoff_s):
            return
        try:
            await self.refresh()
        except Exception as exc:  # noqa: BLE001 - background refresh: try again later
            logger.debug("metadata refresh failed", error=str(exc))

    async def refresh(self, timeout_s: float | None = None) -> ClusterMetadata:
        """Fetch metadata now (joining a refresh in progress); raises NoBrokersAvailable
        when no node answers."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh(timeout_s))
        return await asyncio.shield(self._refreshing)

    def _candidates(self) -> list[str]:
        known = [b.address for b in self.cluster.brokers.values() if b.port and not b.fenced]
        self._rng.shuffle(known)
        fenced = [b.address for b in self.cluster.brokers.values() if b.port and b.fenced]
        return list(dict.fromkeys(known + self.bootstrap + fenced))

    async def _refresh(self, timeout_s: float | None) -> ClusterMetadata:
        self._last_attempt = time.monotonic()
        request_timeout = self.config.request_timeout_ms / 1000
        per_node = min(request_timeout, 5.0) if timeout_s is None else max(0.05, min(timeout_s, 5.0))
        deadline = time.monotonic() + (request_timeout if timeout_s is None else timeout_s)
        topics = [] if self.all_topics else sorted(self.topics)
        if not topics and not self.all_topics:
            topics = []  # brokers only: ask for all topics (a small cluster answers quickly)
        errors: list[str] = []
        self._stale = False
        for address in self._candidates():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                response = await self.pool.call(address, "broker", "Metadata",
                                                 broker_pb2.MetadataRequest(topics=topics), min(per_node, remaining))
            except BrokerResponseError as exc:
                errors.append(f"{address}: {exc}")
                continue
            previous = self.cluster
            self.cluster = _from_response(response, previous, full=not topics)
            changed = self.cluster.brokers != previous.brokers or self.cluster.topics != previous.topics
            self._backoff_s = self.config.retry_backoff_ms / 1000 if changed else min(
                self._backoff_s * 2, self.config.retry_backoff_max_ms / 1000)
            return self.cluster
        self._stale = True
        self._backoff_s = min(self._backoff_s * 2, self.config.retry_backoff_max_ms / 1000)
        tried = ", ".join(self._candidates())
        raise NoBrokersAvailable(
            f"no node answered a Metadata request (tried {tried}): {'; '.join(errors) or 'timed out'}"
        )

    async def wait_for_topic(self, name: str, timeout_s: float) -> TopicMetadata:
        """The topic's metadata, refreshing until it exists or ``timeout_s`` passes (a topic
        just created reaches every broker a moment later). Raises
        UnknownTopicOrPartitionError when the cluster keeps saying it does not exist,
        NoBrokersAvailable when nobody answers."""
        self.add_topics([name])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        delay = self.config.retry_backoff_ms / 1000
        while True:
            topic = self.topic(name)
            if topic is not None:
                return topic
            remaining = deadline - loop.time()
            try:
                await self.refresh(max(0.05, remaining))
            except NoBrokersAvailable:
                if loop.time() >= deadline:
                    raise
            topic = self.topic(name)
            if topic is not None:
                return topic
            if loop.time() >= deadline:
                known = self.cluster.topics.get(name)
                if known is not None and known.error_code:
                    cls = error_class(known.error_code)
                    raise cls(f"topic {name!r} is not known to the cluster"
                              f" (waited {timeout_s * 1000:.0f} ms for its metadata)")
                if known is None and self.cluster.brokers:
                    raise UnknownTopicOrPartitionError(f"topic {name!r} not present in metadata after"
                                                       f" {timeout_s * 1000:.0f} ms")
                raise KafkaTimeoutError(f"no metadata for topic {name!r} within {timeout_s * 1000:.0f} ms")
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, self.config.retry_backoff_max_ms / 1000)

