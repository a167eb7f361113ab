"""An in-memory PartitionLog with the interface of raftlog.storage.partition_log,
for broker tests while (or instead of) the RocksDB one. Semantics follow Kafka's
log: whole batches, epoch cache as LeaderEpochFileCache, appends that become
visible (log end offset) only when "durable" — one loop turn later, like group commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import BatchHeader
from raftlog.storage.partition_log import EpochEntry, FetchedData


@dataclass
class MemoryPartitionLog:
    topic_id: str
    partition: int
    batches: list[tuple[BatchHeader, bytes]] = field(default_factory=list)
    _start: int = 0
    _end: int = 0
    _hw: int = 0
    _epochs: list[EpochEntry] = field(default_factory=list)
    deleted: bool = False
    appends: int = 0

    @classmethod
    def open(cls, db: object, topic_id: str, partition: int) -> MemoryPartitionLog:
        return cls(topic_id, partition)

    @property
    def log_start_offset(self) -> int:
        return self._start

    @property
    def log_end_offset(self) -> int:
        return self._end

    @property
    def high_watermark_checkpoint(self) -> int:
        return self._hw

    @property
    def size_bytes(self) -> int:
        return sum(len(b) for _, b in self.batches)

    def read(self, offset: int, max_bytes: int, max_offset: int) -> FetchedData:
        if offset < self._start or offset > self._end:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"{offset} not in [{self._start}, {self._end}]")
        out: list[bytes] = []
        size = 0
        next_offset = offset
        for header, data in self.batches:
            if header.last_offset < offset:
                continue
            if header.next_offset > max_offset:
                break
            if out and size + len(data) > max_bytes:
                break
            out.append(data)
            size += len(data)
            next_offset = header.next_offset
        return FetchedData(b"".join(out), next_offset)

    async def append(self, batches: Sequence[tuple[BatchHeader, bytes]], leader_epoch: int) -> int:
        if not batches:
            return self._end
        if batches[0][0].base_offset != self._end:
            raise AssertionError(f"append at {batches[0][0].base_offset}, log end is {self._end}")
        await asyncio.sleep(0)  # "sync": durable (and visible) one loop turn later
        if batches[0][0].base_offset != self._end:
            raise AssertionError("concurrent appends")
        for header, data in batches:
            assert header.base_offset == self._end
            # As the real log: the epoch cache follows each batch's stamped epoch.
            epoch = header.partition_leader_epoch if header.partition_leader_epoch >= 0 else leader_epoch
            if epoch >= 0 and (not self._epochs or epoch > self._epochs[-1].epoch):
                self._epochs.append(EpochEntry(epoch, header.base_offset))
            self.batches.append((header, bytes(data)))
            self._end = header.next_offset
        self.appends += 1
        return self._end

    async def assign_epoch(self, epoch: int) -> None:
        await asyncio.sleep(0)
        if epoch >= 0 and (not self._epochs or epoch > self._epochs[-1].epoch):
            self._epochs = [e for e in self._epochs if e.start_offset < self._end]
            self._epochs.append(EpochEntry(epoch, self._end))

    def epochs(self) -> Sequence[EpochEntry]:
        return tuple(self._epochs)

    def latest_epoch(self) -> int:
        return self._epochs[-1].epoch if self._epochs else -1

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        # Kafka's LeaderEpochFileCache.endOffsetFor
        if epoch < 0 or not self._epochs:
            return -1, -1
        if epoch == self._epochs[-1].epoch:
            return epoch, self._end
        higher = next((e for e in self._epochs if e.epoch > epoch), None)
        if higher is None:
            return -1, -1
        floor = [e for e in self._epochs if e.epoch <= epoch]
        if not floor:
            return epoch, higher.start_offset
        return floor[-1].epoch, higher.start_offset

    async def truncate_to(self, offset: int) -> None:
        if offset < self._start:  # as PartitionLog (and Kafka's truncateTo)
            await self.truncate_fully_and_start_at(offset)
            return
        await asyncio.sleep(0)
        self.batches = [(h, b) for h, b in self.batches if h.last_offset < offset]
        self._end = self.batches[-1][0].next_offset if self.batches else self._start
        self._epochs = [e for e in self._epochs if e.start_offset < self._end]
        self._hw = min(self._hw, self._end)

    async def truncate_fully_and_start_at(self, offset: int) -> None:
        await asyncio.sleep(0)
        self.batches = []
        self._epochs = []
        self._start = self._end = offset

    async def checkpoint_high_watermark(self, hw: int) -> None:
        await asyncio.sleep(0)
        self._hw = hw

    async def delete_before(self, offset: int) -> None:
        await asyncio.sleep(0)
        if offset > self._end:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"{offset} is past the log end {self._end}")
        self.batches = [(h, b) for h, b in self.batches if h.next_offset > offset]
        self._start = self.batches[0][0].base_offset if self.batches else max(self._start, min(offset, self._end))

    def retention_cutoff(self, retention_ms: int, retention_bytes: int, now_ms: int, limit: int) -> int:
        cutoff = self._start
        remaining = self.size_bytes
        for header, data in self.batches:
            if header.next_offset > min(limit, self._end):
                break
            expired = retention_ms >= 0 and now_ms - header.max_timestamp > retention_ms
            oversize = retention_bytes >= 0 and remaining - len(data) >= retention_bytes
            if not (expired or oversize):
                break
            remaining -= len(data)
            cutoff = max(cutoff, header.next_offset)
        return cutoff

    def offset_for_timestamp(self, timestamp_ms: int, max_offset: int | None = None) -> tuple[int, int] | None:
        limit = self._end if max_offset is None else min(max_offset, self._end)
        for header, _ in self.batches:
            if header.next_offset > limit:
                return None
            if header.max_timestamp >= timestamp_ms:
                return max(header.base_offset, self._start), header.max_timestamp
        return None

    async def delete(self) -> None:
        await asyncio.sleep(0)
        self.batches = []
        self._epochs = []
        self.deleted = True
