"""Micro-benchmark of RocksRaftStorage: ``python -m raftlog.storage.bench``.

Measures ``persist()`` calls/s and entries/s for batches of 1, 10 and 100
entries of 100 bytes (each call also writes a hard state, as a Ready does),
with sync on and off; then the read path (``term`` and ``entries``).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from raftlog.raft.storage import MemoryStorage, RaftStorage
from raftlog.raft.types import Entry, HardState
from raftlog.storage.raft_store import RocksRaftStorage


def bench_persist(path: Path, batch: int, sync: bool, seconds: float) -> tuple[float, float]:
    """(persist calls/s, entries/s) over ``seconds`` of back-to-back appends."""
    store = RocksRaftStorage.open(path, sync=sync)
    payload = b"x" * 100
    index, calls = 0, 0
    start = time.perf_counter()
    deadline = start + seconds
    try:
        while time.perf_counter() < deadline:
            entries = [Entry(term=1, index=index + 1 + i, data=payload) for i in range(batch)]
            store.persist(HardState(term=1, vote=1, commit=index), None, entries)
            index += batch
            calls += 1
        elapsed = time.perf_counter() - start
    finally:
        store.close()
    return calls / elapsed, calls * batch / elapsed


def bench_reads(store: RaftStorage, n: int, recent: bool) -> tuple[float, float]:
    """(term(i)/s, entries(i, i + 100) of 100 B entries/s) for random ``i`` over
    the whole log, or (``recent``) over the last 1,000 entries: the replication
    read path, where followers are a little behind."""
    first, last = store.first_index(), store.last_index()
    rng = random.Random(1)
    lo = last - 1000 if recent else first
    picks = [rng.randint(lo, last - 100) for _ in range(n)]
    t0 = time.perf_counter()
    for i in picks:
        store.term(i)
    t1 = time.perf_counter()
    reads = n // 10
    for i in picks[:reads]:
        store.entries(i, i + 100, 1 << 30)
    t2 = time.perf_counter()
    return n / (t1 - t0), reads / (t2 - t1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="where to create the DBs")
    parser.add_argument("--seconds", type=float, default=2.0, help="per configuration")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raftlog-bench-", dir=args.dir) as tmp:
        print(f"persist, 100 B entries, {args.seconds:.0f} s each, in {tmp}")
        print(f"{'sync':>5} {'batch':>5} {'calls/s':>10} {'entries/s':>11} {'MB/s':>7}")
        for sync in (True, False):
            for batch in (1, 10, 100):
                path = Path(tmp) / f"p-{sync}-{batch}"
                calls, entries = bench_persist(path, batch, sync, args.seconds)
                mb = entries * 100 / 1e6
                print(f"{sync!s:>5} {batch:>5} {calls:>10,.0f} {entries:>11,.0f} {mb:>7.1f}")

        n = 100_000
        payload = b"x" * 100
        stores: list[tuple[str, RaftStorage]] = [
            ("memory", MemoryStorage()),
            ("rocks", RocksRaftStorage.open(Path(tmp) / "r1", sync=False)),
            (
                "rocks, no cache",
                RocksRaftStorage.open(Path(tmp) / "r2", sync=False, cache_entries=0),
            ),
        ]
        for _, store in stores:
            for lo in range(1, n + 1, 1000):
                store.persist(None, None, [Entry(1, i, payload) for i in range(lo, lo + 1000)])
        print(f"\nreads on {n:,} entries of 100 B (entries: 100 per call)")
        print(f"{'store':>16} {'where':>7} {'term/s':>12} {'entries/s':>10}")
        for name, store in stores:
            for recent in (True, False):
                terms, batches = bench_reads(store, 100_000, recent)
                where = "recent" if recent else "random"
                print(f"{name:>16} {where:>7} {terms:>12,.0f} {batches:>10,.0f}")
            store.close()


if __name__ == "__main__":
    main()
