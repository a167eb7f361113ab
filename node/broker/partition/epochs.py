"""Leader-epoch arithmetic of replication, pure (KIP-101/279).

The leader answers "where does epoch E end in your log?" (OffsetForLeaderEpoch);
the follower turns the answer into a truncation offset (Kafka's
``getOffsetTruncationState``). Both read the log only through :class:`EpochCacheView`,
which ``PartitionLog`` and any in-memory log satisfy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class EpochCacheView(Protocol):
    """What the epoch logic reads of a log: its bounds and its leader-epoch cache."""

    @property
    def log_start_offset(self) -> int: ...
    @property
    def log_end_offset(self) -> int: ...
    def latest_epoch(self) -> int: ...
    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class OffsetTruncationState:
    """Kafka's OffsetTruncationState: cut the log to ``offset``; ``truncation_completed``
    is False for an intermediate KIP-279 step (ask the leader again afterwards)."""

    offset: int
    truncation_completed: bool


def leader_end_offset_for_epoch(log: EpochCacheView, leader_epoch: int, asked: int) -> tuple[int, int]:
    """The leader's answer to OffsetForLeaderEpoch(``asked``): (epoch, end offset).

    The epoch cache learns an epoch at its first append (or when the leader assigns
    it); epochs between the latest one written and the current leadership hold
    nothing here, so the latest epoch ends at the log end (what Kafka answers,
    having recorded its epoch start on election)."""
    latest = log.latest_epoch()
    if asked < 0:
        return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
    if asked == leader_epoch and latest < asked:
        return asked, log.log_end_offset  # the current epoch, not assigned in the log yet
    if latest < asked < leader_epoch or (latest < 0 <= asked):
        return latest, log.log_end_offset
    return log.end_offset_for_epoch(asked)


def diverging_epoch(log: EpochCacheView, leader_epoch: int, last_fetched_epoch: int,
                    fetch_offset: int) -> tuple[int, int] | None:
    """The leader's check of every follower fetch (Kafka's fetch-time validation
    since 2.7, KIP-595's DivergingEpoch): None when the follower's log agrees with
    this one up to ``fetch_offset``, else the (epoch, end offset) to truncate by.
    A diverged follower's fetch offset says nothing about what it shares with the
    leader, so it must not count toward the HW or the ISR."""
    if last_fetched_epoch < 0:
        return None
    epoch, end = leader_end_offset_for_epoch(log, leader_epoch, last_fetched_epoch)
    if epoch < last_fetched_epoch or end < fetch_offset:
        return epoch, end
    return None


def offset_truncation_state(log: EpochCacheView, high_watermark: int, leader_epoch: int,
                            end_offset: int) -> OffsetTruncationState:
    """Where a follower cuts its log given the leader's (epoch, end offset) answer."""
    leo = log.log_end_offset
    if end_offset < 0:
        # The leader knows no such epoch: keep what is committed.
        return OffsetTruncationState(min(high_watermark, leo), True)
    if leader_epoch < 0:
        return OffsetTruncationState(min(end_offset, leo), True)
    local_epoch, local_end = log.end_offset_for_epoch(leader_epoch)
    if local_epoch != leader_epoch:
        # KIP-279: this replica lacks the epoch the leader answered with; cut to
        # the end of the largest epoch below it and ask again.
        return OffsetTruncationState(min(local_end if local_end >= 0 else log.log_start_offset, leo), False)
    return OffsetTruncationState(min(local_end, end_offset, leo), True)


__all__ = [
    "UNDEFINED_EPOCH",
    "UNDEFINED_EPOCH_OFFSET",
    "EpochCacheView",
    "OffsetTruncationState",
    "diverging_epoch",
    "leader_end_offset_for_epoch",
    "offset_truncation_state",
]
