"""One partition replica: a pure state machine driven by an async I/O shell.

Pure modules (no asyncio, time, grpc, rocksdict or I/O; the clock is a parameter),
the API a simulation drives with an in-memory log:

- :mod:`.state` — :class:`PartitionState`: ``apply_metadata(reg, config, live_brokers,
  now_ms=, log_end_offset=) -> Transition``; leader side ``update_follower_fetch_state``,
  ``maybe_increment_hw``, ``prepare_isr_expansion``, ``prepare_isr_shrink``,
  ``resend_candidate``, ``on_alter_partition_result``, ``maximal_isr``; follower side
  ``update_follower_hw``, ``on_truncated``; plus :class:`FollowerState`,
  :class:`PendingIsrChange`, :class:`Role`, :class:`Transition`.
- :mod:`.epochs` — :class:`EpochCacheView` (what is read of a log),
  ``leader_end_offset_for_epoch`` (the leader's OffsetForLeaderEpoch answer) and
  ``offset_truncation_state`` (the follower's cut, KIP-101/279).
- :mod:`.follower` — :class:`FollowerFetchState`: ``epoch_to_query``,
  ``truncation_without_epochs``, ``on_epoch_end`` / ``after_truncation``,
  ``fetch_offset``, ``on_fetched``, ``on_out_of_range``, ``on_partition_error``,
  ``on_append_mismatch``; ``batches_to_append``; actions :class:`TruncateTo`,
  :class:`TruncateFullyAndStartAt`.

The shell, :mod:`.shell` — :class:`Partition` — owns the log, ``log_lock``, produce
waiters and watchers, and calls the pure part; ``raftlog.node.broker.fetcher`` and
``raftlog.node.broker.replica_manager`` do the RPCs.
"""

from raftlog.node.broker.partition.shell import (
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
    FollowerState,
    PartitionState,
    PendingIsrChange,
    Role,
    Transition,
)

__all__ = [
    "AppendResult",
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
