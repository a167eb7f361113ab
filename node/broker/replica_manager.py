"""ReplicaManager: every partition replica of this broker (Kafka's ReplicaManager).

Driven by metadata: ``on_metadata(image)`` is called on the event loop with each new
MetadataImage and creates, promotes, demotes and deletes partitions and their
follower fetchers. The services call ``produce`` / ``fetch`` / ``list_offsets`` /
``replica_fetch`` / ``offset_for_leader_epoch``. Background tasks: ISR maintenance
(shrink and re-expand through AlterPartition on the active controller, never
unilaterally), retention, and the HW checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from structlog.typing import FilteringBoundLogger

from raftlog.node.broker.clients import ControllerClient, PeerClientFactory
from raftlog.node.broker.config import BrokerConfig
from raftlog.node.broker.fetcher import ReplicaFetcher
from raftlog.node.broker.partition.epochs import leader_end_offset_for_epoch
from raftlog.node.broker.partition import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    AppendResult,
    Partition,
    PendingIsrChange,
    ReplicaLog,
    Role,
    Transition,
    new_future,
    now_ms,
    validate_produce,
)
from raftlog.node.metadata.image import NO_LEADER, MetadataImage
from raftlog.errors import ErrorCode, KafkaError
from raftlog.status import error_info_from_pb, error_info_to_pb
from raftlog.storage.node_db import NodeDB
from raftlog.topic_config import TopicConfig, echo
from raftlog.v1 import controller_pb2, replication_pb2

#: (db, topic id, partition) -> the partition's log. Default: PartitionLog.open.
LogFactory = Callable[[NodeDB, str, int], ReplicaLog]


#: AlterPartition failures whose outcome is unknown: the change may be committed.
_UNKNOWN_OUTCOME = frozenset({
    ErrorCode.NETWORK_EXCEPTION,
    ErrorCode.REQUEST_TIMED_OUT,
    ErrorCode.NOT_CONTROLLER,
    ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.BROKER_NOT_AVAILABLE,
})


def _default_log_factory(db: NodeDB, topic_id: str, partition: int) -> ReplicaLog:
    from raftlog.node.broker.replica_log import KafkaErrorsLog
    from raftlog.storage.partition_log import PartitionLog

    return KafkaErrorsLog(PartitionLog.open(db, topic_id, partition))


#: Partitions a ReplicaFetch may name beyond those this broker hosts (metadata lag).
FETCH_PARTITIONS_SLACK = 1_000
#: Partitions handled between two yields to the event loop in one fetch.
YIELD_EVERY_PARTITIONS = 500


def known_leader_epoch(message: Any) -> int:
    """A request's ``current_leader_epoch``; -1 (not checked) when unset, because 0 is
    a real epoch and a client that never set it must not be fenced by it."""
    return int(message.current_leader_epoch) if message.HasField("current_leader_epoch") else -1


def _default_stored_partitions(db: NodeDB) -> list[tuple[str, int]]:
    from raftlog.storage.partition_log import stored_partitions

    return stored_partitions(db)


@dataclass(frozen=True, slots=True)
class ProduceResult:
    base_offset: int
    batch_base_offsets: list[int]
    log_start_offset: int


@dataclass(frozen=True, slots=True)
class FetchResult:
    records: bytes
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class OffsetResult:
    offset: int
    timestamp: int
    leader_epoch: int


class ReplicaManager:
    def __init__(
        self,
        broker_id: int,
        db: NodeDB,
        config: BrokerConfig,
        peer_client_factory: PeerClientFactory,
        controller_client: ControllerClient,
        *,
        log_factory: LogFactory | None = None,
        stored_partitions: Callable[[NodeDB], Iterable[tuple[str, int]]] | None = None,
        clock: Callable[[], float] = now_ms,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.broker_id = broker_id
        self.db = db
        self.config = config
        self.peer_client_factory = peer_client_factory
        self.controller_client = controller_client
        self._log_factory = log_factory or _default_log_factory
        self._stored_partitions = stored_partitions or _default_stored_partitions
        self.clock = clock
        self.wall_clock_ms = wall_clock_ms
        self.image = MetadataImage()
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._deleting: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._fetchers_paused = False
        self._producer_state_queue: asyncio.Queue[Partition] = asyncio.Queue()
        self._started = False
        self._stopped = False
        self._strays_checked = False
        self.logger: FilteringBoundLogger = structlog.get_logger("replica-manager").bind(node_id=broker_id)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._periodic(self.config.isr_check_interval_s, self.maintain_isr), name="isr"),
            loop.create_task(
                self._periodic(self.config.retention_check_interval_ms / 1000, self.apply_retention),
                name="retention",
            ),
            loop.create_task(
                self._periodic(self.config.replica_high_watermark_checkpoint_interval_ms / 1000,
                               self.checkpoint_high_watermarks),
                name="hw-checkpoint",
            ),
            loop.create_task(self._load_producer_states(), name="producer-state"),
        ]
        for fetcher in self.fetchers.values():
            fetcher.start()

    async def stop(self) -> None:
        """Stop fetchers and background work, fail waiters, checkpoint HWs."""
        self._started = False
        self._stopped = True
        loops, self._loops = self._loops, []
        for task in loops:
            task.cancel()
        fetchers, self.fetchers = list(self.fetchers.values()), {}
        await asyncio.gather(*(f.stop() for f in fetchers), return_exceptions=True)
        tasks = list(self._tasks) + list(self._deleting.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*loops, *tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.checkpoint_high_watermarks()
        for p in self.partitions.values():
            p.mark_removed()  # fails waiting produce requests: NOT_LEADER_OR_FOLLOWER

    async def _load_producer_states(self) -> None:
        """Build each new partition's producer state from its log in the background,
        one partition at a time, so that a failover finds it ready (a leader builds
        it on demand when it gets there first); appends then keep it current."""
        while True:
            p = await self._producer_state_queue.get()
            if p.removed or p.producer_state.built_to >= 0:
                continue
            try:
                async with p.log_lock:
                    if not p.removed:
                        await p.rebuild_producer_state()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the leader retries on demand
                p.logger.warning("producer state scan failed", error=repr(exc))

    async def _periodic(self, interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - background jobs must keep running
                self.logger.error("background job failed", job=getattr(job, "__name__", "?"),
                                  error=repr(exc), exc_info=True)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        async def run() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.logger.error("task failed", task=name, error=repr(exc), exc_info=True)

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ metadata
    def broker_epoch(self) -> int:
        reg = self.image.brokers.get(self.broker_id)
        return reg.broker_epoch if reg is not None else -1

    def _address(self, broker_id: int) -> str:
        reg = self.image.brokers.get(broker_id)
        return reg.address if reg is not None else ""

    def on_metadata(self, image: MetadataImage) -> None:
        """Adopt a new image: call on the event loop after every applied metadata batch."""
        previous, self.image = self.image, image
        if not self._strays_checked and self.broker_id in image.brokers:
            # The first image that has this broker's registration holds every record
            # committed before it started, in particular any topic deletion it missed.
            self._strays_checked = True
            self._remove_stray_partitions(image)
        if (image.topics is previous.topics and image.brokers is previous.brokers
                and image.configs is previous.configs and previous.offset > 0):
            return  # no-op records only: images share unchanged maps (copy-on-write)
        self._apply_image(image)

    def _apply_image(self, image: MetadataImage) -> None:
        live = {b.broker_id: b.broker_epoch for b in image.brokers.values() if not b.fenced}
        seen: set[tuple[str, int]] = set()
        for topic in image.topics.values():
            config = TopicConfig.of(image.configs.get(topic.name, {}))
            for pid, reg in topic.partitions.items():
                if self.broker_id not in reg.replicas:
                    continue
                key = (topic.topic_id, pid)
                seen.add(key)
                partition = self.partitions.get(key)
                if partition is None:
                    if key in self._deleting:
                        continue  # re-created once the old data is gone
                    try:
                        log = self._log_factory(self.db, topic.topic_id, pid)
                    except Exception as exc:  # noqa: BLE001 - one bad log must not stop the others
                        self.logger.error("cannot open partition log", topic=topic.name, partition=pid,
                                          error=repr(exc), exc_info=True)
                        continue
                    partition = Partition(
                        self.broker_id, topic.name, topic.topic_id, pid, log,
                        replica_lag_time_max_ms=self.config.replica_lag_time_max_ms, clock=self.clock,
                        debug_unsafe_acks=self.config.debug_unsafe_acks,
                    )
                    self.partitions[key] = partition
                    self._producer_state_queue.put_nowait(partition)
                leader_address = self._address(reg.leader) if reg.leader != NO_LEADER else ""
                transition = partition.apply_metadata(reg, config, live, leader_address)
                self._after_transition(partition, transition)
        for key in [k for k in self.partitions if k not in seen]:
            self._remove_partition(self.partitions.pop(key))
        # A leader that re-registered at a new address: reconnect its fetcher.
        for leader_id, fetcher in list(self.fetchers.items()):
            address = self._address(leader_id)
            if address and address != fetcher.address:
                self._spawn(fetcher.stop(), f"stop-fetcher-{leader_id}")
                del self.fetchers[leader_id]
                replacement = self._fetcher(leader_id)
                for p in self.partitions.values():
                    if p.role is Role.FOLLOWER and p.leader_id == leader_id:
                        replacement.add(p)
        for leader_id, fetcher in list(self.fetchers.items()):
            if len(fetcher) == 0:
                del self.fetchers[leader_id]
                self._spawn(fetcher.stop(), f"stop-fetcher-{leader_id}")

    def _remove_stray_partitions(self, image: MetadataImage) -> None:
        """KRaft brokers' startup cleanup: partitions stored here whose topic id the
        image does not have belong to topics deleted while this broker was down."""
        try:
            stored = self._stored_partitions(self.db)
        except Exception as exc:  # noqa: BLE001 - never stop serving for a cleanup
            self.logger.error("cannot list stored partitions", error=repr(exc), exc_info=True)
            return
        strays = [(t, pid) for t, pid in stored if t not in image.topics and (t, pid) not in self.partitions]
        for topic_id, pid in strays:
            self.logger.warning("removing stray partition: its topic is not in the metadata",
                                topic_id=topic_id, partition=pid, metadata_offset=image.offset)
            self._spawn(self._delete_stray(topic_id, pid), f"delete-stray-{topic_id}-{pid}")

    async def _delete_stray(self, topic_id: str, pid: int) -> None:
        log = self._log_factory(self.db, topic_id, pid)
        await log.delete()
        self.logger.info("stray partition removed", topic_id=topic_id, partition=pid)

    def _after_transition(self, p: Partition, transition: Transition) -> None:
        if transition is Transition.BECAME_LEADER:
            self._unfollow(p)
            self._spawn(self._prepare_leader(p, p.leader_epoch), f"leader-init-{p.topic}-{p.partition}")
        elif transition is Transition.BECAME_FOLLOWER:
            self._unfollow(p)
            self._fetcher(p.leader_id).add(p)
        elif transition is Transition.BECAME_OFFLINE:
            self._unfollow(p)

    async def _prepare_leader(self, p: Partition, epoch: int) -> None:
        async with p.log_lock:
            if p.is_leader and p.leader_epoch == epoch:
                await p.ensure_leader_ready()

    def _unfollow(self, p: Partition) -> None:
        for fetcher in self.fetchers.values():
            fetcher.remove(p)

    def _fetcher(self, leader_id: int) -> ReplicaFetcher:
        fetcher = self.fetchers.get(leader_id)
        if fetcher is None:
            fetcher = ReplicaFetcher(
                self.broker_id, leader_id, self._address(leader_id), self.config,
                self.peer_client_factory, self.broker_epoch,
            )
            if self._fetchers_paused:
                fetcher.pause()
            self.fetchers[leader_id] = fetcher
            if self._started:
                fetcher.start()
        return fetcher

    def _remove_partition(self, p: Partition) -> None:
        """The topic was deleted or this broker is no longer a replica: drop the data."""
        self._unfollow(p)
        p.mark_removed()
        key = (p.topic_id, p.partition)
        p.logger.info("partition removed from this broker; deleting its data")

        async def delete() -> None:
            try:
                async with p.log_lock:
                    await p.log.delete()
            except Exception as exc:  # noqa: BLE001
                p.logger.error("deleting partition data failed", error=repr(exc), exc_info=True)
            finally:
                self._deleting.pop(key, None)
            # It may have been assigned here again meanwhile.
            if not self._stopped:
                self._apply_image(self.image)

        self._deleting[key] = asyncio.get_running_loop().create_task(delete(), name=f"delete-{p.topic}-{p.partition}")

    # ------------------------------------------------------------------ test hooks
    def pause_fetchers(self) -> None:
        """Stop replicating from every leader (tests: a follower that falls behind)."""
        self._fetchers_paused = True
        for fetcher in self.fetchers.values():
            fetcher.pause()

    def resume_fetchers(self) -> None:
        self._fetchers_paused = False
        for fetcher in self.fetchers.values():
            fetcher.resume()

    # ------------------------------------------------------------------ lookups
    def partition(self, topic: str, partition: int) -> Partition:
        """This broker's replica of ``topic``-``partition``, or the error a client gets."""
        topic_id = self.image.topic_ids.get(topic)
        topic_image = None if topic_id is None else self.image.topics.get(topic_id)
        if topic_image is None or topic_id is None or partition not in topic_image.partitions:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown topic-partition {echo(topic)}-{partition}")
        p = self.partitions.get((topic_id, partition))
        if p is None:
            reg = topic_image.partitions[partition]
            leader = reg.leader if reg.leader != NO_LEADER else 0
            raise KafkaError(
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
                f"broker {self.broker_id} does not host {topic}-{partition}",
                leader_id=leader, leader_address=self._address(leader) if leader else "",
            )
        return p

    # ------------------------------------------------------------------ client API
    async def produce(self, topic: str, partition: int, records: bytes, acks: int,
                      timeout_ms: int) -> ProduceResult:
        if acks not in (-1, 0, 1):
            raise KafkaError(ErrorCode.INVALID_REQUIRED_ACKS, f"acks must be -1 (all), 0 or 1, not {acks}")
        p = self.partition(topic, partition)
        p.require_leader()
        batches = validate_produce(
            records, p.config.max_message_bytes,
            timestamp_before_max_ms=p.config.message_timestamp_before_max_ms,
            timestamp_after_max_ms=p.config.message_timestamp_after_max_ms,
        )
        result: AppendResult = await p.append_as_leader(batches, acks)
        if acks == -1:
            timeout_s = (timeout_ms or self.config.produce_timeout_ms) / 1000
            await p.wait_for_hw(result.required_hw, timeout_s)
        if acks == 0:
            # acks=0: the producer asked for no answer; gRPC must send one, without offsets.
            return ProduceResult(-1, [], result.log_start_offset)
        return ProduceResult(result.base_offset, result.batch_base_offsets, p.log_start_offset)

    async def fetch(self, topic: str, partition: int, offset: int, max_bytes: int, max_wait_ms: int,
                    min_bytes: int, current_leader_epoch: int, topic_id: str = "") -> FetchResult:
        """Consumer fetch from the leader: whole batches below the HW, long-polling up
        to ``max_wait_ms`` until at least ``max(min_bytes, 1)`` bytes are there.
        ``topic_id`` (when set): the id the client reads; INCONSISTENT_TOPIC_ID when the
        topic was re-created under the same name since."""
        p = self.partition(topic, partition)
        if topic_id and topic_id != p.topic_id:
            raise KafkaError(ErrorCode.INCONSISTENT_TOPIC_ID,
                             f"topic {topic!r} now has id {p.topic_id}, not {topic_id} (deleted and re-created)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max_wait_ms, self.config.fetch_max_wait_cap_ms) / 1000
        max_bytes = min(max_bytes or self.config.fetch_default_max_bytes, self.config.fetch_max_bytes)
        while True:
            p.require_leader(current_leader_epoch)
            hw = p.high_watermark
            if offset < p.log_start_offset or offset > p.log_end_offset:
                raise KafkaError(
                    ErrorCode.OFFSET_OUT_OF_RANGE,
                    f"offset {offset} is outside [{p.log_start_offset}, {p.log_end_offset}] of {topic}-{partition}",
                )
            records = p.log.read(offset, max_bytes, hw).records if offset < hw else b""
            remaining = deadline - loop.time()
            if len(records) >= max(1, min_bytes) or remaining <= 0:
                return FetchResult(records, hw, p.log_start_offset, p.log_end_offset, p.leader_epoch)
            await self._wait_for_change([p], remaining)

    async def _wait_for_change(self, partitions: Iterable[Partition], timeout_s: float) -> None:
        future = new_future()
        watched = list(partitions)
        for p in watched:
            p.watch(future)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            pass
        finally:
            for p in watched:
                p.unwatch(future)

    def list_offsets(self, topic: str, partition: int, timestamp: int) -> OffsetResult:
        p = self.partition(topic, partition)
        p.require_leader()
        if timestamp == EARLIEST_TIMESTAMP:
            return OffsetResult(p.log_start_offset, -1, p.leader_epoch)
        if timestamp < 0 and timestamp != LATEST_TIMESTAMP:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"timestamp {timestamp}: use -2, -1 or a time in ms")
        offset, found_timestamp = p.fetch_offset_for_timestamp(timestamp)
        return OffsetResult(offset, found_timestamp, p.leader_epoch)

    async def allocate_producer_ids(self) -> tuple[int, int]:
        """A block of producer ids from the active controller: (first id, count)."""
        request = controller_pb2.AllocateProducerIdsRequest(
            broker_id=self.broker_id, broker_epoch=max(0, self.broker_epoch())
        )
        response = await self.controller_client.allocate_producer_ids(
            request, self.config.alter_partition_timeout_ms / 1000
        )
        if response.count <= 0:
            raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "the controller allocated no producer ids")
        return response.first_producer_id, response.count

    # ------------------------------------------------------------------ replication (leader side)
    def _leader_for_replica(self, replica_id: int, topic_id: str, partition: int,
                            current_leader_epoch: int) -> Partition:
        p = self.partitions.get((topic_id, partition))
        if p is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             f"broker {self.broker_id} has no partition {topic_id}/{partition}")
        p.require_leader(current_leader_epoch)
        if replica_id not in p.replicas or replica_id == self.broker_id:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                             f"broker {replica_id} is not a follower of {p.topic}-{p.partition}")
        return p

    async def replica_fetch(self, request: replication_pb2.ReplicaFetchRequest) -> replication_pb2.ReplicaFetchResponse:
        """Answer a follower's fetch of all partitions it follows here, long-polling
        up to max_wait_ms until min_bytes are there (any error answers at once)."""
        if request.replica_id <= 0:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"replica id must be positive, got {request.replica_id}")
        # A follower asks for at most the partitions it follows here; a request far
        # above what this broker hosts (a million entries stalled the event loop for
        # seconds and cost the controller its leadership) is refused outright.
        limit = len(self.partitions) + FETCH_PARTITIONS_SLACK
        if len(request.partitions) > limit:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"{len(request.partitions)} partitions in one fetch; this broker hosts {len(self.partitions)}")
        loop = asyncio.get_running_loop()
        wait_ms = min(request.max_wait_ms, self.config.fetch_max_wait_cap_ms)
        deadline = loop.time() + wait_ms / 1000
        min_bytes = max(1, request.min_bytes)
        budget_total = min(request.max_bytes or self.config.replica_fetch_response_max_bytes,
                           self.config.fetch_max_bytes)
        first = True
        while True:
            response = replication_pb2.ReplicaFetchResponse()
            total = 0
            errors = False
            answer_now = False
            leaders: list[Partition] = []
            isr_changes: list[tuple[Partition, PendingIsrChange]] = []
            for i, item in enumerate(request.partitions):
                if i and i % YIELD_EVERY_PARTITIONS == 0:
                    await asyncio.sleep(0)  # long fetches share the loop with Raft and heartbeats
                data = response.partitions.add(topic_id=item.topic_id, partition=item.partition)
                try:
                    p = self._leader_for_replica(request.replica_id, item.topic_id, item.partition,
                                                 known_leader_epoch(item))
                    data.log_start_offset = p.log_start_offset
                    data.high_watermark = p.high_watermark
                    if first:
                        last_fetched_epoch = (item.last_fetched_epoch if item.HasField("last_fetched_epoch")
                                              else None)
                        seen = p.on_follower_fetch(request.replica_id, item.fetch_offset, last_fetched_epoch,
                                                   request.broker_epoch)
                        if seen.diverging_epoch is not None:
                            # Its fetch offset is not a log end it shares with this leader:
                            # it counts toward neither HW nor ISR; answer at once.
                            data.diverging_epoch.epoch, data.diverging_epoch.end_offset = seen.diverging_epoch
                            answer_now = True
                            continue
                        if seen.isr_change is not None:
                            isr_changes.append((p, seen.isr_change))
                        data.high_watermark = p.high_watermark
                    elif item.fetch_offset < p.log_start_offset or item.fetch_offset > p.log_end_offset:
                        raise KafkaError(
                            ErrorCode.OFFSET_OUT_OF_RANGE,
                            f"fetch offset {item.fetch_offset} is outside [{p.log_start_offset}, {p.log_end_offset}]",
                        )
                    leaders.append(p)
                    budget = min(item.max_bytes or self.config.replica_fetch_max_bytes, budget_total - total)
                    if budget > 0 or total == 0:
                        fetched = p.log.read(item.fetch_offset, max(budget, 1), p.log_end_offset)
                        data.records = fetched.records
                        total += len(fetched.records)
                except KafkaError as exc:
                    data.error.CopyFrom(error_info_to_pb(exc))
                    errors = True
            if isr_changes:
                self._send_alter_partition(isr_changes)
            first = False
            remaining = deadline - loop.time()
            if total >= min_bytes or errors or answer_now or remaining <= 0 or not leaders:
                return response
            await self._wait_for_change(leaders, remaining)

    def offset_for_leader_epoch(
        self, request: replication_pb2.OffsetForLeaderEpochRequest
    ) -> replication_pb2.OffsetForLeaderEpochResponse:
        response = replication_pb2.OffsetForLeaderEpochResponse()
        for query in request.partitions:
            result = response.partitions.add(topic_id=query.topic_id, partition=query.partition)
            try:
                p = self._leader_for_replica(request.replica_id, query.topic_id, query.partition,
                                             known_leader_epoch(query))
                epoch, end = self._epoch_end(p, query.leader_epoch)
                result.leader_epoch = epoch
                result.end_offset = end
            except KafkaError as exc:
                result.error.CopyFrom(error_info_to_pb(exc))
                result.leader_epoch = -1
                result.end_offset = -1
        return response

    @staticmethod
    def _epoch_end(p: Partition, asked: int) -> tuple[int, int]:
        return leader_end_offset_for_epoch(p.log, p.leader_epoch, asked)

    # ------------------------------------------------------------------ ISR maintenance
    async def maintain_isr(self) -> None:
        """Every replica.lag.time.max.ms / 2: shrink lagging followers out, re-add
        caught-up ones, resend changes whose outcome was unknown."""
        changes: list[tuple[Partition, PendingIsrChange]] = []
        for p in self.partitions.values():
            if not p.is_leader:
                continue
            change = p.resend_candidate() or p.prepare_isr_shrink() or p.prepare_isr_expansion()
            if change is not None:
                changes.append((p, change))
        if changes:
            self._send_alter_partition(changes)

    def _send_alter_partition(self, changes: list[tuple[Partition, PendingIsrChange]]) -> None:
        self._spawn(self._alter_partition(changes), "alter-partition")

    async def _alter_partition(self, changes: list[tuple[Partition, PendingIsrChange]]) -> None:
        request = controller_pb2.AlterPartitionRequest(broker_id=self.broker_id,
                                                       broker_epoch=max(0, self.broker_epoch()))
        for p, change in changes:
            request.partitions.append(controller_pb2.AlterPartitionItem(
                topic_id=p.topic_id, partition=p.partition, leader_epoch=change.leader_epoch,
                partition_epoch=change.partition_epoch, new_isr=change.new_isr,
            ))
        try:
            response = await self.controller_client.alter_partition(
                request, self.config.alter_partition_timeout_ms / 1000
            )
        except KafkaError as exc:
            unknown = exc.code in _UNKNOWN_OUTCOME
            self.logger.warning("AlterPartition failed", error=exc.code.name, message=exc.info.message,
                                will_retry=unknown)
            for p, change in changes:
                p.on_alter_partition_result(change, None if unknown else exc.code, -1, transport_failed=unknown)
            return
        except Exception as exc:  # noqa: BLE001 - outcome unknown: retry later
            self.logger.warning("AlterPartition failed", error=repr(exc))
            for p, change in changes:
                p.on_alter_partition_result(change, None, -1, transport_failed=True)
            return
        results = {(r.topic_id, r.partition): r for r in response.partitions}
        for p, change in changes:
            result = results.get((p.topic_id, p.partition))
            if result is None:
                p.on_alter_partition_result(change, None, -1, transport_failed=True)
                continue
            code: ErrorCode | None = None
            if result.HasField("error") and result.error.error_code != 0:
                code = error_info_from_pb(result.error).code
            p.on_alter_partition_result(change, code, result.partition_epoch)

    # ------------------------------------------------------------------ housekeeping
    async def apply_retention(self) -> None:
        now = self.wall_clock_ms()
        for p in list(self.partitions.values()):
            try:
                await p.apply_retention(now)
            except Exception as exc:  # noqa: BLE001 - one partition must not stop the others
                p.logger.error("retention failed", error=repr(exc), exc_info=True)

    async def checkpoint_high_watermarks(self) -> None:
        for p in list(self.partitions.values()):
            try:
                await p.checkpoint_hw()
            except Exception as exc:  # noqa: BLE001
                p.logger.error("HW checkpoint failed", error=repr(exc))
