"""One partition replica: a pure state machine driven by an async I/O shell.

Pure modules (no asyncio, time, grpc, rocksdict, structlog or other I/O; the clock
and the log end offset are parameters, the log is read through ``EpochCacheView``).
The API a simulation drives, with an in-memory log:

- :mod:`.state` — :class:`PartitionState` (one per replica):
  ``apply_metadata(reg, config, live_brokers, now_ms=, log_end_offset=) -> Transition``;
  leader: ``assign_epoch_start(offset)`` (once the epoch is in its log),
  ``on_follower_fetch(log, replica_id, fetch_offset, last_fetched_epoch, broker_epoch,
  now_ms=) -> FollowerFetch`` (divergence check, then HW and ISR expansion),
  ``maybe_increment_hw(log_end_offset)``, ``prepare_isr_shrink(now_ms, log_end_offset)``,
  ``prepare_isr_expansion(now_ms)``, ``resend_candidate()``,
  ``on_alter_partition_result(change, error, partition_epoch, now_ms=, log_end_offset=,
  transport_failed=)``, ``unavailable_offsets_error(log_end_offset)`` (KIP-207);
  follower: ``update_follower_hw(leader_hw, log_end_offset)``, ``on_truncated(log_end_offset)``;
  views ``high_watermark``, ``isr``, ``maximal_isr``, ``pending_isr``, ``followers``,
  ``role``, ``leader_epoch``. Messages: :class:`FollowerFetch`, :class:`PendingIsrChange`,
  :class:`FollowerState`, :class:`Role`, :class:`Transition`.
- :mod:`.epochs` — :class:`EpochCacheView` (log bounds + epoch cache),
  ``leader_end_offset_for_epoch`` (OffsetForLeaderEpoch answer), ``diverging_epoch``
  (the leader's per-fetch check), ``offset_truncation_state`` (the follower's cut,
  KIP-101/279) -> :class:`OffsetTruncationState`.
- :mod:`.follower` — :class:`FollowerFetchState` (one per followed partition):
  ``epoch_to_query``, ``truncation_without_epochs``, ``on_epoch_end``,
  ``fetch_offset``, ``last_fetched_epoch``, ``on_diverging_epoch``,
  ``after_truncation``, ``on_no_progress``, ``on_fetched``, ``on_out_of_range``,
  ``on_partition_error``, ``on_bad_data``, ``on_append_mismatch``;
  ``plan_follower_append(batches, log_end_offset, log_start_offset) -> FollowerAppend``; log actions
  :class:`TruncateTo`, :class:`TruncateFullyAndStartAt`.

A follower round: ``last_fetched_epoch`` and ``fetch_offset`` go to the leader's
``on_follower_fetch``; a diverging epoch goes to ``on_diverging_epoch``, the cut is
made, then ``after_truncation``; records go through ``plan_follower_append`` and
``update_follower_hw``.

The shell, :mod:`.shell` — :class:`Partition` — owns the log, ``log_lock``, produce
waiters and watchers, and calls the pure part; ``raftlog.node.broker.fetcher`` and
``raftlog.node.broker.replica_manager`` do the RPCs.
"""

from raftlog.node.broker.partition.shell import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    AppendResult,
    Partition,
    ReplicaLog,
    ValidatedBatch,
    group_batches,
    new_future,
    now_ms,
    validate_produce,
)
from raftlog.node.broker.partition.state import (
    FollowerFetch,
    FollowerState,
    PartitionState,
    PendingIsrChange,
    Role,
    Transition,
)

__all__ = [
    "EARLIEST_TIMESTAMP",
    "LATEST_TIMESTAMP",
    "AppendResult",
    "FollowerFetch",
    "FollowerState",
    "Partition",
    "PartitionState",
    "PendingIsrChange",
    "ReplicaLog",
    "Role",
    "Transition",
    "ValidatedBatch",
    "group_batches",
    "new_future",
    "now_ms",
    "validate_produce",
]
