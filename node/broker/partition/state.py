"""The replication state of one partition replica, pure (no I/O, no clock, no asyncio).

Kafka's ``Partition`` bookkeeping reduced to what raftlog needs (docs/architecture.md §4):
role, leader epoch, partition epoch, ISR and the AlterPartition in flight, the
followers' fetch states (on a leader) and the high watermark. The log is not here:
every method that needs the log end offset takes it as an argument, and every method
that needs the time takes ``now_ms`` (monotonic milliseconds). The I/O shell
(:mod:`raftlog.node.broker.partition.shell`) holds one :class:`PartitionState`, does
the log I/O and wakes waiters when a method reports a change.

- The committed ISR is what metadata says; while an AlterPartition is in flight the
  leader uses the *maximal* ISR (committed plus pending additions, KIP-497) for the
  high watermark, so an expansion the controller may already have committed is
  respected before the leader hears about it.
- HW = min log end offset over the maximal ISR; the leader's own LEO is its durable
  log end, so acks=all means "on disk on every ISR member". A leader's HW never
  moves back; a follower's HW is min(leader HW, own LEO).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.broker.partition.epochs import EpochCacheView, diverging_epoch
from raftlog.node.metadata.image import NO_LEADER, PartitionRegistration
from raftlog.topic_config import TopicConfig

UNKNOWN_OFFSET = -1
#: After the controller refused an ISR change, wait this long before proposing
#: another (a leader whose metadata lags would otherwise ask on every fetch).
ISR_RETRY_BACKOFF_MS = 200
#: AlterPartition errors that prove the change was not applied (Kafka resets the
#: pending state on these only).
_NOT_APPLIED = frozenset({ErrorCode.OPERATION_NOT_ATTEMPTED, ErrorCode.INELIGIBLE_REPLICA})
#: Errors after which the leader waits for metadata, keeping the maximal ISR (KIP-497).
_WAIT_FOR_METADATA = frozenset({
    ErrorCode.INVALID_UPDATE_VERSION,
    ErrorCode.FENCED_LEADER_EPOCH,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.UNKNOWN_TOPIC_ID,
})


class EventLogger(Protocol):
    """The logging the state machine does, injected (the shell passes its structlog
    logger; a simulation may pass anything with ``info``)."""

    def info(self, event: str, *args: Any, **kw: Any) -> Any: ...


class _SilentLogger:
    def info(self, event: str, *args: Any, **kw: Any) -> None:
        return None


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
class FollowerFetch:
    """What a leader concluded from one follower fetch."""

    diverging_epoch: tuple[int, int] | None
    """(epoch, end offset) to answer instead of records; None: the logs agree."""
    hw_moved: bool
    isr_change: PendingIsrChange | None
    """An ISR expansion to send to the controller."""


class PartitionState:
    """Role, epochs, ISR, pending ISR change, follower fetch states and HW of one replica.

    Pure: the shell passes the log end offset and the time into each call. Methods
    that can move the HW or the role return what changed so the shell can wake
    waiters; nothing here blocks or performs I/O.
    """

    def __init__(self, broker_id: int, *, replica_lag_time_max_ms: int, high_watermark: int,
                 logger: EventLogger | None = None) -> None:
        self.broker_id = broker_id
        self.replica_lag_time_max_ms = replica_lag_time_max_ms
        self.logger: EventLogger = logger or _SilentLogger()
        self.role = Role.OFFLINE
        self.leader_id = NO_LEADER
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.pending_isr: PendingIsrChange | None = None
        self.isr_retry_after_ms = 0.0
        self.config = TopicConfig.of({})
        self.live_brokers: Mapping[int, int] = {}
        """Unfenced broker id -> broker epoch (from metadata): who may join the ISR."""
        self.high_watermark = high_watermark
        self.followers: dict[int, FollowerState] = {}
        self.leader_epoch_start_offset: int | None = None
        """Where this leader's epoch starts in its log (set once the epoch is assigned)."""
        self.follower_generation = 0
        """Bumped on every (re)start of following: the fetcher truncates first."""
        self.removed = False

    # ------------------------------------------------------------------ views
    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """Committed ISR plus the additions of a pending change (KIP-497)."""
        if self.pending_isr is None:
            return self.isr
        return self.isr + tuple(b for b in self.pending_isr.new_isr if b not in self.isr)

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

    # ------------------------------------------------------------------ metadata
    def apply_metadata(self, reg: PartitionRegistration, config: TopicConfig,
                       live_brokers: Mapping[int, int], *, now_ms: float, log_end_offset: int) -> Transition:
        """Adopt what the controller committed; the shell notifies watchers and
        completes or fails produce waiters according to the returned transition."""
        self.config = config
        self.live_brokers = live_brokers
        if reg.leader_epoch < self.leader_epoch or (
            reg.leader_epoch == self.leader_epoch and reg.partition_epoch < self.partition_epoch
        ):
            return Transition.NONE  # stale metadata never moves a partition back
        if reg.leader == self.broker_id:
            if self.role is not Role.LEADER or reg.leader_epoch != self.leader_epoch:
                self._become_leader(reg, now_ms, log_end_offset)
                return Transition.BECAME_LEADER
            changed = self._update_isr(reg)
            self.maybe_increment_hw(log_end_offset)
            return Transition.UPDATED if changed else Transition.NONE
        if reg.leader == NO_LEADER:
            was = self.role
            self._stop_leading(reg)
            self.role = Role.OFFLINE
            self.leader_id = NO_LEADER
            return Transition.BECAME_OFFLINE if was is not Role.OFFLINE else Transition.NONE
        if self.role is not Role.FOLLOWER or reg.leader_epoch != self.leader_epoch or reg.leader != self.leader_id:
            self._stop_leading(reg)
            self.role = Role.FOLLOWER
            self.leader_id = reg.leader
            self.follower_generation += 1
            self.logger.info("became follower", leader=reg.leader, leader_epoch=reg.leader_epoch,
                             log_end_offset=log_end_offset, high_watermark=self.high_watermark)
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

    def _become_leader(self, reg: PartitionRegistration, now: float, log_end_offset: int) -> None:
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
        self.leader_epoch_start_offset = None  # set by the shell once the epoch is in the log
        self.high_watermark = min(self.high_watermark, log_end_offset)
        self.logger.info("became leader", leader_epoch=reg.leader_epoch, isr=list(reg.isr),
                         log_end_offset=log_end_offset, high_watermark=self.high_watermark)
        self.maybe_increment_hw(log_end_offset)

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

    def mark_removed(self) -> None:
        self.removed = True
        self.role = Role.OFFLINE
        self.pending_isr = None

    # ------------------------------------------------------------------ HW
    @property
    def is_under_min_isr(self) -> bool:
        """The committed ISR is smaller than min.insync.replicas."""
        return len(self.isr) < self.config.min_insync_replicas

    def replicated_offset(self, log_end_offset: int) -> int | None:
        """Min log end offset over the maximal ISR (what the HW would be); None while
        a member has not fetched since this leadership began."""
        low = log_end_offset
        for b in self.maximal_isr:
            if b == self.broker_id:
                continue
            state = self.followers.get(b)
            if state is None or state.log_end_offset < 0:
                return None
            low = min(low, state.log_end_offset)
        return low

    def maybe_increment_hw(self, log_end_offset: int) -> bool:
        """Leader: HW = min LEO over the maximal ISR; never moves back, and does not
        move while the ISR is below min.insync.replicas (KIP-966: what fewer replicas
        than the topic demands hold is not exposed). True when it moved."""
        if self.role is not Role.LEADER or self.is_under_min_isr:
            return False
        new_hw = self.replicated_offset(log_end_offset)
        if new_hw is None:
            return False  # a member not heard from since this leadership began
        if new_hw > self.high_watermark:
            self.high_watermark = new_hw
            return True
        return False

    def update_follower_hw(self, leader_hw: int, log_end_offset: int) -> bool:
        """Follower: the leader's HW, bounded by what this replica holds. True when it changed."""
        new_hw = min(leader_hw, log_end_offset)
        if new_hw != self.high_watermark:
            self.high_watermark = new_hw
            return True
        return False

    def on_truncated(self, log_end_offset: int) -> None:
        """The log was cut to ``log_end_offset``: the HW cannot be above it."""
        self.high_watermark = min(self.high_watermark, log_end_offset)

    def unavailable_offsets_error(self, log_end_offset: int) -> KafkaError | None:
        """KIP-207: a new leader whose HW is still below the start of its own epoch
        (its predecessor's HW may have been higher) cannot say where the committed
        log ends; answering its HW would move the end backwards for clients."""
        start = self.leader_epoch_start_offset
        if start is None:
            start = log_end_offset  # not assigned yet: the epoch starts at the log end
        if self.role is not Role.LEADER or start <= self.high_watermark:
            return None
        return KafkaError(
            ErrorCode.OFFSET_NOT_AVAILABLE,
            f"the high watermark {self.high_watermark} has not reached the start {start}"
            f" of leader epoch {self.leader_epoch} yet",
        )

    # ------------------------------------------------------------------ leader: followers and ISR
    def update_follower_fetch_state(self, replica_id: int, fetch_offset: int, broker_epoch: int, *,
                                    now_ms: float, log_end_offset: int) -> bool:
        """A follower fetched from ``fetch_offset`` (its log end). True when the HW moved."""
        state = self.followers.get(replica_id)
        if state is None:
            return False
        state.update_fetch_state(fetch_offset, now_ms, log_end_offset, broker_epoch)
        return self.maybe_increment_hw(log_end_offset)

    def assign_epoch_start(self, offset: int) -> None:
        """Leader: its epoch starts at ``offset`` in the log (the shell recorded the
        epoch there, Kafka's maybeAssignEpochStartOffset). Needed before followers
        may join the ISR and before ListOffsets answers."""
        if self.role is Role.LEADER:
            self.leader_epoch_start_offset = offset

    def on_follower_fetch(self, log: EpochCacheView, replica_id: int, fetch_offset: int,
                          last_fetched_epoch: int | None, broker_epoch: int, *, now_ms: float) -> FollowerFetch:
        """Leader: a follower's fetch (the first look of a long poll). Checks
        divergence (a diverged follower counts toward neither HW nor ISR), then the
        fetch offset (OFFSET_OUT_OF_RANGE), then records the follower's log end and
        proposes an ISR expansion it made possible. The caller reads the records."""
        if last_fetched_epoch is not None:
            diverging = diverging_epoch(log, self.leader_epoch, last_fetched_epoch, fetch_offset)
            if diverging is not None:
                return FollowerFetch(diverging_epoch=diverging, hw_moved=False, isr_change=None)
        if fetch_offset < log.log_start_offset or fetch_offset > log.log_end_offset:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"fetch offset {fetch_offset} is outside [{log.log_start_offset}, {log.log_end_offset}]",
            )
        hw_moved = self.update_follower_fetch_state(replica_id, fetch_offset, broker_epoch, now_ms=now_ms,
                                                    log_end_offset=log.log_end_offset)
        return FollowerFetch(diverging_epoch=None, hw_moved=hw_moved, isr_change=self.prepare_isr_expansion(now_ms))

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

    def _may_propose(self, now_ms: float) -> bool:
        return (self.role is Role.LEADER and self.pending_isr is None and not self.removed
                and now_ms >= self.isr_retry_after_ms)

    def prepare_isr_expansion(self, now_ms: float) -> PendingIsrChange | None:
        """A follower outside the ISR that caught up: propose adding it (one at a time)."""
        if not self._may_propose(now_ms):
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

    def prepare_isr_shrink(self, now_ms: float, log_end_offset: int) -> PendingIsrChange | None:
        """Followers in the ISR that have not caught up for replica.lag.time.max.ms."""
        if not self._may_propose(now_ms):
            return None
        leo = log_end_offset
        lagging = [
            b for b in self.isr
            if b != self.broker_id
            and (s := self.followers.get(b)) is not None
            and not s.is_caught_up(leo, now_ms, self.replica_lag_time_max_ms)
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
                                  result_partition_epoch: int, *, now_ms: float, log_end_offset: int,
                                  transport_failed: bool = False) -> bool:
        """The controller's answer. Success is adopted when metadata carries it.
        True when the HW moved."""
        if self.pending_isr is not change:
            return False  # superseded by newer metadata
        if transport_failed:
            # Outcome unknown: keep the maximal ISR and retry, since the controller
            # may already have committed the change.
            change.unknown_outcome = True
            return False
        if error is None:
            if result_partition_epoch <= self.partition_epoch:
                self.pending_isr = None  # metadata already has it
            else:
                change.accepted_epoch = result_partition_epoch
            return False
        if error in _NOT_APPLIED:
            # Only these prove the change was not applied: back to the committed ISR.
            self.logger.info("AlterPartition refused", error=error.name, new_isr=list(change.new_isr))
            self.pending_isr = None
            self.isr_retry_after_ms = now_ms + ISR_RETRY_BACKOFF_MS
            return self.maybe_increment_hw(log_end_offset)
        if error in _WAIT_FOR_METADATA:
            # A retry of a change that may have been committed can be refused this way
            # although the controller applied it: keep the maximal ISR until metadata
            # shows the outcome (which replaces the pending change).
            self.logger.info("AlterPartition refused; keeping the maximal ISR until metadata shows the outcome",
                             error=error.name, new_isr=list(change.new_isr), maximal_isr=list(self.maximal_isr))
            return False
        # Anything else: outcome unknown, send again.
        self.logger.info("AlterPartition failed; will retry", error=error.name, new_isr=list(change.new_isr))
        change.unknown_outcome = True
        return False


__all__ = [
    "ISR_RETRY_BACKOFF_MS",
    "UNKNOWN_OFFSET",
    "EventLogger",
    "FollowerFetch",
    "FollowerState",
    "PartitionState",
    "PendingIsrChange",
    "Role",
    "Transition",
]
