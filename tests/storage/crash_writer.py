"""The writer side of the kill -9 test (tests/storage/test_crash_recovery.py).

``plan(seed)`` yields a deterministic sequence of storage writes, each with the
state a correct store shows after it (computed on a MemoryStorage model), so the
parent that killed the writer can recompute what must be on disk.

Run as ``python -m tests.storage.crash_writer DATA_DIR SEED MAX_OPS MAX_SECONDS SYNC``:
it applies the plan to a RocksRaftStorage and prints, flushed, one line per
write that returned: ``ack <last_index> <term> <vote> <commit>``; then ``done``.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from raftlog.raft.storage import MemoryStorage, RaftStorage
from raftlog.raft.types import Entry, HardState, Snapshot, SnapshotMeta
from raftlog.storage import NodeDB, RocksRaftStorage

VOTERS = (1, 2, 3)


@dataclass(frozen=True, slots=True)
class Op:
    """One write: ``persist(hard_state, snapshot, entries)``, or, when
    ``create_snapshot`` / ``compact`` is set, that call instead."""

    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
    create_snapshot: tuple[int, bytes] | None = None
    compact: int | None = None

    def apply(self, store: RaftStorage) -> None:
        if self.create_snapshot is not None:
            index, data = self.create_snapshot
            store.create_snapshot(index, VOTERS, data)
        elif self.compact is not None:
            store.compact(self.compact)
        else:
            store.persist(self.hard_state, self.snapshot, self.entries)


@dataclass(frozen=True, slots=True)
class State:
    """What a store shows: bounds, every entry, hard state, snapshot."""

    first_index: int
    last_index: int
    offset_term: int
    entries: tuple[Entry, ...]
    hard_state: HardState
    snapshot: Snapshot


def observe(store: RaftStorage) -> State:
    first, last = store.first_index(), store.last_index()
    return State(
        first,
        last,
        store.term(first - 1),
        tuple(store.entries(first, last + 1, 1 << 62)),
        store.hard_state(),
        store.snapshot(),
    )


def _payload(rng: random.Random, index: int, term: int) -> bytes:
    return f"{index}/{term}/".encode() + rng.randbytes(rng.randint(0, 200))


def plan(seed: int) -> Iterator[tuple[Op, State]]:
    """An endless, deterministic write sequence shaped like a Raft follower's:
    appends in the current term, new terms that truncate an uncommitted suffix,
    commit advances, local snapshot + compaction, and installed snapshots."""
    rng = random.Random(seed)
    model = MemoryStorage()
    term, vote, commit = 1, 1, 0
    while True:
        last = model.last_index()
        roll = rng.random()
        ops: list[Op] = []
        if roll < 0.10:
            # New term; truncate an uncommitted suffix (never below commit).
            term += 1
            vote = rng.choice(VOTERS)
            start = rng.randint(max(commit, model.first_index() - 1) + 1, last + 1)
            stop = start + rng.randint(1, 8)
            es = tuple(Entry(term, i, _payload(rng, i, term)) for i in range(start, stop))
            ops.append(Op(HardState(term, vote, commit), None, es))
        elif roll < 0.16:
            commit = rng.randint(commit, last)
            ops.append(Op(HardState(term, vote, commit)))
        elif roll < 0.21 and commit > model.snapshot().meta.index:
            index = rng.randint(model.snapshot().meta.index + 1, commit)
            ops.append(Op(create_snapshot=(index, rng.randbytes(rng.randint(0, 3000)))))
            ops.append(Op(compact=max(index - rng.randint(0, 20), 0)))
        elif roll < 0.23:
            # The leader sent a snapshot beyond our log (replaces it entirely).
            term += 1
            index = last + rng.randint(1, 50)
            commit = index
            sn = Snapshot(SnapshotMeta(index, term, VOTERS), rng.randbytes(rng.randint(0, 5000)))
            ops.append(Op(HardState(term, vote, commit), sn))
        else:
            stop = last + 1 + rng.randint(1, 20)
            es = tuple(Entry(term, i, _payload(rng, i, term)) for i in range(last + 1, stop))
            commit = rng.randint(commit, last)  # commit lags the append, as in Raft
            ops.append(Op(HardState(term, vote, commit), None, es))
        for op in ops:
            if op.compact is not None and op.compact <= model.first_index() - 1:
                continue
            op.apply(model)
            yield op, observe(model)


def main(argv: list[str]) -> int:
    data_dir, seed, max_ops, max_seconds, sync = argv
    deadline = time.monotonic() + float(max_seconds)
    store = RocksRaftStorage(NodeDB.open(data_dir, sync=sync == "1"), owns_db=True)
    out = sys.stdout
    for n, (op, _) in enumerate(plan(int(seed))):
        if n >= int(max_ops) or time.monotonic() > deadline:
            break
        op.apply(store)
        hs = store.hard_state()
        out.write(f"ack {store.last_index()} {hs.term} {hs.vote} {hs.commit}\n")
        out.flush()
    store.close()
    out.write("done\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
