"""BrokerConfig: the replication settings of a broker, with Kafka's names and defaults
(``replica.lag.time.max.ms`` -> ``replica_lag_time_max_ms``) unless noted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    replica_lag_time_max_ms: int = 10_000
    """A follower in the ISR that has not caught up to the leader's log end for this
    long is removed from the ISR. Kafka's default is 30000; we use 10 s because
    failover is a headline feature here (docs/architecture.md §2): a stuck follower otherwise holds
    every acks=all produce of its partitions for up to 30 s before the ISR shrinks."""
    replica_fetch_wait_max_ms: int = 500
    """Follower long poll: the leader answers after at most this long without data."""
    replica_fetch_max_bytes: int = 1 << 20
    """Per-partition byte budget of one ReplicaFetch (at least one batch is sent)."""
    replica_fetch_response_max_bytes: int = 10 << 20
    """Byte budget of one whole ReplicaFetch response."""
    replica_fetch_min_bytes: int = 1
    replica_fetch_backoff_ms: int = 200
    """Pause after a failed fetch (transport error, or a partition-level error such as
    UNKNOWN_LEADER_EPOCH). Kafka uses 1000; lower here for fast failover."""
    replica_socket_timeout_ms: int = 30_000
    """Deadline of a replication RPC on top of its long-poll wait."""
    replica_high_watermark_checkpoint_interval_ms: int = 5_000
    retention_check_interval_ms: int = 5_000
    """Kafka's log.retention.check.interval.ms (default 300000 there)."""
    produce_timeout_ms: int = 30_000
    """acks=all wait when the request does not say (ProduceRequest.timeout_ms = 0)."""
    fetch_max_wait_cap_ms: int = 30_000
    """Upper bound on a consumer Fetch long poll, whatever max_wait_ms asks for."""
    fetch_default_max_bytes: int = 1 << 20
    """Kafka's max.partition.fetch.bytes: used when a Fetch says max_bytes = 0."""
    fetch_max_bytes: int = 50 << 20
    """Kafka's fetch.max.bytes (broker side): a Fetch never returns more than this,
    so a response stays under the 64 MiB gRPC message limit."""
    alter_partition_timeout_ms: int = 5_000
    debug_unsafe_acks: bool = False
    """TEST-ONLY (tests/chaos/test_checker_bites.py): answer acks=all right after the
    leader's own append, before the high watermark passes the batch, so acknowledged
    records can be lost when the leader dies. It exists only so the chaos checker can
    prove it detects loss; set only by RAFTLOG_DEBUG_UNSAFE_ACKS=1 (node/app.py),
    which the node logs as UNSAFE at start."""
    """Deadline of one AlterPartition call to the active controller."""

    @property
    def isr_check_interval_s(self) -> float:
        """Kafka checks ISR shrinks every replica.lag.time.max.ms / 2."""
        return self.replica_lag_time_max_ms / 2000
