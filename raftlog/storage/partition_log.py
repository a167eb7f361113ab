"""PartitionLog: one partition's RecordBatch v2 log in the node's RocksDB.

Layout (docs/architecture.md §6; all integers big endian, so byte order is numeric order):

- column family ``partition_batches``: key = topic id (16 raw bytes, decoded from
  Kafka's URL-safe base64 form) + partition (u32) + base offset (u64), value = the
  batch bytes exactly as stamped by the leader. A prefix scan is an offset scan.
- column family ``partition_state``: key = the same 20-byte partition prefix + one
  tag byte: ``0x01`` log start offset (u64), ``0x02`` high-watermark checkpoint
  (u64), ``0x03`` leader-epoch cache (u32 count, then (epoch i32, start offset u64)
  per entry), ``0x04`` size in bytes (u64, the sum of the stored batch lengths, so
  open does not scan the data). Each value starts with a version byte.

Durability is group commit: appends from many partitions within one event-loop turn
are staged into one NodeDB WriteBatch and synced once by the ``GroupCommitter``
(``raftlog.storage.group_commit``). ``log_end_offset``, ``log_start_offset``,
``size_bytes``, ``epochs()`` and ``high_watermark_checkpoint`` only move when the
write is durable (in the committer's on-loop ``on_done`` hook), so a leader counts
its own replica toward the high watermark only for data that is on disk.
:attr:`next_offset` is the one exception: the offset the next append must start at,
counting appends still in flight (the leader stamps new batches with it).

Concurrency: use a PartitionLog from one event loop; keep one PartitionLog per
partition per NodeDB. Appends may overlap freely (they are validated and ordered
when called). ``truncate_to``, ``truncate_fully_and_start_at``, ``delete_before``
and ``delete`` first wait until this partition has no write in flight (they read
the stored batches to compute what to drop), then go through the same committer.
Reads (``read``, ``offset_for_timestamp``) go straight to RocksDB and are bounded
by the durable log end offset.

The broker never decodes records: only the 61-byte batch headers are parsed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from raftlog.records import BatchHeader, read_header
from raftlog.storage.errors import (
    AppendOffsetError,
    BatchMismatchError,
    DataDirCorruptError,
    LogOffsetOutOfRangeError,
    NodeDBClosedError,
    PartitionDeletedError,
)
from raftlog.storage.group_commit import GroupCommitter
from raftlog.storage.node_db import CF, NodeDB, WriteBatch

#: Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET (OffsetForLeaderEpoch answers).
UNDEFINED_EPOCH: Final = -1
UNDEFINED_EPOCH_OFFSET: Final = -1

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_VERSIONED_U64 = struct.Struct(">BQ")
_EPOCHS_HEAD = struct.Struct(">BI")
_EPOCH_ENTRY = struct.Struct(">iQ")
_VERSION: Final = 1

_TAG_LOG_START: Final = b"\x01"
_TAG_HW: Final = b"\x02"
_TAG_EPOCHS: Final = b"\x03"
_TAG_SIZE: Final = b"\x04"


@dataclass(frozen=True, slots=True)
class EpochEntry:
    epoch: int
    start_offset: int


@dataclass(frozen=True, slots=True)
class FetchedData:
    records: bytes  # whole batches, concatenated
    next_offset: int  # offset after the last returned batch (== requested offset when empty)


@dataclass(frozen=True, slots=True)
class _State:
    log_start: int
    log_end: int
    size: int
    hw: int
    epochs: tuple[EpochEntry, ...]
    deleted: bool = False


def topic_id_bytes(topic_id: str) -> bytes:
    """The 16 raw bytes of a topic id in Kafka's form (URL-safe base64, no padding)."""
    try:
        raw = base64.urlsafe_b64decode(topic_id + "=" * (-len(topic_id) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"topic id {topic_id!r} is not URL-safe base64") from exc
    if len(raw) != 16:
        raise ValueError(f"topic id {topic_id!r} is {len(raw)} bytes, not 16")
    return raw


def topic_id_str(raw: bytes) -> str:
    """Kafka's form (URL-safe base64, no padding) of a topic id's 16 raw bytes."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def stored_partitions(db: NodeDB) -> list[tuple[str, int]]:
    """(topic id, partition) of every partition with batches or state in ``db``,
    sorted. One seek per partition: each found prefix skips to the next one."""
    found: set[tuple[str, int]] = set()
    prefix_len = 16 + _U32.size
    for view in (db.partition_batches, db.partition_state):
        lo = b""
        while (key := view.first_key(lo)) is not None:
            if len(key) < prefix_len:
                raise DataDirCorruptError(f"partition key {key.hex()} is shorter than its prefix")
            prefix = key[:prefix_len]
            found.add((topic_id_str(prefix[:16]), _U32.unpack_from(prefix, 16)[0]))
            following = int.from_bytes(prefix, "big") + 1
            if following >= 1 << (8 * prefix_len):
                break
            lo = following.to_bytes(prefix_len, "big")
    return sorted(found)


def _encode_epochs(epochs: Sequence[EpochEntry]) -> bytes:
    return _EPOCHS_HEAD.pack(_VERSION, len(epochs)) + b"".join(
        _EPOCH_ENTRY.pack(e.epoch, e.start_offset) for e in epochs
    )


def _decode_epochs(value: bytes, where: str) -> tuple[EpochEntry, ...]:
    if len(value) < _EPOCHS_HEAD.size:
        raise DataDirCorruptError(f"{where}: epoch cache record is truncated")
    version, count = _EPOCHS_HEAD.unpack_from(value)
    if version != _VERSION or len(value) != _EPOCHS_HEAD.size + count * _EPOCH_ENTRY.size:
        raise DataDirCorruptError(f"{where}: bad epoch cache record (version {version}, {len(value)} bytes)")
    return tuple(
        EpochEntry(epoch, start) for epoch, start in _EPOCH_ENTRY.iter_unpack(value[_EPOCHS_HEAD.size :])
    )


def _decode_u64(value: bytes, what: str) -> int:
    if len(value) != _VERSIONED_U64.size:
        raise DataDirCorruptError(f"{what} record has {len(value)} bytes")
    version, number = _VERSIONED_U64.unpack(value)
    if version != _VERSION:
        raise DataDirCorruptError(f"{what} record has unknown version {version}")
    result: int = number
    return result


def _assign_epoch(epochs: tuple[EpochEntry, ...], epoch: int, start: int) -> tuple[EpochEntry, ...]:
    """Kafka's LeaderEpochFileCache.assign: a new latest epoch starting at ``start``;
    entries it supersedes (epoch >= it or start >= it) are dropped."""
    if epochs and epoch <= epochs[-1].epoch:
        return epochs
    kept = tuple(e for e in epochs if e.epoch < epoch and e.start_offset < start)
    return (*kept, EpochEntry(epoch, start))


def _trim_epochs_end(epochs: tuple[EpochEntry, ...], end: int) -> tuple[EpochEntry, ...]:
    """Kafka's truncateFromEnd: drop entries starting at or after ``end``."""
    return tuple(e for e in epochs if e.start_offset < end)


def _trim_epochs_start(epochs: tuple[EpochEntry, ...], start: int) -> tuple[EpochEntry, ...]:
    """Kafka's truncateFromStart: drop entries before ``start``, but keep the latest
    of them (moved to ``start``) when no entry starts exactly there."""
    later = tuple(e for e in epochs if e.start_offset >= start)
    earlier = [e for e in epochs if e.start_offset < start]
    if earlier and (not later or later[0].start_offset > start):
        return (EpochEntry(earlier[-1].epoch, start), *later)
    return later


class PartitionLog:
    """One partition's log (see the module docstring). Create with :meth:`open`."""

    topic_id: str
    partition: int

    def __init__(
        self, db: NodeDB, topic_id: str, partition: int, committer: GroupCommitter, state: _State
    ) -> None:
        """Use :meth:`open`."""
        self.topic_id = topic_id
        self.partition = partition
        self._db = db
        self._committer = committer
        self._prefix = topic_id_bytes(topic_id) + _U32.pack(partition)
        self._prefix_end = topic_id_bytes(topic_id) + _U32.pack(partition + 1)
        self._durable = state
        self._pending = state  # durable + every write in flight
        self._last_write: asyncio.Future[None] | None = None

    @classmethod
    def open(
        cls,
        db: NodeDB,
        topic_id: str,
        partition: int,
        *,
        committer: GroupCommitter | None = None,
    ) -> PartitionLog:
        """Load (or create empty) the partition: log start/end offsets, epoch cache, HW checkpoint.

        ``committer``: the GroupCommitter that writes this log; default the
        per-db shared one (``GroupCommitter.for_db(db)``), so every partition of a
        node commits together. Cost: a few point reads and one reverse seek — the
        size is stored, not recomputed. The HW checkpoint is clamped into
        [log start, log end] as Kafka does on load. Raises ValueError for a bad
        topic id or partition, DataDirCorruptError for unreadable state.
        """
        if not 0 <= partition < (1 << 31) - 1:
            raise ValueError(f"partition {partition} out of range")
        if db.closed:
            raise NodeDBClosedError(f"{db!r} is closed")
        log = cls(db, topic_id, partition, committer or GroupCommitter.for_db(db), _State(0, 0, 0, 0, ()))
        log._durable = log._pending = log._load()
        return log

    def _load(self) -> _State:
        where = f"partition {self.topic_id}-{self.partition}"
        state_cf = self._db.partition_state
        raw = state_cf.get(self._prefix + _TAG_LOG_START)
        log_start = None if raw is None else _decode_u64(raw, f"{where} log start")
        raw = state_cf.get(self._prefix + _TAG_HW)
        hw = 0 if raw is None else _decode_u64(raw, f"{where} HW checkpoint")
        raw = state_cf.get(self._prefix + _TAG_EPOCHS)
        epochs = () if raw is None else _decode_epochs(raw, where)
        raw = state_cf.get(self._prefix + _TAG_SIZE)
        size = None if raw is None else _decode_u64(raw, f"{where} size")

        batches = self._db.partition_batches
        last_key = batches.last_key(self._prefix, self._prefix_end)
        if last_key is None:
            log_start = log_start or 0
            log_end = log_start
            size = 0
        else:
            value = batches.get(last_key)
            if value is None:
                raise DataDirCorruptError(f"{where}: batch {last_key.hex()} vanished")
            last = read_header(value)
            if self._key(last.base_offset) != last_key:
                raise DataDirCorruptError(f"{where}: batch stored under {last_key.hex()} has base {last.base_offset}")
            log_end = last.next_offset
            if log_start is None:
                first_key = batches.first_key(self._prefix, self._prefix_end)
                assert first_key is not None
                log_start = self._offset_of(first_key)
            if size is None:  # written before sizes were stored: one scan
                size = sum(len(v) for _, v in batches.items(self._prefix, self._prefix_end))
        hw = min(max(hw, log_start), log_end)
        return _State(log_start, log_end, size, hw, epochs)

    # -- keys ------------------------------------------------------------------
    def _key(self, offset: int) -> bytes:
        return self._prefix + _U64.pack(offset)

    def _offset_of(self, key: bytes) -> int:
        offset: int = _U64.unpack_from(key, len(self._prefix))[0]
        return offset

    # -- durable state -----------------------------------------------------------
    @property
    def log_start_offset(self) -> int:
        return self._durable.log_start

    @property
    def log_end_offset(self) -> int:
        """Next offset to assign: one past the last DURABLE record."""
        return self._durable.log_end

    @property
    def next_offset(self) -> int:
        """(Added.) Where the next ``append`` must start: ``log_end_offset`` plus the
        appends still in flight. A leader stamps new batches from here."""
        return self._pending.log_end

    @property
    def high_watermark_checkpoint(self) -> int:
        return self._durable.hw

    @property
    def size_bytes(self) -> int:
        """Bytes of the stored batches (values only, not keys)."""
        return self._durable.size

    @property
    def committer(self) -> GroupCommitter:
        """(Added.) The GroupCommitter this log writes through."""
        return self._committer

    @property
    def deleted(self) -> bool:
        """(Added.) Whether :meth:`delete` removed this partition."""
        return self._durable.deleted

    def _check_live(self) -> None:
        if self._pending.deleted or self._durable.deleted:
            raise PartitionDeletedError(f"partition {self.topic_id}-{self.partition} was deleted")
        if self._db.closed:
            raise NodeDBClosedError(f"{self._db!r} is closed")

    # -- reads -------------------------------------------------------------------
    def read(self, offset: int, max_bytes: int, max_offset: int) -> FetchedData:
        """Whole batches starting with the one containing ``offset`` and ending before
        ``max_offset`` (exclusive: the HW for consumers, the LEO for followers); stops
        once ``max_bytes`` is exceeded but returns at least one batch when any exists.
        Raises LogOffsetOutOfRangeError when offset < log start or > log end.

        A batch is returned only when it ends at or before ``min(max_offset, log
        end)``; a batch that would take the total over ``max_bytes`` ends the read
        (unless it is the first). Cost: one reverse seek, then one forward scan."""
        self._check_live()
        state = self._durable
        if offset < state.log_start or offset > state.log_end:
            raise LogOffsetOutOfRangeError(
                f"offset {offset} is outside [{state.log_start}, {state.log_end}]"
                f" of partition {self.topic_id}-{self.partition}",
            )
        limit = min(max_offset, state.log_end)
        if offset >= limit:
            return FetchedData(b"", offset)
        batches = self._db.partition_batches
        # The batch containing ``offset`` is the last one with base <= offset.
        start = batches.last_key(self._prefix, self._key(offset + 1)) or self._key(offset)
        out: list[bytes] = []
        total = 0
        next_offset = offset
        for _, value in batches.items(start, self._key(limit)):
            end = _next_offset_of(value)
            if end <= offset:  # the seek found a batch ending before offset
                continue
            if end > limit or (out and total + len(value) > max_bytes):
                break
            out.append(value)
            total += len(value)
            next_offset = end
        return FetchedData(b"".join(out), next_offset)

    def offset_for_timestamp(
        self, timestamp_ms: int, max_offset: int | None = None
    ) -> tuple[int, int] | None:
        """(offset, timestamp) of the first batch whose max timestamp >= ``timestamp_ms``.

        Batch granularity (records are never decoded): offset = the batch's base
        offset (raised to the log start), timestamp = its max timestamp. Only batches
        ending at or before ``max_offset`` (added, optional: e.g. the HW; default
        the log end) count. None when there is none. Cost: a forward scan from the
        log start (no time index yet)."""
        self._check_live()
        state = self._durable
        limit = state.log_end if max_offset is None else min(max_offset, state.log_end)
        if limit <= state.log_start:
            return None
        for _, value in self._db.partition_batches.items(self._prefix, self._key(limit)):
            header = read_header(value)
            if header.next_offset > limit:
                break
            if header.next_offset <= state.log_start:
                continue
            if header.max_timestamp >= timestamp_ms:
                return max(header.base_offset, state.log_start), header.max_timestamp
        return None

    def retention_cutoff(self, retention_ms: int, retention_bytes: int, now_ms: int, limit: int) -> int:
        """(Added.) The log start offset retention allows now: the base offset of the
        first batch to keep (whole batches only), for ``delete_before``.

        A batch goes when ``now_ms - max_timestamp > retention_ms`` (time) or when the
        log would still hold ``>= retention_bytes`` without it (size; Kafka's rule, so
        the log never shrinks below ``retention.bytes``), oldest first; a negative
        setting disables that rule. Never past ``limit`` (the HW checkpoint): only
        batches ending at or before it can go. Returns ``log_start_offset`` when
        nothing may go. Cost: reads the batches it would drop, plus one."""
        self._check_live()
        state = self._durable
        if retention_ms < 0 and retention_bytes < 0:
            return state.log_start
        limit = min(limit, state.log_end)
        cutoff = state.log_start
        remaining = state.size
        for _, value in self._db.partition_batches.items(self._prefix, self._key(max(limit, 0))):
            header = read_header(value)
            if header.next_offset > limit:
                break
            expired = retention_ms >= 0 and now_ms - header.max_timestamp > retention_ms
            oversize = retention_bytes >= 0 and remaining - len(value) >= retention_bytes
            if not (expired or oversize):
                break
            remaining -= len(value)
            cutoff = max(cutoff, header.next_offset)
        return cutoff

    # -- epoch cache -------------------------------------------------------------
    def epochs(self) -> Sequence[EpochEntry]:
        """The leader-epoch cache (Kafka's leader-epoch-checkpoint), oldest first."""
        return self._durable.epochs

    def latest_epoch(self) -> int:
        """The latest epoch in the cache; -1 (UNDEFINED_EPOCH) when empty."""
        epochs = self._durable.epochs
        return epochs[-1].epoch if epochs else UNDEFINED_EPOCH

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= ``epoch`` held, first offset after it) — OffsetForLeaderEpoch.

        Kafka's LeaderEpochFileCache.endOffsetFor (KIP-101/279):
        - ``epoch`` is the latest epoch: (epoch, log end offset);
        - an older epoch: (largest held epoch <= it, start offset of the next larger
          held epoch) — the divergence point for a follower;
        - below the first held epoch (the data was deleted): (``epoch``, start
          offset of the first held epoch), so a follower truncates to there;
        - ``epoch`` is -1, the cache is empty, or ``epoch`` is above every held
          epoch: (-1, -1) (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET).
        Checking ``epoch`` against the partition's current leader epoch
        (FENCED/UNKNOWN_LEADER_EPOCH) is the broker's job."""
        state = self._durable
        epochs = state.epochs
        if epoch == UNDEFINED_EPOCH or not epochs:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if epoch == epochs[-1].epoch:
            return epoch, state.log_end
        higher = next((e for e in epochs if e.epoch > epoch), None)
        if higher is None:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        floor = None
        for e in epochs:
            if e.epoch <= epoch:
                floor = e
        if floor is None:
            return epoch, higher.start_offset
        return floor.epoch, higher.start_offset

    # -- writes ------------------------------------------------------------------
    async def _write(self, stage: Callable[[WriteBatch], None], new: _State) -> None:
        """Submit ``stage``; ``new`` becomes the durable state once it is on disk."""
        self._pending = new

        def on_done(error: BaseException | None) -> None:
            if error is None:
                self._durable = new
            else:  # every later write of this log fails too (fail-stop committer)
                self._pending = self._durable

        future = self._committer.submit(stage, on_done)
        self._last_write = future
        await asyncio.shield(future)

    async def _quiesce(self) -> None:
        """Wait until no write of this partition is in flight."""
        while self._last_write is not None and not self._last_write.done():
            await asyncio.wait([self._last_write])

    async def append(self, batches: Sequence[tuple[BatchHeader, bytes]], leader_epoch: int) -> int:
        """Durably append stamped batches (contiguous from log_end_offset) through the
        group committer; records ``leader_epoch`` in the epoch cache if new. Returns the
        new log end offset.

        Contiguous from :attr:`next_offset` (== ``log_end_offset`` when no append
        is in flight), else AppendOffsetError; each header must be
        the one of its bytes (CORRUPT_MESSAGE otherwise). The epoch cache follows the
        stamped ``partitionLeaderEpoch`` of each batch as Kafka's does (a follower's
        cache then matches its leader's): an epoch above the latest starts a new
        entry at that batch's base offset, persisted in the same WriteBatch;
        ``leader_epoch`` stands in for batches stamped -1. The returned offset is
        the end of this append; ``log_end_offset`` is at least that on return.
        Cancelling the caller does not withdraw a submitted append."""
        self._check_live()
        state = self._pending
        if not batches:
            return self._durable.log_end
        expected = state.log_end
        epochs = state.epochs
        size = state.size
        items: list[tuple[bytes, bytes]] = []
        for header, data in batches:
            if header.base_offset != expected:
                raise AppendOffsetError(
                    f"batch at offset {header.base_offset}, expected {expected}"
                    f" in partition {self.topic_id}-{self.partition}"
                )
            if header.size != len(data) or read_header(data) != header:
                raise BatchMismatchError(f"header of batch at {expected} does not match its bytes")
            epoch = header.partition_leader_epoch if header.partition_leader_epoch >= 0 else leader_epoch
            if epoch >= 0 and (not epochs or epoch > epochs[-1].epoch):
                epochs = _assign_epoch(epochs, epoch, header.base_offset)
            items.append((self._key(header.base_offset), bytes(data)))
            size += len(data)
            expected = header.next_offset
        new = replace(state, log_end=expected, size=size, epochs=epochs)
        epochs_changed = epochs != state.epochs
        prefix = self._prefix

        def stage(batch: WriteBatch) -> None:
            for key, value in items:
                batch.put(CF.PARTITION_BATCHES, key, value)
            batch.put(CF.PARTITION_STATE, prefix + _TAG_SIZE, _VERSIONED_U64.pack(_VERSION, size))
            if epochs_changed:
                batch.put(CF.PARTITION_STATE, prefix + _TAG_EPOCHS, _encode_epochs(epochs))

        await self._write(stage, new)
        return expected

    async def assign_epoch(self, epoch: int) -> None:
        """(Added.) Record that ``epoch`` starts at :attr:`next_offset` (Kafka's
        ``maybeAssignEpochStartOffset`` when a replica becomes leader), so that
        OffsetForLeaderEpoch answers for the new epoch before its first append.
        A no-op when ``epoch`` is not above the latest epoch."""
        self._check_live()
        state = self._pending
        if epoch < 0 or (state.epochs and epoch <= state.epochs[-1].epoch):
            return
        epochs = _assign_epoch(state.epochs, epoch, state.log_end)
        encoded = _encode_epochs(epochs)
        key = self._prefix + _TAG_EPOCHS
        await self._write(lambda b: b.put(CF.PARTITION_STATE, key, encoded), replace(state, epochs=epochs))

    async def truncate_to(self, offset: int) -> None:
        """Drop every batch at or after ``offset`` (a follower's divergent suffix).

        Whole batches: a batch containing ``offset`` goes too, so the log end becomes
        its base offset (Kafka truncates at batch boundaries likewise; the offsets
        OffsetForLeaderEpoch and the HW give are boundaries anyway). A no-op when
        ``offset >= log end`` for the batches, but even then epoch entries starting
        at or after the log end go (Kafka's truncateTo: a replica elected leader
        that wrote nothing keeps an entry there, which would hide the divergence
        from the next leader, KIP-279); below the log start it is
        :meth:`truncate_fully_and_start_at` (as Kafka). Trims the epoch cache
        (entries starting at or after the new end) and lowers the HW checkpoint
        to the new end, in the same WriteBatch."""
        self._check_live()
        await self._quiesce()
        self._check_live()
        state = self._pending
        if offset >= state.log_end:
            kept = _trim_epochs_end(state.epochs, state.log_end)
            if kept != state.epochs:
                encoded = _encode_epochs(kept)
                key = self._prefix + _TAG_EPOCHS
                await self._write(lambda b: b.put(CF.PARTITION_STATE, key, encoded), replace(state, epochs=kept))
            return
        if offset < state.log_start:
            await self._reset(offset)
            return
        batches = self._db.partition_batches
        cut = offset
        containing = batches.last_key(self._prefix, self._key(offset + 1))
        if containing is not None:
            value = batches.get(containing)
            if value is not None and _next_offset_of(value) > offset:
                cut = self._offset_of(containing)
        dropped = sum(len(v) for _, v in batches.items(self._key(cut), self._prefix_end))
        if cut < state.log_start:  # the batch holding the log start went: empty log
            await self._reset(cut)
            return
        epochs = _trim_epochs_end(state.epochs, cut)
        new = replace(state, log_end=cut, size=state.size - dropped, hw=min(state.hw, cut), epochs=epochs)
        lo, hi, prefix = self._key(cut), self._prefix_end, self._prefix

        def stage(batch: WriteBatch) -> None:
            batch.delete_range(CF.PARTITION_BATCHES, lo, hi)
            batch.put(CF.PARTITION_STATE, prefix + _TAG_SIZE, _VERSIONED_U64.pack(_VERSION, new.size))
            batch.put(CF.PARTITION_STATE, prefix + _TAG_EPOCHS, _encode_epochs(epochs))
            batch.put(CF.PARTITION_STATE, prefix + _TAG_HW, _VERSIONED_U64.pack(_VERSION, new.hw))

        await self._write(stage, new)

    async def truncate_fully_and_start_at(self, offset: int) -> None:
        """(Added.) Drop every batch and restart the empty log at ``offset`` (log start
        = log end = HW = ``offset``, epoch cache cleared) — Kafka's
        ``truncateFullyAndStartAt``, for a follower whose fetch offset fell below the
        leader's log start."""
        self._check_live()
        await self._quiesce()
        self._check_live()
        await self._reset(offset)

    async def _reset(self, offset: int) -> None:
        if offset < 0:
            raise LogOffsetOutOfRangeError(f"cannot start a log at offset {offset}")
        new = _State(offset, offset, 0, offset, ())
        lo, hi, prefix = self._prefix, self._prefix_end, self._prefix

        def stage(batch: WriteBatch) -> None:
            batch.delete_range(CF.PARTITION_BATCHES, lo, hi)
            batch.delete_range(CF.PARTITION_STATE, lo, hi)
            batch.put(CF.PARTITION_STATE, prefix + _TAG_LOG_START, _VERSIONED_U64.pack(_VERSION, offset))
            batch.put(CF.PARTITION_STATE, prefix + _TAG_HW, _VERSIONED_U64.pack(_VERSION, offset))

        await self._write(stage, new)

    async def checkpoint_high_watermark(self, hw: int) -> None:
        """Persist the high watermark (through the group committer); a no-op when
        unchanged. Not clamped here; on open it is clamped into [log start, log end]."""
        self._check_live()
        if hw < 0:
            raise ValueError(f"high watermark {hw} is negative")
        state = self._pending
        if hw == state.hw:
            if self._last_write is not None and not self._last_write.done():
                await asyncio.wait([self._last_write])  # durable once this returns
            return
        value = _VERSIONED_U64.pack(_VERSION, hw)
        key = self._prefix + _TAG_HW
        await self._write(lambda b: b.put(CF.PARTITION_STATE, key, value), replace(state, hw=hw))

    async def delete_before(self, offset: int) -> None:
        """Retention: drop whole batches ending before ``offset``; moves log start.

        The log start becomes exactly ``offset`` (as Kafka's DeleteRecords: a batch
        straddling it stays and reads of it return it whole). One range delete. A
        no-op when ``offset <= log start``; OFFSET_OUT_OF_RANGE when it is past the
        log end. The epoch cache is trimmed from the start (the latest earlier epoch
        moves to ``offset``) and a HW checkpoint below ``offset`` is raised to it.
        Callers enforce the HW bound (see :meth:`retention_cutoff`)."""
        self._check_live()
        await self._quiesce()
        self._check_live()
        state = self._pending
        if offset <= state.log_start:
            return
        if offset > state.log_end:
            raise LogOffsetOutOfRangeError(
                f"cannot delete before {offset}: log end of {self.topic_id}-{self.partition} is {state.log_end}"
            )
        batches = self._db.partition_batches
        cut = offset  # batches with base < cut go
        dropped = 0
        for key, value in batches.items(self._prefix, self._key(offset)):
            if _next_offset_of(value) > offset:
                cut = self._offset_of(key)
                break
            dropped += len(value)
        epochs = _trim_epochs_start(state.epochs, offset)
        new = replace(state, log_start=offset, size=state.size - dropped, hw=max(state.hw, offset), epochs=epochs)
        lo, hi, prefix = self._prefix, self._key(cut), self._prefix

        def stage(batch: WriteBatch) -> None:
            batch.delete_range(CF.PARTITION_BATCHES, lo, hi)
            batch.put(CF.PARTITION_STATE, prefix + _TAG_LOG_START, _VERSIONED_U64.pack(_VERSION, offset))
            batch.put(CF.PARTITION_STATE, prefix + _TAG_SIZE, _VERSIONED_U64.pack(_VERSION, new.size))
            batch.put(CF.PARTITION_STATE, prefix + _TAG_EPOCHS, _encode_epochs(epochs))
            if new.hw != state.hw:
                batch.put(CF.PARTITION_STATE, prefix + _TAG_HW, _VERSIONED_U64.pack(_VERSION, new.hw))

        await self._write(stage, new)

    async def delete(self) -> None:
        """Remove every key of this partition (topic deletion).

        Two range deletes (batches and state) in one WriteBatch; afterwards every
        call but this one raises UNKNOWN_TOPIC_OR_PARTITION. Idempotent."""
        if self._durable.deleted:
            return
        await self._quiesce()
        if self._pending.deleted:
            if self._last_write is not None:
                await asyncio.wait([self._last_write])
            return
        lo, hi = self._prefix, self._prefix_end

        def stage(batch: WriteBatch) -> None:
            batch.delete_range(CF.PARTITION_BATCHES, lo, hi)
            batch.delete_range(CF.PARTITION_STATE, lo, hi)

        await self._write(stage, _State(0, 0, 0, 0, (), deleted=True))

    def __repr__(self) -> str:
        s = self._durable
        return (
            f"PartitionLog({self.topic_id}-{self.partition}, start={s.log_start}, end={s.log_end},"
            f" size={s.size}, hw={s.hw})"
        )


def _next_offset_of(value: bytes) -> int:
    """One past the last offset of the stored batch ``value`` (header fields only)."""
    if len(value) < 27:
        raise DataDirCorruptError(f"stored batch of {len(value)} bytes is shorter than a header")
    base: int = struct.unpack_from(">q", value, 0)[0]
    delta: int = struct.unpack_from(">i", value, 23)[0]
    return base + delta + 1
