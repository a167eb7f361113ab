"""A follower's fetch decisions for one partition, pure (Kafka's fetcher logic).

:class:`FollowerFetchState` says what to ask the leader next, and turns each answer
(OffsetForLeaderEpoch result, fetch error, fetched batches) into a log action
(:class:`TruncateTo`, :class:`TruncateFullyAndStartAt`, batches to append). The
fetcher (``raftlog.node.broker.fetcher``) performs the RPCs and the log I/O; a
simulation can drive the same decisions against an in-memory log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from raftlog.errors import ErrorCode
from raftlog.node.broker.partition.epochs import EpochCacheView, OffsetTruncationState, offset_truncation_state
from raftlog.records import BatchHeader

#: Leader errors after which the follower must find the divergence again.
_EPOCH_ERRORS = frozenset({ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH})


@dataclass(frozen=True, slots=True)
class TruncateTo:
    """Drop every batch at or after ``offset``."""

    offset: int


@dataclass(frozen=True, slots=True)
class TruncateFullyAndStartAt:
    """Drop everything; the empty log starts at ``offset`` (the leader's log start)."""

    offset: int


LogAction = TruncateTo | TruncateFullyAndStartAt


@dataclass(slots=True)
class FollowerFetchState:
    """One followed partition as its fetcher sees it (Kafka's PartitionFetchState)."""

    generation: int
    """The partition's follower generation this state belongs to."""
    needs_truncation: bool = True
    delayed_until_ms: float = 0.0
    ahead_of_leader: bool = False
    """The last fetch was out of range above the leader's log start."""

    # ------------------------------------------------------------------ truncation
    def epoch_to_query(self, log: EpochCacheView) -> int | None:
        """The epoch to ask OffsetForLeaderEpoch about; None when the log has no
        epoch cache (then :meth:`truncation_without_epochs` applies)."""
        latest = log.latest_epoch()
        return latest if latest >= 0 else None

    def truncation_without_epochs(self, log: EpochCacheView, high_watermark: int) -> TruncateTo | None:
        """No epoch cache to compare with: keep only what was committed."""
        self.needs_truncation = False
        if log.log_end_offset > high_watermark:
            return TruncateTo(high_watermark)
        return None

    def on_epoch_end(self, log: EpochCacheView, high_watermark: int, leader_epoch: int,
                     end_offset: int) -> OffsetTruncationState:
        """The leader's OffsetForLeaderEpoch answer: where to cut. Call
        :meth:`after_truncation` once the cut is done."""
        return offset_truncation_state(log, high_watermark, leader_epoch, end_offset)

    def after_truncation(self, step: OffsetTruncationState, log_end_before: int, latest_epoch_before: int,
                         log: EpochCacheView) -> bool:
        """Kafka's loop: an intermediate KIP-279 step asks again until the epoch cache
        agrees with the leader. Each step drops at least the latest local epoch (a
        truncation at or past the log end still drops the entries there), so the
        loop ends; a step that changed nothing would repeat forever and stops.
        Returns whether the step changed the log or its epoch cache."""
        progressed = log.log_end_offset != log_end_before or log.latest_epoch() != latest_epoch_before
        self.needs_truncation = not step.truncation_completed and progressed and log.latest_epoch() >= 0
        return progressed

    def on_no_progress(self, now_ms: float, backoff_ms: int) -> None:
        """The leader reported a divergence that cutting did not change: the next
        fetch would be answered the same way, so back off instead of spinning."""
        self.delayed_until_ms = now_ms + backoff_ms

    def on_diverging_epoch(self, log: EpochCacheView, high_watermark: int, epoch: int,
                           end_offset: int) -> OffsetTruncationState:
        """The leader answered a fetch with DivergingEpoch: where to cut (as for an
        OffsetForLeaderEpoch answer). Call :meth:`after_truncation` once cut."""
        self.ahead_of_leader = False
        return offset_truncation_state(log, high_watermark, epoch, end_offset)

    # ------------------------------------------------------------------ fetch
    def fetch_offset(self, log: EpochCacheView) -> int:
        """A follower fetches from its durable log end."""
        return log.log_end_offset

    def last_fetched_epoch(self, log: EpochCacheView) -> int | None:
        """The epoch the fetch carries for the leader's divergence check (Kafka's
        lastFetchedEpoch): the latest in the epoch cache; None when there is none."""
        latest = log.latest_epoch()
        return latest if latest >= 0 else None

    def on_fetched(self) -> None:
        """The leader answered the fetch with data (possibly none)."""
        self.ahead_of_leader = False

    def on_out_of_range(self, fetch_offset: int, leader_log_start: int, leader_high_watermark: int,
                        now_ms: float, backoff_ms: int) -> LogAction | None:
        """OFFSET_OUT_OF_RANGE from the leader: what to do with the log."""
        if fetch_offset < leader_log_start:
            return TruncateFullyAndStartAt(leader_log_start)
        if not self.ahead_of_leader:
            # Past the leader's log end: find the divergence by epoch first.
            self.ahead_of_leader = True
            self.needs_truncation = True
            return None
        # The epoch check did not help (e.g. after an unclean election): keep only
        # what the leader has committed and fetch the rest again.
        self.delayed_until_ms = now_ms + backoff_ms
        return TruncateTo(min(fetch_offset, leader_high_watermark))

    def on_partition_error(self, code: int, now_ms: float, backoff_ms: int) -> None:
        """Any other partition error: back off; an epoch error re-checks divergence."""
        self.delayed_until_ms = now_ms + backoff_ms
        if code in _EPOCH_ERRORS:
            self.needs_truncation = True

    def on_bad_data(self, now_ms: float, backoff_ms: int) -> None:
        """The leader sent a corrupt batch: retry later."""
        self.delayed_until_ms = now_ms + backoff_ms

    def on_append_mismatch(self) -> None:
        """The fetched data does not fit the log: find the divergence."""
        self.needs_truncation = True


@dataclass(frozen=True, slots=True)
class FollowerAppend:
    """What to do with fetched batches: an optional cut first, then the batches."""

    truncate: LogAction | None
    batches: list[tuple[BatchHeader, bytes]]


def plan_follower_append(batches: Sequence[tuple[BatchHeader, bytes]], log_end_offset: int,
                         log_start_offset: int) -> FollowerAppend:
    """The fetched batches this log does not hold yet (those from its log end on).

    A batch that starts below the log end and ends after it is the leader's batch
    over offsets this replica holds in other batches; replicas copy whole batches,
    so those cannot be the leader's: cut back to the batch's base offset and append
    it (an empty log restarts there, as Kafka does when the leader's log start is
    inside a batch)."""
    for i, (header, _) in enumerate(batches):
        if header.base_offset < log_end_offset < header.next_offset:
            cut: LogAction = (TruncateFullyAndStartAt(header.base_offset) if log_end_offset == log_start_offset
                              else TruncateTo(header.base_offset))
            return FollowerAppend(cut, list(batches[i:]))
    return FollowerAppend(None, [(h, b) for h, b in batches if h.base_offset >= log_end_offset])


__all__ = [
    "FollowerAppend",
    "FollowerFetchState",
    "LogAction",
    "TruncateFullyAndStartAt",
    "TruncateTo",
    "plan_follower_append",
]
