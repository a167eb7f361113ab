"""What the workload did: every batch a producer tried to write and how it ended,
every record a consumer read, every fault the nemesis injected. Plain data, so the
checker can be fed synthetic histories (tests/chaos/test_checker.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Outcomes of one produced batch.
PENDING = "pending"
ACKED = "acked"        # the leader answered with offsets: the records must be there, at those offsets
FAILED = "failed"      # given up, and no attempt can have reached a broker's log
UNKNOWN = "unknown"    # given up after an attempt whose outcome is unknown (may or may not be there)


def encode_value(producer: int, partition: int, seq: int) -> bytes:
    """The unique value of one record: workload producer, partition, per-stream sequence."""
    return f"chaos:{producer}:{partition}:{seq}".encode()


def decode_value(value: bytes) -> tuple[int, int, int] | None:
    """(producer, partition, seq) or None for anything the workload cannot have written."""
    try:
        tag, producer, partition, seq = value.decode().split(":")
        if tag != "chaos":
            return None
        return int(producer), int(partition), int(seq)
    except (UnicodeDecodeError, ValueError):
        return None


@dataclass
class BatchOp:
    """One batch of ``count`` records with sequences ``first_seq..first_seq+count-1``."""

    producer: int
    partition: int
    first_seq: int
    count: int
    status: str = PENDING
    offset: int | None = None
    """Base offset the leader acknowledged (records are at offset..offset+count-1)."""
    attempts: int = 0
    t_sent: float = 0.0
    t_done: float | None = None
    acked_by: str = ""
    last_error: str = ""

    def values(self) -> list[bytes]:
        return [encode_value(self.producer, self.partition, self.first_seq + i) for i in range(self.count)]


@dataclass
class FaultEvent:
    """One nemesis action, with what the cluster looked like just before it."""

    t: float
    fault: str
    node: int | None = None
    action: str = ""  # "kill", "pause", "resume", "isolate", "heal", "restart", "skip"
    was_controller: bool = False
    led_partitions: list[int] = field(default_factory=list)
    quorum_hw: int | None = None
    controller_failover_s: float | None = None
    note: str = ""
    address: str = ""
    """The victim's client address (acks it sent itself do not end a failover)."""


@dataclass
class History:
    ops: list[BatchOp] = field(default_factory=list)
    consumed: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)
    """Per partition, what consumers read, in read order."""
    faults: list[FaultEvent] = field(default_factory=list)
    consumer_errors: dict[str, int] = field(default_factory=dict)
    producer_errors: dict[str, int] = field(default_factory=dict)

    def count_error(self, table: dict[str, int], name: str) -> None:
        table[name] = table.get(name, 0) + 1

    def faults_json(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.faults]
