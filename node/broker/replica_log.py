"""The broker's side of the storage boundary: partition-log errors become Kafka's.

Storage speaks of logs and offsets (``raftlog.storage.errors``); what a client or a
follower is told is a Kafka error code. :func:`kafka_error` is the one translation,
and :class:`KafkaErrorsLog` applies it to every call of a partition log, so nothing
above it sees a storage error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import BatchHeader
from raftlog.storage.errors import (
    AppendOffsetError,
    BatchMismatchError,
    LogOffsetOutOfRangeError,
    PartitionDeletedError,
    PartitionLogError,
)
from raftlog.storage.partition_log import EpochEntry, FetchedData, PartitionLog

_CODES: dict[type[PartitionLogError], ErrorCode] = {
    PartitionDeletedError: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    LogOffsetOutOfRangeError: ErrorCode.OFFSET_OUT_OF_RANGE,
    BatchMismatchError: ErrorCode.CORRUPT_MESSAGE,
    AppendOffsetError: ErrorCode.UNKNOWN_SERVER_ERROR,  # a broker bug, never the client's input
}


def kafka_error(exc: PartitionLogError) -> KafkaError:
    """The Kafka error a partition-log error is reported as."""
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), ErrorCode.UNKNOWN_SERVER_ERROR)
    error = KafkaError(code, str(exc))
    error.__cause__ = exc
    return error


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except PartitionLogError as exc:
        raise kafka_error(exc) from exc


class KafkaErrorsLog:
    """A :class:`PartitionLog` whose refusals are Kafka errors (the broker's ReplicaLog)."""

    def __init__(self, log: PartitionLog) -> None:
        self.storage = log

    @property
    def log_start_offset(self) -> int:
        return self.storage.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.storage.log_end_offset

    @property
    def high_watermark_checkpoint(self) -> int:
        return self.storage.high_watermark_checkpoint

    @property
    def size_bytes(self) -> int:
        return self.storage.size_bytes

    def epochs(self) -> Sequence[EpochEntry]:
        return self.storage.epochs()

    def latest_epoch(self) -> int:
        return self.storage.latest_epoch()

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        return self.storage.end_offset_for_epoch(epoch)

    def read(self, offset: int, max_bytes: int, max_offset: int) -> FetchedData:
        with _translated():
            return self.storage.read(offset, max_bytes, max_offset)

    def offset_for_timestamp(self, timestamp_ms: int, max_offset: int | None = None) -> tuple[int, int] | None:
        with _translated():
            return self.storage.offset_for_timestamp(timestamp_ms, max_offset)

    def retention_cutoff(self, retention_ms: int, retention_bytes: int, now_ms: int, limit: int) -> int:
        with _translated():
            return self.storage.retention_cutoff(retention_ms, retention_bytes, now_ms, limit)

    async def append(self, batches: Sequence[tuple[BatchHeader, bytes]], leader_epoch: int) -> int:
        with _translated():
            return await self.storage.append(batches, leader_epoch)

    async def truncate_to(self, offset: int) -> None:
        with _translated():
            await self.storage.truncate_to(offset)

    async def truncate_fully_and_start_at(self, offset: int) -> None:
        with _translated():
            await self.storage.truncate_fully_and_start_at(offset)

    async def checkpoint_high_watermark(self, hw: int) -> None:
        with _translated():
            await self.storage.checkpoint_high_watermark(hw)

    async def delete_before(self, offset: int) -> None:
        with _translated():
            await self.storage.delete_before(offset)

    async def assign_epoch(self, epoch: int) -> None:
        with _translated():
            await self.storage.assign_epoch(epoch)

    async def delete(self) -> None:
        with _translated():
            await self.storage.delete()
