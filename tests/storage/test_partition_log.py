"""PartitionLog and GroupCommitter on a real NodeDB (sync on).

Batches are real RecordBatch v2 bytes (``build_batch`` + ``stamp``). Async code runs
under ``asyncio.run``. The kill -9 test runs this very module as the writer process:
``python -m tests.storage.test_partition_log writer DATA_DIR TOPIC_ID COUNT``.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from raftlog.records import BatchHeader, build_batch, read_header, read_records, split_batches, stamp
from raftlog.storage.errors import (
    AppendOffsetError,
    BatchMismatchError,
    DataDirIOError,
    LogOffsetOutOfRangeError,
    PartitionDeletedError,
)
from raftlog.storage.group_commit import GroupCommitter
from raftlog.storage.node_db import CF, NodeDB, WriteBatch
from raftlog.storage.partition_log import (
    EpochEntry,
    PartitionLog,
    stored_partitions,
    topic_id_bytes,
)

T = TypeVar("T")
# Fixed ids in Kafka's form (16 bytes, URL-safe base64 without padding).
TOPIC = "AAECAwQFBgcICQoLDA0ODw"
OTHER_TOPIC = "_-7dzLuqmYh3ZlVEMyIRAA"
BIG = 1 << 40


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def make_batch(
    base: int, count: int = 10, *, epoch: int = 0, ts: int = 1_000, value_size: int = 16
) -> tuple[BatchHeader, bytes]:
    records: list[tuple[bytes | None, bytes | None, int]] = [
        (None, f"{base + i}".encode().ljust(value_size, b"."), ts) for i in range(count)
    ]
    raw = build_batch(records)
    data = stamp(raw, base, epoch)
    return read_header(data), data


async def append_n(log: PartitionLog, n: int, *, count: int = 10, epoch: int = 0, ts: int = 1_000) -> list[bytes]:
    """Append ``n`` batches one by one; return their bytes."""
    out = []
    for _ in range(n):
        header, data = make_batch(log.next_offset, count, epoch=epoch, ts=ts)
        await log.append([(header, data)], epoch)
        out.append(data)
    return out


async def append_next(log: PartitionLog, epoch: int = 0) -> int:
    """Stamp a batch at ``next_offset`` and append it: one step, so concurrent calls
    (separate tasks) each reserve their own offsets."""
    return await log.append([make_batch(log.next_offset, epoch=epoch)], epoch)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[NodeDB]:
    node_db = NodeDB.open(tmp_path / "data", sync=True)
    yield node_db
    node_db.close()


def reopen(db: NodeDB) -> NodeDB:
    path = db.data_dir
    db.close()
    return NodeDB.open(path, sync=True)


# -- append / read ----------------------------------------------------------------
def test_append_read_round_trip(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    assert (log.log_start_offset, log.log_end_offset, log.size_bytes) == (0, 0, 0)
    # Offsets 0-9, 10-19 in one append call; 20-29, 30-39 in a second.
    b0, b1 = make_batch(0), make_batch(10)
    assert run(log.append([b0, b1], 0)) == 20
    b2, b3 = make_batch(20), make_batch(30)
    assert run(log.append([b2, b3], 0)) == 40
    datas = [b[1] for b in (b0, b1, b2, b3)]
    assert log.log_end_offset == log.next_offset == 40
    assert log.size_bytes == sum(map(len, datas))

    everything = log.read(0, BIG, BIG)
    assert everything.records == b"".join(datas) and everything.next_offset == 40
    assert [r.offset for h, v in split_batches(everything.records) for r in read_records(v)] == list(range(40))

    # Mid-batch: the whole containing batch.
    mid = log.read(15, BIG, BIG)
    assert mid.records == b"".join(datas[1:]) and mid.next_offset == 40
    # max_offset is exclusive and only whole batches ending at or before it count.
    assert log.read(0, BIG, 20) == log.read(0, BIG, 29)
    assert log.read(0, BIG, 29).records == datas[0] + datas[1]
    assert log.read(0, BIG, 30).records == b"".join(datas[:3])
    assert log.read(25, BIG, 29).records == b""  # the batch holding 25 ends after 29
    # max_bytes: at least one batch, never exceeded after the first.
    assert log.read(0, 1, BIG).records == datas[0]
    assert log.read(0, len(datas[0]) + len(datas[1]), BIG).records == datas[0] + datas[1]
    assert log.read(0, len(datas[0]) + len(datas[1]) - 1, BIG).records == datas[0]
    assert log.read(12, 0, BIG) == type(mid)(datas[1], 20)
    # At the log end: empty, not an error.
    assert log.read(40, BIG, BIG).records == b"" and log.read(40, BIG, BIG).next_offset == 40
    assert log.read(5, BIG, 5).next_offset == 5


def test_out_of_range_edges(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    with pytest.raises(LogOffsetOutOfRangeError):
        log.read(1, BIG, BIG)
    assert log.read(0, BIG, BIG).records == b""
    run(append_n(log, 3))
    run(log.delete_before(10))
    assert log.log_start_offset == 10
    for bad in (9, 31, -1):
        with pytest.raises(LogOffsetOutOfRangeError):
            log.read(bad, BIG, BIG)
    assert log.read(10, BIG, BIG).next_offset == 30
    with pytest.raises(LogOffsetOutOfRangeError):
        run(log.delete_before(31))


def test_append_validation(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    with pytest.raises(AppendOffsetError):
        run(log.append([make_batch(5)], 0))
    with pytest.raises(AppendOffsetError):  # not contiguous inside one call
        run(log.append([make_batch(0), make_batch(11)], 0))
    header, data = make_batch(0)
    with pytest.raises(BatchMismatchError):  # header says base 0, bytes say 7
        run(log.append([(header, stamp(data, 7, 0))], 0))
    assert log.log_end_offset == 0 and log.size_bytes == 0
    assert run(log.append([], 0)) == 0
    with pytest.raises(ValueError):
        PartitionLog.open(db, "not-a-topic-id", 0)
    with pytest.raises(ValueError):
        PartitionLog.open(db, TOPIC, -1)


def test_overlapping_appends_use_next_offset(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)

    async def one() -> int:
        batch = make_batch(log.next_offset)  # includes the appends still in flight
        assert log.log_end_offset == 0  # all five run in one loop turn: nothing durable yet
        return await log.append([batch], 0)

    async def scenario() -> list[int]:
        return list(await asyncio.gather(*(one() for _ in range(5))))

    assert run(scenario()) == [10, 20, 30, 40, 50]
    assert log.log_end_offset == 50
    assert len(list(split_batches(log.read(0, BIG, BIG).records))) == 5


# -- durability across reopen ------------------------------------------------------
def test_reopen_keeps_everything(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 3)
    run(append_n(log, 3, epoch=1))
    run(append_n(log, 2, epoch=4))
    run(log.checkpoint_high_watermark(40))
    run(log.delete_before(15))
    before = (log.log_start_offset, log.log_end_offset, log.size_bytes, tuple(log.epochs()),
              log.high_watermark_checkpoint, log.read(15, BIG, BIG))
    assert before[:5] == (15, 50, before[2], (EpochEntry(1, 15), EpochEntry(4, 30)), 40)
    db = reopen(db)
    try:
        again = PartitionLog.open(db, TOPIC, 3)
        after = (again.log_start_offset, again.log_end_offset, again.size_bytes, tuple(again.epochs()),
                 again.high_watermark_checkpoint, again.read(15, BIG, BIG))
        assert after == before
        assert again.size_bytes == sum(len(v) for _, v in db.partition_batches.items(b""))
        # An untouched partition opens empty.
        empty = PartitionLog.open(db, TOPIC, 4)
        assert (empty.log_end_offset, empty.size_bytes, tuple(empty.epochs())) == (0, 0, ())
    finally:
        db.close()


def test_reopen_clamps_hw_checkpoint(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    run(append_n(log, 2))
    run(log.checkpoint_high_watermark(500))  # stored as given ...
    assert log.high_watermark_checkpoint == 500
    db = reopen(db)
    try:
        assert PartitionLog.open(db, TOPIC, 0).high_watermark_checkpoint == 20  # ... clamped on load
    finally:
        db.close()


# -- group commit ------------------------------------------------------------------
def count_writes(db: NodeDB) -> list[int]:
    """Wrap db.write; the list gets the number of operations of each write."""
    sizes: list[int] = []
    real = db.write

    def write(batch: WriteBatch, *, sync: bool | None = None) -> None:
        sizes.append(len(batch))
        real(batch, sync=sync)

    db.write = write  # type: ignore[method-assign]
    return sizes


def test_group_commit_batches_one_loop_turn(db: NodeDB) -> None:
    committer = GroupCommitter(db)
    logs = [PartitionLog.open(db, t, p, committer=committer) for t in (TOPIC, OTHER_TOPIC) for p in range(4)]
    writes = count_writes(db)

    async def scenario() -> None:
        calls = []
        for log in logs:
            for _ in range(3):  # three appends per partition, all in flight together
                calls.append(append_next(log))
        await asyncio.gather(*calls)

    run(scenario())
    assert len(writes) == 1
    # Every batch, a size record per append, one epoch record per partition.
    assert writes[0] == 8 * 3 * 2 + 8
    assert committer.stats.writes == 1 and committer.stats.stages == 24
    assert all(log.log_end_offset == 30 for log in logs)
    db2 = reopen(db)
    try:
        assert all(PartitionLog.open(db2, log.topic_id, log.partition).log_end_offset == 30 for log in logs)
    finally:
        db2.close()


def test_group_commit_pipelines_while_a_write_is_in_flight(db: NodeDB) -> None:
    """Stages submitted while a write is being synced all go into the next one."""
    committer = GroupCommitter(db)
    log = PartitionLog.open(db, TOPIC, 0, committer=committer)
    writes = count_writes(db)
    real = db.write
    started = asyncio.Event()
    release = threading.Event()
    loop_ref: list[asyncio.AbstractEventLoop] = []

    def slow_write(batch: WriteBatch, *, sync: bool | None = None) -> None:
        if not writes:  # hold the first write until the others queued up
            loop_ref[0].call_soon_threadsafe(started.set)
            release.wait(30)
        real(batch, sync=sync)

    db.write = slow_write  # type: ignore[method-assign]

    async def scenario() -> list[int]:
        loop_ref.append(asyncio.get_running_loop())
        first = asyncio.ensure_future(log.append([make_batch(0)], 0))
        await asyncio.wait_for(started.wait(), 10)
        rest = []
        for _ in range(4):  # in several loop turns, all while write 1 is in flight
            rest.append(asyncio.ensure_future(append_next(log)))
            await asyncio.sleep(0)
        assert log.log_end_offset == 0
        release.set()
        return [await first, *await asyncio.gather(*rest)]

    assert run(scenario()) == [10, 20, 30, 40, 50]
    assert len(writes) == 2
    assert log.log_end_offset == 50


def test_cancelled_append_still_lands(db: NodeDB) -> None:
    """Cancelling the caller does not withdraw a submitted append, and the log's
    state still follows the disk (it is updated by the committer, not the caller)."""
    log = PartitionLog.open(db, TOPIC, 0)

    async def scenario() -> None:
        task = asyncio.ensure_future(append_next(log))
        await asyncio.sleep(0)  # the append is submitted
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await append_next(log) == 20

    run(scenario())
    assert log.log_end_offset == 20
    assert len(list(split_batches(log.read(0, BIG, BIG).records))) == 2


def test_group_commit_failure_fails_every_waiter_and_stops(db: NodeDB) -> None:
    committer = GroupCommitter(db)
    logs = [PartitionLog.open(db, TOPIC, p, committer=committer) for p in range(3)]
    run(append_n(logs[0], 1))

    def broken(batch: WriteBatch, *, sync: bool | None = None) -> None:
        raise DataDirIOError("disk on fire")

    db.write = broken  # type: ignore[method-assign]

    async def scenario() -> list[object]:
        calls = [log.append([make_batch(log.next_offset)], 0) for log in logs]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = run(scenario())
    assert all(isinstance(r, DataDirIOError) for r in results)
    assert [log.log_end_offset for log in logs] == [10, 0, 0]
    assert [log.next_offset for log in logs] == [10, 0, 0]  # reservations rolled back
    assert committer.failed is not None
    del db.write  # the disk is back, but the committer stays stopped
    with pytest.raises(DataDirIOError):
        run(logs[1].append([make_batch(0)], 0))


def test_group_commit_failing_stage_fails_only_its_caller(db: NodeDB) -> None:
    committer = GroupCommitter(db)
    writes = count_writes(db)

    def good(key: bytes) -> Callable[[WriteBatch], None]:
        return lambda batch: batch.put(CF.PARTITION_STATE, key, b"v")

    def bad(batch: WriteBatch) -> None:
        raise RuntimeError("bad stage")

    async def scenario() -> list[object]:
        calls = [committer.commit(good(b"a")), committer.commit(bad), committer.commit(good(b"b"))]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    results = run(scenario())
    assert results[0] is None and results[2] is None and isinstance(results[1], RuntimeError)
    assert writes == [2]
    assert db.partition_state.get(b"a") == b"v" and db.partition_state.get(b"b") == b"v"


# -- truncation and the epoch cache ------------------------------------------------
def test_truncate_to_trims_epochs_hw_and_size(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    e1 = run(append_n(log, 2, epoch=1))  # 0-19
    e3 = run(append_n(log, 2, epoch=3))  # 20-39
    run(append_n(log, 2, epoch=5))  # 40-59
    run(log.checkpoint_high_watermark(55))
    assert tuple(log.epochs()) == (EpochEntry(1, 0), EpochEntry(3, 20), EpochEntry(5, 40))

    run(log.truncate_to(40))
    assert log.log_end_offset == 40 and log.high_watermark_checkpoint == 40
    assert tuple(log.epochs()) == (EpochEntry(1, 0), EpochEntry(3, 20))
    assert log.latest_epoch() == 3
    assert log.size_bytes == sum(map(len, e1 + e3))

    run(log.truncate_to(25))  # mid-batch: the batch holding 25 goes as a whole
    assert log.log_end_offset == 20
    assert tuple(log.epochs()) == (EpochEntry(1, 0),)
    assert log.read(0, BIG, BIG).records == b"".join(e1)
    run(log.truncate_to(100))  # past the end: no-op
    assert log.log_end_offset == 20
    # Appending continues at the new end, with a new epoch.
    run(append_n(log, 1, epoch=6))
    assert tuple(log.epochs()) == (EpochEntry(1, 0), EpochEntry(6, 20))

    db = reopen(db)
    try:
        again = PartitionLog.open(db, TOPIC, 0)
        assert (again.log_end_offset, again.high_watermark_checkpoint, tuple(again.epochs())) == (
            30, 20, (EpochEntry(1, 0), EpochEntry(6, 20)))
        assert again.size_bytes == log.size_bytes
        run(again.truncate_to(0))
        assert (again.log_end_offset, tuple(again.epochs()), again.size_bytes) == (0, (), 0)
    finally:
        db.close()


def test_truncate_at_or_past_log_end_drops_epoch_entries_there(db: NodeDB) -> None:
    """Kafka's truncateTo: an epoch assigned at the log end by a leader that wrote
    nothing goes even when no batch does (KIP-279 would otherwise stop early)."""
    log = PartitionLog.open(db, TOPIC, 0)
    run(append_n(log, 1, epoch=1))  # 0-9
    run(log.assign_epoch(4))  # elected at 10, wrote nothing
    assert tuple(log.epochs()) == (EpochEntry(1, 0), EpochEntry(4, 10))
    run(log.truncate_to(10))
    assert log.log_end_offset == 10
    assert tuple(log.epochs()) == (EpochEntry(1, 0),)
    run(log.assign_epoch(5))
    run(log.truncate_to(100))
    assert tuple(log.epochs()) == (EpochEntry(1, 0),)
    db = reopen(db)
    try:
        assert tuple(PartitionLog.open(db, TOPIC, 0).epochs()) == (EpochEntry(1, 0),)
    finally:
        db.close()


def test_truncate_below_log_start_restarts_log(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    run(append_n(log, 3, epoch=2))
    run(log.delete_before(20))
    run(log.truncate_to(5))
    assert (log.log_start_offset, log.log_end_offset, log.size_bytes, tuple(log.epochs())) == (5, 5, 0, ())
    run(log.truncate_fully_and_start_at(1000))
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark_checkpoint) == (1000, 1000, 1000)
    run(append_n(log, 1, epoch=7))
    db = reopen(db)
    try:
        again = PartitionLog.open(db, TOPIC, 0)
        assert (again.log_start_offset, again.log_end_offset, tuple(again.epochs())) == (
            1000, 1010, (EpochEntry(7, 1000),))
    finally:
        db.close()


def test_end_offset_for_epoch(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    assert log.latest_epoch() == -1
    assert log.end_offset_for_epoch(0) == (-1, -1)  # empty cache
    run(append_n(log, 2, epoch=1))  # 0-19
    run(append_n(log, 2, epoch=3))  # 20-39
    run(append_n(log, 1, epoch=5))  # 40-49
    assert log.end_offset_for_epoch(5) == (5, 50)  # latest: the log end
    assert log.end_offset_for_epoch(3) == (3, 40)  # the next epoch's start
    assert log.end_offset_for_epoch(4) == (3, 40)  # unknown epoch: largest below it
    assert log.end_offset_for_epoch(2) == (1, 20)
    assert log.end_offset_for_epoch(1) == (1, 20)
    assert log.end_offset_for_epoch(0) == (0, 0)  # below the first: Kafka's (requested, first start)
    assert log.end_offset_for_epoch(6) == (-1, -1)  # above every epoch held
    assert log.end_offset_for_epoch(-1) == (-1, -1)
    # Retention moves the first epoch's start; below-first answers follow it.
    run(log.delete_before(25))
    assert tuple(log.epochs()) == (EpochEntry(3, 25), EpochEntry(5, 40))
    assert log.end_offset_for_epoch(1) == (1, 25)
    # A new leader epoch with no append yet (Kafka's maybeAssignEpochStartOffset).
    run(log.assign_epoch(7))
    assert log.end_offset_for_epoch(7) == (7, 50)
    assert log.end_offset_for_epoch(5) == (5, 50)
    run(log.assign_epoch(6))  # not above the latest: ignored
    assert log.latest_epoch() == 7
    # An assigned epoch superseded before any append of it (same start offset).
    run(log.assign_epoch(8))
    assert tuple(log.epochs()) == (EpochEntry(3, 25), EpochEntry(5, 40), EpochEntry(8, 50))


def test_follower_epochs_follow_stamped_batches(db: NodeDB) -> None:
    """A follower appends the leader's batches (several epochs at once) under its
    own current epoch: the cache follows the epochs stamped in the batches."""
    log = PartitionLog.open(db, TOPIC, 0)
    batches = [make_batch(0, epoch=1), make_batch(10, epoch=1), make_batch(20, epoch=4)]
    run(log.append(batches, 9))
    assert tuple(log.epochs()) == (EpochEntry(1, 0), EpochEntry(4, 20))
    assert log.end_offset_for_epoch(1) == (1, 20)


# -- retention ---------------------------------------------------------------------
def test_retention_by_time_never_past_limit(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    for i in range(5):  # batch i (offsets 10i..10i+9) has max timestamp 1000 * (i + 1)
        header, data = make_batch(log.next_offset, ts=1000 * (i + 1))
        run(log.append([(header, data)], 0))
    # now=5500, retention 2000 ms: batches with max ts < 3500 expire: 0, 1, 2.
    assert log.retention_cutoff(2000, -1, 5500, 50) == 30
    assert log.retention_cutoff(2000, -1, 5500, 25) == 20  # limit: only batches ending <= 25
    assert log.retention_cutoff(2000, -1, 5500, 0) == 0
    assert log.retention_cutoff(-1, -1, 5500, 50) == 0  # both disabled
    assert log.retention_cutoff(0, -1, 10_000, 50) == 50  # everything expired, HW at the end
    size = log.size_bytes
    cutoff = log.retention_cutoff(2000, -1, 5500, 25)
    run(log.delete_before(cutoff))
    assert log.log_start_offset == 20 and log.size_bytes < size
    assert log.read(20, BIG, BIG).next_offset == 50
    assert log.retention_cutoff(2000, -1, 5500, 50) == 30


def test_retention_by_size(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    datas = run(append_n(log, 6))
    one = len(datas[0])
    assert all(len(d) == one for d in datas)
    # Kafka's rule: drop the oldest while what is left still holds >= retention.bytes.
    assert log.retention_cutoff(-1, 3 * one, 0, 60) == 30
    assert log.retention_cutoff(-1, 3 * one - 1, 0, 60) == 30
    assert log.retention_cutoff(-1, 3 * one + 1, 0, 60) == 20
    assert log.retention_cutoff(-1, 0, 0, 60) == 60
    assert log.retention_cutoff(-1, 0, 0, 35) == 30  # never past the limit
    run(log.delete_before(log.retention_cutoff(-1, 3 * one, 0, 60)))
    assert log.size_bytes == 3 * one
    assert log.read(30, BIG, BIG).records == b"".join(datas[3:])
    # Keys below the log start are gone (one range delete).
    keys = [k for k, _ in db.partition_batches.items(b"")]
    assert len(keys) == 3


def test_delete_before_mid_batch_keeps_straddling_batch(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    datas = run(append_n(log, 3))
    run(log.delete_before(15))
    assert log.log_start_offset == 15 and log.size_bytes == len(datas[1]) + len(datas[2])
    assert log.read(15, BIG, BIG).records == datas[1] + datas[2]
    assert log.offset_for_timestamp(0) == (15, 1000)
    run(log.delete_before(10))  # not above the log start: no-op
    assert log.log_start_offset == 15


def test_delete_removes_only_that_partition(db: NodeDB) -> None:
    logs = {(t, p): PartitionLog.open(db, t, p) for t in (TOPIC, OTHER_TOPIC) for p in (0, 1)}
    for log in logs.values():
        run(append_n(log, 2, epoch=1))
        run(log.checkpoint_high_watermark(10))
    victim = logs[(TOPIC, 1)]
    prefix = topic_id_bytes(TOPIC) + (1).to_bytes(4, "big")

    def keys(cf: CF) -> list[bytes]:
        return [k for k, _ in db.cf(cf).items(b"")]

    before = {cf: keys(cf) for cf in (CF.PARTITION_BATCHES, CF.PARTITION_STATE)}
    assert any(k.startswith(prefix) for k in before[CF.PARTITION_STATE])
    run(victim.delete())
    for cf, was in before.items():
        assert keys(cf) == [k for k in was if not k.startswith(prefix)]
    assert victim.deleted
    with pytest.raises(PartitionDeletedError):
        victim.read(0, BIG, BIG)
    with pytest.raises(PartitionDeletedError):
        run(victim.append([make_batch(0)], 1))
    run(victim.delete())  # idempotent
    for key, log in logs.items():
        if log is not victim:
            assert log.read(0, BIG, BIG).next_offset == 20
    db = reopen(db)
    try:
        again = PartitionLog.open(db, TOPIC, 1)
        assert (again.log_end_offset, again.size_bytes, tuple(again.epochs())) == (0, 0, ())
        assert PartitionLog.open(db, TOPIC, 0).log_end_offset == 20
        assert PartitionLog.open(db, OTHER_TOPIC, 1).log_end_offset == 20
    finally:
        db.close()


def test_offset_for_timestamp(db: NodeDB) -> None:
    log = PartitionLog.open(db, TOPIC, 0)
    assert log.offset_for_timestamp(0) is None
    for ts in (100, 300, 200, 500):  # out of order timestamps are allowed (CreateTime)
        header, data = make_batch(log.next_offset, ts=ts)
        run(log.append([(header, data)], 0))
    assert log.offset_for_timestamp(0) == (0, 100)
    assert log.offset_for_timestamp(100) == (0, 100)
    assert log.offset_for_timestamp(101) == (10, 300)
    assert log.offset_for_timestamp(250) == (10, 300)
    assert log.offset_for_timestamp(301) == (30, 500)
    assert log.offset_for_timestamp(501) is None
    assert log.offset_for_timestamp(301, max_offset=30) is None  # e.g. only below the HW


# -- kill -9 in the middle of writes -------------------------------------------------
WRITER_BATCHES = 400


async def _writer(data_dir: str, topic_id: str, count: int) -> None:
    db = NodeDB.open(data_dir, sync=True)
    logs = [PartitionLog.open(db, topic_id, p) for p in range(2)]
    for i in range(count):
        # Two partitions per step so group commit is exercised; value bytes depend
        # on the offset so the parent can rebuild every expected batch.
        batches = [make_batch(log.next_offset, 1 + (log.next_offset // 7) % 13, epoch=1 + i // 100)
                   for log in logs]
        ends = await asyncio.gather(*(log.append([b], 1 + i // 100) for log, b in zip(logs, batches)))
        print(f"ack {ends[0]} {ends[1]}", flush=True)
    print("done", flush=True)


def _expected_batches(end: int) -> list[bytes]:
    out: list[bytes] = []
    offset = i = 0
    while offset < end:
        header, data = make_batch(offset, 1 + (offset // 7) % 13, epoch=1 + i // 100)
        out.append(data)
        offset = header.next_offset
        i += 1
    return out


def test_kill9_keeps_every_acknowledged_batch(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.test_partition_log", "writer", str(data_dir), TOPIC,
         str(WRITER_BATCHES)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acked = [0, 0]
    acks = 0
    buf = b""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + 60
    try:
        while acks < 60:  # kill after some acks, well before the writer is done
            assert time.monotonic() < deadline, f"writer too slow: {acks} acks"
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
                continue
            chunk = os.read(fd, 65536)
            assert chunk, f"writer exited early: {proc.stderr.read() if proc.stderr else b''!r}"
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                assert line.startswith(b"ack "), line
                acked = [int(x) for x in line.split()[1:]]
                acks += 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # our own child, by pid
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    # Acks read after the last line we parsed may exist too; everything acked must be there.
    db = NodeDB.open(data_dir, sync=True)
    try:
        for partition, acked_end in enumerate(acked):
            log = PartitionLog.open(db, TOPIC, partition)
            assert log.log_end_offset >= acked_end
            fetched = log.read(0, BIG, BIG)
            assert fetched.next_offset == log.log_end_offset
            stored = [bytes(v) for _, v in split_batches(fetched.records)]
            expected = _expected_batches(log.log_end_offset)
            assert stored == expected  # byte for byte, offsets contiguous from 0
            assert log.size_bytes == sum(map(len, stored))
            assert [e.epoch for e in log.epochs()] == sorted({read_header(b).partition_leader_epoch for b in stored})
    finally:
        db.close()


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "writer":
    asyncio.run(_writer(sys.argv[2], sys.argv[3], int(sys.argv[4])))


def test_stored_partitions_lists_every_partition_once(db: NodeDB) -> None:
    assert stored_partitions(db) == []
    a0, a7 = PartitionLog.open(db, TOPIC, 0), PartitionLog.open(db, TOPIC, 7)
    run(append_n(a0, 3))
    run(append_n(a7, 1))
    b = PartitionLog.open(db, OTHER_TOPIC, 2)
    run(b.checkpoint_high_watermark(1))  # state only, no batches
    assert stored_partitions(db) == sorted([(TOPIC, 0), (TOPIC, 7), (OTHER_TOPIC, 2)])
    run(a7.delete())
    assert stored_partitions(db) == sorted([(TOPIC, 0), (OTHER_TOPIC, 2)])
