"""The I/O shell of one partition replica: log I/O, produce waiters, watchers.

:class:`Partition` holds the pure :class:`~raftlog.node.broker.partition.state.PartitionState`
(``self.state``: role, epochs, ISR, HW, follower fetch states) and does what it cannot:
reads and writes the log, stamps and appends produce batches, rebuilds producer state,
and wakes waiters when the state reports a change. Same behaviour as Kafka's
``Partition`` (docs/architecture.md §4).

Every log mutation (leader append, follower append, truncation, retention,
deletion) holds ``log_lock``; role changes are synchronous on the event loop and
every async path re-checks role and epoch once it holds the lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import structlog
from structlog.typing import FilteringBoundLogger

from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.broker.partition.follower import TruncateFullyAndStartAt, plan_follower_append
from raftlog.node.broker.partition.state import (
    FollowerFetch,
    FollowerState,
    PartitionState,
    PendingIsrChange,
    Role,
    Transition,
)
from raftlog.node.broker.producer_state import BatchMetadata, ProducerStateManager
from raftlog.node.metadata.image import NO_LEADER, PartitionRegistration
from raftlog.records import CONTROL_BIT, TRANSACTIONAL_BIT, BatchHeader, split_batches, stamp, validate_batch
from raftlog.storage.partition_log import EpochEntry, FetchedData
from raftlog.topic_config import TopicConfig

_SCAN_CHUNK_BYTES = 1 << 20  # producer-state rebuild reads the log in chunks of this
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2


class ReplicaLog(Protocol):
    """What the broker uses of ``raftlog.storage.partition_log.PartitionLog``."""

    @property
    def log_start_offset(self) -> int: ...
    @property
    def log_end_offset(self) -> int: ...
    @property
    def high_watermark_checkpoint(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    def read(self, offset: int, max_bytes: int, max_offset: int) -> FetchedData: ...
    async def append(self, batches: Sequence[tuple[BatchHeader, bytes]], leader_epoch: int) -> int: ...
    def epochs(self) -> Sequence[EpochEntry]: ...
    def latest_epoch(self) -> int: ...
    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]: ...
    async def truncate_to(self, offset: int) -> None: ...
    async def checkpoint_high_watermark(self, hw: int) -> None: ...
    async def delete_before(self, offset: int) -> None: ...
    def offset_for_timestamp(self, timestamp_ms: int, max_offset: int | None = None) -> tuple[int, int] | None: ...
    def retention_cutoff(self, retention_ms: int, retention_bytes: int, now_ms: int, limit: int) -> int: ...
    async def assign_epoch(self, epoch: int) -> None: ...
    async def truncate_fully_and_start_at(self, offset: int) -> None: ...
    async def delete(self) -> None: ...


def now_ms() -> float:
    return time.monotonic() * 1000.0


@dataclass(frozen=True, slots=True)
class AppendResult:
    base_offset: int
    batch_base_offsets: list[int]
    required_hw: int
    """acks=all is satisfied once the HW reaches this offset."""
    log_start_offset: int


@dataclass(slots=True)
class _ProduceWaiter:
    required_hw: int
    future: asyncio.Future[None]
    min_isr: int = 1


@dataclass(slots=True)
class ValidatedBatch:
    header: BatchHeader
    data: memoryview


def validate_produce(records: bytes, max_message_bytes: int) -> list[ValidatedBatch]:
    """Header and CRC checks a leader makes before anything is written."""
    if not records:
        raise KafkaError(ErrorCode.INVALID_RECORD, "produce request carries no record batch")
    out: list[ValidatedBatch] = []
    for header, view in split_batches(records):
        validate_batch(view, max_message_bytes)
        if header.attributes & CONTROL_BIT:
            raise KafkaError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
        if header.attributes & TRANSACTIONAL_BIT:
            raise KafkaError(ErrorCode.INVALID_RECORD, "transactional batches are not supported")
        if header.is_idempotent and (header.producer_epoch < 0 or header.base_sequence < 0):
            raise KafkaError(
                ErrorCode.INVALID_RECORD,
                f"idempotent batch of producer {header.producer_id} needs an epoch and a base sequence",
            )
        out.append(ValidatedBatch(header, view))
    return out


class Partition:
    """The I/O shell of one partition replica: log I/O under ``log_lock``, produce
    waiters and watchers, around the pure :class:`PartitionState` (``self.state``)."""

    def __init__(
        self,
        broker_id: int,
        topic: str,
        topic_id: str,
        partition: int,
        log: ReplicaLog,
        *,
        replica_lag_time_max_ms: int,
        clock: Callable[[], float] = now_ms,
        debug_unsafe_acks: bool = False,
    ) -> None:
        self.broker_id = broker_id
        self.topic = topic
        self.topic_id = topic_id
        self.partition = partition
        self.log = log
        self.clock = clock
        self.replica_lag_time_max_ms = replica_lag_time_max_ms
        self.debug_unsafe_acks = debug_unsafe_acks  # TEST-ONLY: see BrokerConfig.debug_unsafe_acks
        self.logger: FilteringBoundLogger = structlog.get_logger("partition").bind(
            node_id=broker_id, topic=topic, partition=partition
        )
        self.state = PartitionState(
            broker_id, replica_lag_time_max_ms=replica_lag_time_max_ms,
            high_watermark=min(log.high_watermark_checkpoint, log.log_end_offset), logger=self.logger,
        )
        self.leader_address = ""
        self.hw_checkpointed = self.state.high_watermark
        self.log_lock = asyncio.Lock()
        self.producer_state = ProducerStateManager()
        self._produce_waiters: list[_ProduceWaiter] = []
        self._watchers: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------------ views of the pure state
    @property
    def role(self) -> Role:
        return self.state.role

    @property
    def leader_id(self) -> int:
        return self.state.leader_id

    @property
    def leader_epoch(self) -> int:
        return self.state.leader_epoch

    @property
    def partition_epoch(self) -> int:
        return self.state.partition_epoch

    @property
    def replicas(self) -> tuple[int, ...]:
        return self.state.replicas

    @property
    def isr(self) -> tuple[int, ...]:
        return self.state.isr

    @property
    def pending_isr(self) -> PendingIsrChange | None:
        return self.state.pending_isr

    @property
    def config(self) -> TopicConfig:
        return self.state.config

    @property
    def live_brokers(self) -> Mapping[int, int]:
        return self.state.live_brokers

    @property
    def high_watermark(self) -> int:
        return self.state.high_watermark

    @property
    def followers(self) -> dict[int, FollowerState]:
        return self.state.followers

    @property
    def leader_epoch_start_offset(self) -> int | None:
        return self.state.leader_epoch_start_offset

    @property
    def follower_generation(self) -> int:
        return self.state.follower_generation

    @property
    def removed(self) -> bool:
        return self.state.removed

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """Committed ISR plus the additions of a pending change (KIP-497)."""
        return self.state.maximal_isr

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def is_leader(self) -> bool:
        return self.state.role is Role.LEADER

    def __repr__(self) -> str:
        return f"Partition({self.topic}-{self.partition} {self.role.value} epoch={self.leader_epoch})"

    def not_leader_error(self) -> KafkaError:
        leader = self.leader_id if self.leader_id != NO_LEADER else 0
        return KafkaError(
            ErrorCode.NOT_LEADER_OR_FOLLOWER,
            f"broker {self.broker_id} is not the leader of {self.topic}-{self.partition}"
            + (f"; broker {leader} is" if leader else "; it has no leader now"),
            leader_id=leader,
            leader_address=self.leader_address if leader else "",
        )

    def require_leader(self, current_leader_epoch: int = -1) -> None:
        if self.removed:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{self.topic}-{self.partition} was removed")
        self.check_leader_epoch(current_leader_epoch)
        if self.role is not Role.LEADER:
            raise self.not_leader_error()

    def check_leader_epoch(self, current_leader_epoch: int) -> None:
        """Kafka's fencing of requests that carry the sender's idea of the epoch."""
        self.state.check_leader_epoch(current_leader_epoch)

    # ------------------------------------------------------------------ waiting
    def watch(self, future: asyncio.Future[None]) -> None:
        """Complete ``future`` at the next change of HW, LEO or role."""
        self._watchers.add(future)

    def unwatch(self, future: asyncio.Future[None]) -> None:
        self._watchers.discard(future)

    def notify(self) -> None:
        watchers, self._watchers = self._watchers, set()
        for fut in watchers:
            if not fut.done():
                fut.set_result(None)

    def _fail_produce_waiters(self, error: KafkaError) -> None:
        waiters, self._produce_waiters = self._produce_waiters, []
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)

    def _complete_produce_waiters(self) -> None:
        if not self._produce_waiters:
            return
        keep: list[_ProduceWaiter] = []
        for waiter in self._produce_waiters:
            if waiter.future.done():
                continue
            if self.high_watermark >= waiter.required_hw:
                # Kafka checks min.insync.replicas again once the HW passes the batch: an
                # ISR that shrank meanwhile means fewer copies than the topic demands.
                if len(self.isr) < waiter.min_isr:
                    waiter.future.set_exception(self._not_enough_after_append(waiter.min_isr))
                else:
                    waiter.future.set_result(None)
            elif self._replicated_below_min_isr(waiter.required_hw):
                # The ISR holds it, but below min.insync the HW cannot pass it (KIP-966).
                waiter.future.set_exception(self._not_enough_after_append(self.config.min_insync_replicas))
            else:
                keep.append(waiter)
        self._produce_waiters = keep

    def _not_enough_after_append(self, min_isr: int) -> KafkaError:
        return KafkaError(
            ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            f"written, but the ISR {list(self.isr)} shrank below min.insync.replicas={min_isr}",
        )

    def _replicated_below_min_isr(self, required_hw: int) -> bool:
        """The ISR holds the batch but the HW cannot pass it (ISR below min.insync)."""
        if not self.state.is_under_min_isr:
            return False
        replicated = self.state.replicated_offset(self.log_end_offset)
        return replicated is not None and replicated >= required_hw

    def _hw_moved(self) -> None:
        self._complete_produce_waiters()
        self.notify()

    # ------------------------------------------------------------------ metadata
    def apply_metadata(
        self,
        reg: PartitionRegistration,
        config: TopicConfig,
        live_brokers: Mapping[int, int],
        leader_address: str,
    ) -> Transition:
        """Adopt what the controller committed. Synchronous: called on the event loop
        with each new metadata image."""
        self.leader_address = leader_address
        hw = self.state.high_watermark
        was_leader = self.state.role is Role.LEADER
        transition = self.state.apply_metadata(reg, config, live_brokers, now_ms=self.clock(),
                                               log_end_offset=self.log_end_offset)
        if self.state.role is Role.LEADER:
            self._complete_produce_waiters()
            if self.state.high_watermark != hw or transition is Transition.BECAME_LEADER:
                self.notify()
            return transition
        if was_leader or transition in (Transition.BECAME_FOLLOWER, Transition.BECAME_OFFLINE):
            self._fail_produce_waiters(self.not_leader_error())
        if transition is not Transition.NONE or reg.leader == NO_LEADER:
            self.notify()
        return transition

    def mark_removed(self) -> None:
        self.state.mark_removed()
        self._fail_produce_waiters(
            KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                       f"{self.topic}-{self.partition} is no longer on broker {self.broker_id}")
        )
        self.notify()

    # ------------------------------------------------------------------ HW
    def maybe_increment_hw(self) -> bool:
        """Leader: HW = min LEO over the maximal ISR; never moves back."""
        if self.state.maybe_increment_hw(self.log_end_offset):
            self._hw_moved()
            return True
        return False

    def update_follower_hw(self, leader_hw: int) -> None:
        """Follower: the leader's HW, bounded by what this replica holds."""
        if self.state.update_follower_hw(leader_hw, self.log_end_offset):
            self.notify()

    # ------------------------------------------------------------------ leader side
    async def ensure_leader_ready(self) -> None:
        """Under ``log_lock``: note where this epoch starts and bring the producer state
        up to the log end (KIP-101 epoch start; docs/architecture.md §4 state from the log tail)."""
        if self.leader_epoch_start_offset is None:
            # Kafka's maybeAssignEpochStartOffset: OffsetForLeaderEpoch then answers for
            # this epoch before its first append.
            await self.log.assign_epoch(self.leader_epoch)
            self.state.assign_epoch_start(self.log_end_offset)
        await self.rebuild_producer_state()

    async def rebuild_producer_state(self) -> None:
        """Scan batch headers from where the state was built to the log end."""
        state = self.producer_state
        if state.built_to < self.log_start_offset or state.built_to > self.log_end_offset:
            state.reset()
            state.built_to = self.log_start_offset
        offset = state.built_to
        end = self.log_end_offset
        scanned = 0
        while offset < end:
            data = self.log.read(offset, _SCAN_CHUNK_BYTES, end)
            if not data.records or data.next_offset <= offset:
                break
            for header, _ in split_batches(data.records):
                if header.next_offset > offset:
                    state.update(header)
                    scanned += 1
            offset = data.next_offset
            state.built_to = offset
            await asyncio.sleep(0)  # a long log must not starve the event loop
        if scanned:
            self.logger.info("producer state rebuilt from the log", batches=scanned,
                             producers=len(state.producers), up_to=state.built_to)

    async def append_as_leader(self, batches: list[ValidatedBatch], acks: int) -> AppendResult:
        """Assign offsets, stamp and durably append. The caller validated ``batches``."""
        self.require_leader()
        if acks == -1 and len(self.isr) < self.config.min_insync_replicas:
            raise KafkaError(
                ErrorCode.NOT_ENOUGH_REPLICAS,
                f"ISR {list(self.isr)} is smaller than min.insync.replicas={self.config.min_insync_replicas}",
            )
        epoch = self.leader_epoch
        async with self.log_lock:
            # Leadership may have moved while this request waited for the lock.
            if self.role is not Role.LEADER or self.leader_epoch != epoch or self.removed:
                raise self.not_leader_error()
            await self.ensure_leader_ready()
            pending: dict[int, BatchMetadata] = {}
            offsets: list[int] = []
            to_write: list[tuple[BatchHeader, bytes]] = []
            next_offset = self.log_end_offset
            required = 0
            for batch in batches:
                header = batch.header
                if header.is_idempotent:
                    duplicate = self.producer_state.check(header, pending)
                    if duplicate is not None:
                        self.logger.info("duplicate batch answered with its original offset",
                                         producer_id=header.producer_id, sequence=header.base_sequence,
                                         offset=duplicate.base_offset)
                        offsets.append(duplicate.base_offset)
                        required = max(required, duplicate.last_offset + 1)
                        continue
                stamped = replace(header, base_offset=next_offset, partition_leader_epoch=epoch)
                to_write.append((stamped, stamp(batch.data, next_offset, epoch)))
                offsets.append(next_offset)
                if header.is_idempotent:
                    pending[header.producer_id] = BatchMetadata(
                        header.base_sequence, header.last_sequence, next_offset,
                        stamped.last_offset, header.producer_epoch,
                    )
                next_offset = stamped.next_offset
            if to_write:
                await self.log.append(to_write, epoch)
                for stamped, _ in to_write:
                    if self.producer_state.built_to == stamped.base_offset:
                        self.producer_state.update(stamped)
                required = max(required, next_offset)
                self.maybe_increment_hw()
                self.notify()
        return AppendResult(offsets[0], offsets, required, self.log_start_offset)

    async def wait_for_hw(self, required_hw: int, timeout_s: float) -> None:
        """acks=all: wait until the HW passes the appended batches."""
        min_isr = self.config.min_insync_replicas
        if self.role is not Role.LEADER:
            raise self.not_leader_error()
        if self.debug_unsafe_acks:  # TEST-ONLY: see BrokerConfig.debug_unsafe_acks
            return
        if self.high_watermark >= required_hw or self._replicated_below_min_isr(required_hw):
            if len(self.isr) < min_isr:
                raise KafkaError(
                    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                    f"written, but the ISR {list(self.isr)} is below min.insync.replicas={min_isr}",
                )
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _ProduceWaiter(required_hw, future, min_isr)
        self._produce_waiters.append(waiter)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise KafkaError(
                ErrorCode.REQUEST_TIMED_OUT,
                f"the ISR did not reach offset {required_hw} within {timeout_s * 1000:.0f} ms"
                f" (high watermark {self.high_watermark})",
            ) from None
        finally:
            if waiter in self._produce_waiters:
                self._produce_waiters.remove(waiter)

    def fetch_offset_for_timestamp(self, timestamp: int) -> tuple[int, int]:
        """Leader: ListOffsets for LATEST (-1) or a time in ms: (offset, timestamp), or
        (-1, -1) when no record below the HW has that time (Kafka's
        fetchOffsetForTimestamp). OFFSET_NOT_AVAILABLE (retriable) while the HW is
        below this leader's epoch start and the answer would lie above the HW."""
        unavailable = self.state.unavailable_offsets_error(self.log_end_offset)
        if timestamp == LATEST_TIMESTAMP:
            if unavailable is not None:
                raise unavailable
            return self.high_watermark, -1
        found = self.log.offset_for_timestamp(timestamp, self.high_watermark)  # consumers see below the HW
        if found is not None:
            return found
        if unavailable is not None and self.log.offset_for_timestamp(timestamp) is not None:
            raise unavailable  # there is one, above the HW: the HW has not caught up yet
        return -1, -1

    def on_follower_fetch(self, replica_id: int, fetch_offset: int, last_fetched_epoch: int | None,
                          broker_epoch: int) -> FollowerFetch:
        """Leader: a follower's fetch (see :meth:`PartitionState.on_follower_fetch`);
        wakes waiters when the HW moved."""
        result = self.state.on_follower_fetch(self.log, replica_id, fetch_offset, last_fetched_epoch,
                                              broker_epoch, now_ms=self.clock())
        if result.hw_moved:
            self._hw_moved()
        return result

    def update_follower_fetch_state(self, replica_id: int, fetch_offset: int, broker_epoch: int) -> None:
        if self.state.update_follower_fetch_state(replica_id, fetch_offset, broker_epoch,
                                                  now_ms=self.clock(), log_end_offset=self.log_end_offset):
            self._hw_moved()

    # ISR changes: the leader only *proposes*; metadata decides (docs/architecture.md §4).
    def prepare_isr_expansion(self) -> PendingIsrChange | None:
        """A follower outside the ISR that caught up: propose adding it (one at a time)."""
        return self.state.prepare_isr_expansion(self.clock())

    def prepare_isr_shrink(self) -> PendingIsrChange | None:
        """Followers in the ISR that have not caught up for replica.lag.time.max.ms."""
        return self.state.prepare_isr_shrink(self.clock(), self.log_end_offset)

    def resend_candidate(self) -> PendingIsrChange | None:
        """A change whose previous attempt failed in transport: send it again."""
        return self.state.resend_candidate()

    def on_alter_partition_result(self, change: PendingIsrChange, error: ErrorCode | None,
                                  result_partition_epoch: int, transport_failed: bool = False) -> None:
        """The controller's answer. Success is adopted when metadata carries it."""
        if self.state.on_alter_partition_result(change, error, result_partition_epoch, now_ms=self.clock(),
                                                log_end_offset=self.log_end_offset,
                                                transport_failed=transport_failed):
            self._hw_moved()

    # ------------------------------------------------------------------ follower side
    async def append_as_follower(self, batches: list[tuple[BatchHeader, bytes]], generation: int,
                                 leader_hw: int) -> bool:
        """Append the leader's batches unchanged. False when the partition stopped
        following this leader generation meanwhile (nothing written then)."""
        async with self.log_lock:
            if self.role is not Role.FOLLOWER or self.follower_generation != generation or self.removed:
                return False
            plan = plan_follower_append(batches, self.log_end_offset, self.log_start_offset)
            if plan.truncate is not None:
                self.logger.warning("leader batch straddles the log end: replacing the batches under it",
                                    log_end_offset=self.log_end_offset, batch_base_offset=plan.truncate.offset)
                if isinstance(plan.truncate, TruncateFullyAndStartAt):
                    await self.log.truncate_fully_and_start_at(plan.truncate.offset)
                    self.producer_state.reset()
                    self.producer_state.built_to = plan.truncate.offset  # an empty log: nothing to remember
                    self.state.on_truncated(self.log_end_offset)
                else:
                    await self.log.truncate_to(plan.truncate.offset)
                    await self._after_truncation()
            leo = self.log_end_offset
            fresh = plan.batches
            if plan.truncate is not None and (not fresh or fresh[0][0].base_offset != leo):
                # Our batch under it started lower and went whole: fetch again from the new end.
                fresh = []
            if fresh and fresh[0][0].base_offset != leo:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE,
                                 f"leader sent offset {fresh[0][0].base_offset}, expected {leo}")
            if fresh:
                # Bytes unchanged; the epoch cache follows each batch's stamped epoch.
                await self.log.append(fresh, self.leader_epoch)
                for header, _ in fresh:
                    if self.producer_state.built_to == header.base_offset:
                        self.producer_state.update(header)
            self.update_follower_hw(leader_hw)
            if fresh:
                self.notify()
            return True

    async def _after_truncation(self) -> None:
        """Under ``log_lock``, after the log lost its tail: producer state and HW follow."""
        if self.producer_state.truncate(self.log_end_offset):
            # A producer lost all its remembered batches; its earlier ones are in the
            # log: rebuild from the log start so its sequence is known again.
            self.producer_state.reset()
            await self.rebuild_producer_state()
        self.state.on_truncated(self.log_end_offset)
        self.notify()

    async def truncate_to(self, offset: int, generation: int) -> bool:
        async with self.log_lock:
            if self.role is not Role.FOLLOWER or self.follower_generation != generation or self.removed:
                return False
            if offset < self.log_end_offset:
                self.logger.info("truncating divergent suffix", from_offset=self.log_end_offset,
                                 to_offset=offset, high_watermark=self.high_watermark)
                await self.log.truncate_to(max(offset, self.log_start_offset))
                await self._after_truncation()
            else:
                # No batch goes, but an epoch entry at the log end does (KIP-279).
                await self.log.truncate_to(offset)
            return True

    async def truncate_fully_and_start_at(self, offset: int, generation: int) -> bool:
        """The leader's log starts after ours ends: drop everything, start at ``offset``."""
        async with self.log_lock:
            if self.role is not Role.FOLLOWER or self.follower_generation != generation or self.removed:
                return False
            self.logger.warning("replica is behind the leader's log start: starting over",
                                log_end_offset=self.log_end_offset, leader_log_start=offset)
            await self.log.truncate_fully_and_start_at(offset)
            self.producer_state.reset()
            self.producer_state.built_to = offset  # an empty log: nothing to remember
            self.state.on_truncated(self.log_end_offset)
            if self.log_end_offset != offset:
                raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR,
                                 f"could not restart the log at {offset}: log end is {self.log_end_offset}")
            return True

    # ------------------------------------------------------------------ housekeeping
    async def checkpoint_hw(self) -> None:
        async with self.log_lock:  # not interleaved with a truncation
            hw = self.high_watermark
            if hw != self.hw_checkpointed and not self.removed:
                await self.log.checkpoint_high_watermark(hw)
                self.hw_checkpointed = hw

    async def apply_retention(self, now_wall_ms: int) -> int:
        """Delete whole old batches by retention.ms / retention.bytes, never at or above
        the HW (Kafka's rule: only committed data ages out). Returns the log start."""
        async with self.log_lock:
            if self.removed:
                return self.log_start_offset
            cut = self.log.retention_cutoff(
                self.config.retention_ms, self.config.retention_bytes, now_wall_ms, self.high_watermark
            )
            if cut > self.log_start_offset:
                self.logger.info("retention deletes old batches", log_start_offset=self.log_start_offset,
                                 new_log_start_offset=cut, size_bytes=self.log.size_bytes)
                await self.log.delete_before(cut)
            return self.log_start_offset


def group_batches(records: bytes) -> list[tuple[BatchHeader, bytes]]:
    """Split a leader's fetch response into (header, bytes) with the CRC checked."""
    out: list[tuple[BatchHeader, bytes]] = []
    for header, view in split_batches(records):
        validate_batch(view, max(header.size, 1))
        out.append((header, bytes(view)))
    return out


def new_future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


__all__ = [
    "AppendResult",
    "FollowerState",
    "Partition",
    "PendingIsrChange",
    "ReplicaLog",
    "Role",
    "Transition",
    "ValidatedBatch",
    "group_batches",
    "new_future",
    "validate_produce",
]
