"""Idempotent producer state of one partition (Kafka's ProducerStateManager, reduced).

Per producer id the leader keeps the epoch and the last ``MAX_BATCHES`` batches it
wrote: first/last sequence and offsets. That is enough to answer a retried batch with
the offset it was first written at, and to reject a gap. Nothing here is persisted or
replicated separately: every replica derives it from the batch headers of its own log
(docs/architecture.md §4), incrementally as it appends and by a header scan after a restart or a
truncation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import BatchHeader

MAX_BATCHES = 5  # Kafka's NUM_BATCHES_TO_RETAIN: a producer has at most 5 requests in flight
_MAX_SEQ = 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int
    producer_epoch: int


@dataclass(slots=True)
class ProducerEntry:
    producer_epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=MAX_BATCHES))

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == _MAX_SEQ)


class ProducerStateManager:
    """``check`` validates a leader append; ``update`` records a written batch."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.built_to = -1
        """The state reflects every batch below this offset (-1: not built yet)."""

    def reset(self) -> None:
        self.producers.clear()
        self.built_to = -1

    def truncate(self, offset: int) -> bool:
        """Forget batches at or after ``offset`` (the log was truncated there).

        Returns True when a producer lost every batch remembered for it: its earlier
        batches may still be in the log, so the caller must rebuild the state from
        the log (Kafka reloads producer state after a truncation); a forgotten
        producer would be accepted at any sequence."""
        if self.built_to < 0:
            return False
        forgot = False
        for pid in list(self.producers):
            entry = self.producers[pid]
            kept = [b for b in entry.batches if b.last_offset < offset]
            if not kept:
                del self.producers[pid]
                forgot = True
            elif len(kept) != len(entry.batches):
                entry.batches.clear()
                entry.batches.extend(kept)
        self.built_to = min(self.built_to, offset)
        return forgot

    def check(self, header: BatchHeader, pending: dict[int, BatchMetadata]) -> BatchMetadata | None:
        """For a leader append: the original batch when ``header`` is a duplicate, None
        when it may be written; raises INVALID_PRODUCER_EPOCH for a fenced epoch and
        OUT_OF_ORDER_SEQUENCE_NUMBER for a gap. ``pending`` holds batches of the same
        request that passed already (the last one per producer)."""
        pid = header.producer_id
        entry = self.producers.get(pid)
        earlier = pending.get(pid)
        epoch = header.producer_epoch
        current_epoch = earlier.producer_epoch if earlier is not None else (
            entry.producer_epoch if entry is not None else -1)
        if epoch < current_epoch:
            raise KafkaError(
                ErrorCode.INVALID_PRODUCER_EPOCH,
                f"producer {pid} epoch {epoch} is older than the current epoch {current_epoch}",
            )
        if entry is not None and epoch == entry.producer_epoch:
            for batch in entry.batches:
                if batch.first_seq == header.base_sequence and batch.last_seq == header.last_sequence:
                    return batch
        if epoch != current_epoch:
            # A bumped epoch restarts the sequence at 0. An unknown producer (no state,
            # e.g. removed by retention) is accepted at any sequence, as Kafka does.
            if header.base_sequence != 0 and current_epoch != -1:
                raise KafkaError(
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {pid} new epoch {epoch} must start at sequence 0, not {header.base_sequence}",
                )
            return None
        last_seq = earlier.last_seq if earlier is not None else (entry.last_seq if entry is not None else -1)
        if last_seq == -1 and earlier is None and (entry is None or not entry.batches):
            return None
        if not _in_sequence(last_seq, header.base_sequence):
            raise KafkaError(
                ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                f"producer {pid} epoch {epoch}: expected sequence {(last_seq + 1) & _MAX_SEQ},"
                f" got {header.base_sequence}",
            )
        return None

    def update(self, header: BatchHeader) -> BatchMetadata | None:
        """Record a batch that is in the log (leader or follower); headers without a
        producer id are ignored. Returns what was recorded."""
        if header.next_offset > self.built_to >= 0:
            self.built_to = header.next_offset
        if not header.is_idempotent:
            return None
        meta = BatchMetadata(
            first_seq=header.base_sequence,
            last_seq=header.last_sequence,
            base_offset=header.base_offset,
            last_offset=header.last_offset,
            producer_epoch=header.producer_epoch,
        )
        entry = self.producers.get(header.producer_id)
        if entry is None or header.producer_epoch > entry.producer_epoch:
            entry = ProducerEntry(header.producer_epoch)
            self.producers[header.producer_id] = entry
        elif header.producer_epoch < entry.producer_epoch:
            return None  # a follower replays what its leader accepted; never move back
        entry.batches.append(meta)
        return meta
