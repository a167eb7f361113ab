"""Micro-benchmark of PartitionLog appends (sync on, group commit) and reads.

    python -m tests.storage.bench_partition_log [--seconds 3] [--dir DIR]

Appends batches of 1 KiB records (100 records per batch, and 1 record per batch to
show the per-sync cost) to 1 partition and to 8 partitions concurrently (one task per
partition, each awaiting its own append before the next: the group committer puts
all partitions' appends of a turn into one synced WriteBatch), then reads one
partition back with 1 MiB fetches. Batches are built once and re-stamped per append,
as a leader does.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from raftlog.records import build_batch, read_header, stamp
from raftlog.storage.group_commit import GroupCommitter
from raftlog.storage.node_db import NodeDB
from raftlog.storage.partition_log import PartitionLog

TOPIC = "AAECAwQFBgcICQoLDA0ODw"
RECORD = 1024


async def _appender(log: PartitionLog, raw: bytes, deadline: float) -> tuple[int, int]:
    appends = nbytes = 0
    while time.perf_counter() < deadline:
        data = stamp(raw, log.next_offset, 1)
        await log.append([(read_header(data), data)], 1)
        appends += 1
        nbytes += len(data)
    return appends, nbytes


async def bench_append(db: NodeDB, partitions: int, records: int, seconds: float, first: int) -> list[PartitionLog]:
    committer = GroupCommitter(db)
    logs = [PartitionLog.open(db, TOPIC, first + p, committer=committer) for p in range(partitions)]
    items: list[tuple[bytes | None, bytes | None]] = [(None, bytes(RECORD))] * records
    raw = build_batch(items)
    start = time.perf_counter()
    results = await asyncio.gather(*(_appender(log, raw, start + seconds) for log in logs))
    elapsed = time.perf_counter() - start
    appends = sum(a for a, _ in results)
    nbytes = sum(b for _, b in results)
    stats = committer.stats
    print(
        f"append {records:>3} x 1 KiB/batch, {partitions} partition(s): {appends / elapsed:9.0f} appends/s"
        f" {appends * records / elapsed:10.0f} records/s {nbytes / elapsed / 1e6:7.1f} MB/s"
        f" | {stats.writes / elapsed:6.0f} syncs/s, {stats.stages / max(stats.writes, 1):4.1f} appends/sync"
    )
    return logs


def bench_read(log: PartitionLog, max_bytes: int = 1 << 20) -> None:
    start = time.perf_counter()
    offset, nbytes, fetches = log.log_start_offset, 0, 0
    while offset < log.log_end_offset:
        fetched = log.read(offset, max_bytes, log.log_end_offset)
        nbytes += len(fetched.records)
        offset = fetched.next_offset
        fetches += 1
    elapsed = time.perf_counter() - start
    print(
        f"read {nbytes / 1e6:.0f} MB in {fetches} fetches of <= {max_bytes >> 10} KiB:"
        f" {nbytes / elapsed / 1e6:7.1f} MB/s"
    )


async def main(seconds: float, root: Path) -> None:
    db = NodeDB.open(root, sync=True)
    try:
        logs = await bench_append(db, 1, 100, seconds, 0)
        await bench_append(db, 8, 100, seconds, 10)
        await bench_append(db, 1, 1, seconds, 20)
        await bench_append(db, 8, 1, seconds, 30)
        bench_read(logs[0])
    finally:
        db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="per append scenario")
    parser.add_argument("--dir", type=Path, default=None, help="data dir (default: a fresh temp dir)")
    args = parser.parse_args()
    tmp = None if args.dir is not None else tempfile.mkdtemp(prefix="bench-partition-log-")
    try:
        asyncio.run(main(args.seconds, args.dir or Path(tmp or ".")))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
