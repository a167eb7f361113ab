"""One partition replica on this broker: role, epochs, ISR, high watermark, waiters.

Kafka's ``Partition`` reduced to what raftlog needs (docs/architecture.md §4):

- The committed ISR is what metadata says; while an AlterPartition is in flight the
  leader uses the *maximal* ISR (committed plus pending additions, KIP-497) for the
  high watermark, so an expansion the controller may already have committed is
  respected before the leader hears about it.
- HW = min log end offset over the maximal ISR; the leader's own LEO is its durable
  log end, so acks=all means "on disk on every ISR member". A leader's HW never
  moves back; a follower's HW is min(leader HW, own LEO).
- Every log mutation (leader append, follower append, truncation, retention,
  deletion) holds ``log_lock``; role changes are synchronous on the event loop and
  every async path re-checks role and epoch once it holds the lock.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import structlog
from structlog.typing import FilteringBoundLogger

from raftlog.node.broker.producer_state import BatchMetadata, ProducerStateManager
from raftlog.node.metadata.image import NO_LEADER, PartitionRegistration
from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import CONTROL_BIT, TRANSACTIONAL_BIT, BatchHeader, split_batches, stamp, validate_batch
from raftlog.storage.partition_log import EpochEntry, FetchedData
from raftlog.topic_config import TopicConfig

UNKNOWN_OFFSET = -1
#: After the controller refused an ISR change, wait this long before proposing
#: another (a leader whose metadata lags would otherwise ask on every fetch).
ISR_RETRY_BACKOFF_MS = 200
_SCAN_CHUNK_BYTES = 1 << 20  # producer-state rebuild reads the log in chunks of this



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


class Role(enum.Enum):
    LEADER = "leader"
    FOLLOWER = "follower"
    OFFLINE = "offline"
    """No leader in metadata (leader -1), or the partition was removed."""


class Transition(enum.Enum):
    NONE = "none"
    BECAME_LEADER = "became_leader"
    BECAME_FOLLOWER = "became_follower"
    """New leader or new leader epoch: the follower must truncate before fetching."""
    BECAME_OFFLINE = "became_offline"
    UPDATED = "updated"
    """Same role and epoch; ISR, partition epoch or replicas changed."""


def now_ms() -> float:
    return time.monotonic() * 1000.0


@dataclass(slots=True)
class FollowerState:
    """A follower as its leader sees it (Kafka's Replica / ReplicaState)."""

    broker_id: int
    log_end_offset: int = UNKNOWN_OFFSET
    """Its fetch offset: a follower fetches from its durable log end."""
    last_fetch_time_ms: float = 0.0
    last_fetch_leader_leo: int = UNKNOWN_OFFSET
    last_caught_up_time_ms: float = 0.0
    broker_epoch: int = -1

    def update_fetch_state(self, fetch_offset: int, fetch_time_ms: float, leader_leo: int,
                           broker_epoch: int) -> None:
        # Kafka's rule: caught up "now" when it asked for the leader's end; caught up
        # "as of its previous fetch" when it reached what the leader had back then.
        if fetch_offset >= leader_leo:
            self.last_caught_up_time_ms = max(self.last_caught_up_time_ms, fetch_time_ms)
        elif fetch_offset >= self.last_fetch_leader_leo >= 0:
            self.last_caught_up_time_ms = max(self.last_caught_up_time_ms, self.last_fetch_time_ms)
        self.log_end_offset = fetch_offset
        self.last_fetch_leader_leo = leader_leo
        self.last_fetch_time_ms = fetch_time_ms
        self.broker_epoch = broker_epoch

    def is_caught_up(self, leader_leo: int, now: float, max_lag_ms: int) -> bool:
        return self.log_end_offset == leader_leo or now - self.last_caught_up_time_ms <= max_lag_ms


@dataclass(slots=True)
class PendingIsrChange:
    """An AlterPartition in flight (Kafka's PendingExpandIsr / PendingShrinkIsr)."""

    new_isr: tuple[int, ...]
    leader_epoch: int
    partition_epoch: int
    """The partition epoch the request was based on."""
    accepted_epoch: int | None = None
    """The partition epoch the controller answered with; cleared once metadata has it."""
    unknown_outcome: bool = False
    """The call failed in transport: it may or may not have been committed; resend."""


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
        self.role = Role.OFFLINE
        self.leader_id = NO_LEADER
        self.leader_address = ""
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.pending_isr: PendingIsrChange | None = None
        self.isr_retry_after_ms = 0.0
        self.config = TopicConfig.of({})
        self.live_brokers: Mapping[int, int] = {}
        """Unfenced broker id -> broker epoch (from metadata): who may join the ISR."""
        self.high_watermark = min(log.high_watermark_checkpoint, log.log_end_offset)
        self.hw_checkpointed = self.high_watermark
        self.followers: dict[int, FollowerState] = {}
        self.leader_epoch_start_offset: int | None = None
        self.follower_generation = 0
        """Bumped on every (re)start of following: the fetcher truncates first."""
        self.log_lock = asyncio.Lock()
        self.producer_state = ProducerStateManager()
        self.removed = False
        self._produce_waiters: list[_ProduceWaiter] = []
        self._watchers: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------------ views
    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """Committed ISR plus the additions of a pending change (KIP-497)."""
        if self.pending_isr is None:
            return self.isr
        return self.isr + tuple(b for b in self.pending_isr.new_isr if b not in self.isr)

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
        if current_leader_epoch < 0:
            return
        if current_leader_epoch < self.leader_epoch:
            raise KafkaError(
                ErrorCode.FENCED_LEADER_EPOCH,
                f"leader epoch {current_leader_epoch} is older than {self.leader_epoch}",
            )
        if current_leader_epoch > self.leader_epoch:
            raise KafkaError(
                ErrorCode.UNKNOWN_LEADER_EPOCH,
                f"leader epoch {current_leader_epoch} is newer than this broker's {self.leader_epoch}",
            )

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
                    waiter.future.set_exception(KafkaError(
                        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                        f"written, but the ISR {list(self.isr)} shrank below min.insync.replicas={waiter.min_isr}",
                    ))
                else:
                    waiter.future.set_result(None)
            else:
                keep.append(waiter)
        self._produce_waiters = keep

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
        self.config = config
        self.live_brokers = live_brokers
        self.leader_address = leader_address
        if reg.leader_epoch < self.leader_epoch or (
            reg.leader_epoch == self.leader_epoch and reg.partition_epoch < self.partition_epoch
        ):
            return Transition.NONE  # stale metadata never moves a partition back
        if reg.leader == self.broker_id:
            if self.role is not Role.LEADER or reg.leader_epoch != self.leader_epoch:
                self._become_leader(reg)
                return Transition.BECAME_LEADER
            changed = self._update_isr(reg)
            self.maybe_increment_hw()
            self._complete_produce_waiters()
            return Transition.UPDATED if changed else Transition.NONE
        if reg.leader == NO_LEADER:
            was = self.role
            self._stop_leading(reg)
            self.role = Role.OFFLINE
            self.leader_id = NO_LEADER
            self.notify()
            return Transition.BECAME_OFFLINE if was is not Role.OFFLINE else Transition.NONE
        if self.role is not Role.FOLLOWER or reg.leader_epoch != self.leader_epoch or reg.leader != self.leader_id:
            self._stop_leading(reg)
            self.role = Role.FOLLOWER
            self.leader_id = reg.leader
            self.follower_generation += 1
            self.logger.info("became follower", leader=reg.leader, leader_epoch=reg.leader_epoch,
                             log_end_offset=self.log_end_offset, high_watermark=self.high_watermark)
            self.notify()
            return Transition.BECAME_FOLLOWER
        return Transition.UPDATED if self._update_isr(reg) else Transition.NONE

    def _update_isr(self, reg: PartitionRegistration) -> bool:
        changed = (reg.isr, reg.replicas, reg.partition_epoch) != (self.isr, self.replicas, self.partition_epoch)
        if reg.partition_epoch > self.partition_epoch:
            # The committed state replaces whatever change was in flight (a stale
            # in-flight request will be refused with INVALID_UPDATE_VERSION).
            self.pending_isr = None
            self.isr_retry_after_ms = 0.0
        self.isr = reg.isr
        self.replicas = reg.replicas
        self.partition_epoch = reg.partition_epoch
        if self.role is Role.LEADER:
            for b in reg.replicas:
                if b != self.broker_id and b not in self.followers:
                    self.followers[b] = FollowerState(b)
            for b in list(self.followers):
                if b not in reg.replicas:
                    del self.followers[b]
        return changed

    def _become_leader(self, reg: PartitionRegistration) -> None:
        now = self.clock()
        self.role = Role.LEADER
        self.leader_id = self.broker_id
        self.leader_epoch = reg.leader_epoch
        self.partition_epoch = reg.partition_epoch
        self.replicas = reg.replicas
        self.isr = reg.isr
        self.pending_isr = None
        self.isr_retry_after_ms = 0.0
        # ISR members are presumed caught up as of now (Kafka resets the same way), so
        # a new leader does not shrink its ISR before followers had a chance to fetch.
        self.followers = {
            b: FollowerState(b, last_caught_up_time_ms=now if b in reg.isr else 0.0)
            for b in reg.replicas
            if b != self.broker_id
        }
        self.leader_epoch_start_offset = None  # set under log_lock by ensure_leader_ready
        self.high_watermark = min(self.high_watermark, self.log_end_offset)
        self.logger.info("became leader", leader_epoch=reg.leader_epoch, isr=list(reg.isr),
                         log_end_offset=self.log_end_offset, high_watermark=self.high_watermark)
        self.maybe_increment_hw()
        self.notify()

    def _stop_leading(self, reg: PartitionRegistration) -> None:
        was_leader = self.role is Role.LEADER
        self.leader_epoch = reg.leader_epoch
        self.partition_epoch = reg.partition_epoch
        self.replicas = reg.replicas
        self.isr = reg.isr
        self.pending_isr = None
        self.followers = {}
        self.leader_epoch_start_offset = None
        self.leader_id = reg.leader
        if was_leader:
            self.logger.info("resigned leadership", new_leader=reg.leader, leader_epoch=reg.leader_epoch)
        self._fail_produce_waiters(self.not_leader_error())

    def mark_removed(self) -> None:
        self.removed = True
        self.role = Role.OFFLINE
        self.pending_isr = None
        self._fail_produce_waiters(
            KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                       f"{self.topic}-{self.partition} is no longer on broker {self.broker_id}")
        )
        self.notify()

    # ------------------------------------------------------------------ HW
    def maybe_increment_hw(self) -> bool:
        """Leader: HW = min LEO over the maximal ISR; never moves back."""
        if self.role is not Role.LEADER:
            return False
        new_hw = self.log_end_offset
        for b in self.maximal_isr:
            if b == self.broker_id:
                continue
            state = self.followers.get(b)
            if state is None or state.log_end_offset < 0:
                return False  # not heard from since this leadership began
            new_hw = min(new_hw, state.log_end_offset)
        if new_hw > self.high_watermark:
            self.high_watermark = new_hw
            self._complete_produce_waiters()
            self.notify()
            return True
        return False

    def update_follower_hw(self, leader_hw: int) -> None:
        """Follower: the leader's HW, bounded by what this replica holds."""
        new_hw = min(leader_hw, self.log_end_offset)
        if new_hw != self.high_watermark:
            self.high_watermark = new_hw
            self.notify()

    # ------------------------------------------------------------------ leader side
    async def ensure_leader_ready(self) -> None:
        """Under ``log_lock``: note where this epoch starts and bring the producer state
        up to the log end (KIP-101 epoch start; docs/architecture.md §4 state from the log tail)."""
        if self.leader_epoch_start_offset is None:
            # Kafka's maybeAssignEpochStartOffset: OffsetForLeaderEpoch then answers for
            # this epoch before its first append.
            await self.log.assign_epoch(self.leader_epoch)
            self.leader_epoch_start_offset = self.log_end_offset
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
        if self.high_watermark >= required_hw:
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

    def update_follower_fetch_state(self, replica_id: int, fetch_offset: int, broker_epoch: int) -> None:
        state = self.followers.get(replica_id)
        if state is None:
            return
        state.update_fetch_state(fetch_offset, self.clock(), self.log_end_offset, broker_epoch)
        self.maybe_increment_hw()

    # ISR changes: the leader only *proposes*; metadata decides (docs/architecture.md §4).
    def _eligible_for_isr(self, state: FollowerState) -> bool:
        epoch = self.live_brokers.get(state.broker_id)
        start = self.leader_epoch_start_offset
        return (
            epoch is not None
            and (state.broker_epoch < 0 or state.broker_epoch == epoch)
            and state.log_end_offset >= self.high_watermark
            and start is not None
            and state.log_end_offset >= start
        )

    def _may_propose(self) -> bool:
        return (self.role is Role.LEADER and self.pending_isr is None and not self.removed
                and self.clock() >= self.isr_retry_after_ms)

    def prepare_isr_expansion(self) -> PendingIsrChange | None:
        """A follower outside the ISR that caught up: propose adding it (one at a time)."""
        if not self._may_propose():
            return None
        joiners = [
            b for b, s in self.followers.items()
            if b not in self.isr and self._eligible_for_isr(s)
        ]
        if not joiners:
            return None
        new_isr = self.isr + tuple(sorted(joiners))
        self.pending_isr = PendingIsrChange(new_isr, self.leader_epoch, self.partition_epoch)
        self.logger.info("proposing ISR expansion", isr=list(self.isr), new_isr=list(new_isr),
                         partition_epoch=self.partition_epoch)
        return self.pending_isr

    def prepare_isr_shrink(self) -> PendingIsrChange | None:
        """Followers in the ISR that have not caught up for replica.lag.time.max.ms."""
        if not self._may_propose():
            return None
        now = self.clock()
        leo = self.log_end_offset
        lagging = [
            b for b in self.isr
            if b != self.broker_id
            and (s := self.followers.get(b)) is not None
            and not s.is_caught_up(leo, now, self.replica_lag_time_max_ms)
        ]
        if not lagging:
            return None
        new_isr = tuple(b for b in self.isr if b not in lagging)
        self.pending_isr = PendingIsrChange(new_isr, self.leader_epoch, self.partition_epoch)
        self.logger.info("proposing ISR shrink", isr=list(self.isr), new_isr=list(new_isr), lagging=lagging,
                         partition_epoch=self.partition_epoch, log_end_offset=leo)
        return self.pending_isr

    def resend_candidate(self) -> PendingIsrChange | None:
        """A change whose previous attempt failed in transport: send it again."""
        pending = self.pending_isr
        if pending is not None and pending.unknown_outcome and self.role is Role.LEADER:
            pending.unknown_outcome = False
            return pending
        return None

    def on_alter_partition_result(self, change: PendingIsrChange, error: ErrorCode | None,
                                  result_partition_epoch: int, transport_failed: bool = False) -> None:
        """The controller's answer. Success is adopted when metadata carries it."""
        if self.pending_isr is not change:
            return  # superseded by newer metadata
        if transport_failed:
            # Outcome unknown: keep the maximal ISR and retry, since the controller
            # may already have committed the change.
            change.unknown_outcome = True
            return
        if error is None:
            if result_partition_epoch <= self.partition_epoch:
                self.pending_isr = None  # metadata already has it
            else:
                change.accepted_epoch = result_partition_epoch
            return
        self.logger.info("AlterPartition refused", error=error.name, new_isr=list(change.new_isr))
        self.pending_isr = None
        self.isr_retry_after_ms = self.clock() + ISR_RETRY_BACKOFF_MS
        self.maybe_increment_hw()

    # ------------------------------------------------------------------ follower side
    async def append_as_follower(self, batches: list[tuple[BatchHeader, bytes]], generation: int,
                                 leader_hw: int) -> bool:
        """Append the leader's batches unchanged. False when the partition stopped
        following this leader generation meanwhile (nothing written then)."""
        async with self.log_lock:
            if self.role is not Role.FOLLOWER or self.follower_generation != generation or self.removed:
                return False
            leo = self.log_end_offset
            fresh = [(h, b) for h, b in batches if h.base_offset >= leo]
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

    async def truncate_to(self, offset: int, generation: int) -> bool:
        async with self.log_lock:
            if self.role is not Role.FOLLOWER or self.follower_generation != generation or self.removed:
                return False
            if offset < self.log_end_offset:
                self.logger.info("truncating divergent suffix", from_offset=self.log_end_offset,
                                 to_offset=offset, high_watermark=self.high_watermark)
                await self.log.truncate_to(max(offset, self.log_start_offset))
                self.producer_state.truncate(self.log_end_offset)
                self.high_watermark = min(self.high_watermark, self.log_end_offset)
                self.notify()
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
            self.high_watermark = min(self.high_watermark, self.log_end_offset)
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
