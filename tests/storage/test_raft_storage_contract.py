"""One contract suite for every RaftStorage: MemoryStorage and RocksRaftStorage.

Each test gets a ``Harness``: ``h.store`` is the store under test and
``h.reopen()`` closes and reopens it (for the rocks store: a new NodeDB on the
same dir; MemoryStorage's "disk" is the object itself). Tests call ``reopen``
after writes to check that what a store reports is also what it stored.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from raftlog.raft.storage import (
    CompactedError,
    MemoryStorage,
    RaftStorage,
    SnapshotOutOfDateError,
    StorageError,
    UnavailableError,
)
from raftlog.raft.types import Entry, HardState, Snapshot, SnapshotMeta
from raftlog.storage import RocksRaftStorage
from raftlog.storage.raft_store import SNAPSHOT_CHUNK

#: "rocks-nocache" runs the rocks store with its tail cache off, so every read hits the DB.
KINDS = ("memory", "rocks", "rocks-nocache")
NO_LIMIT = 1 << 62


class Harness:
    def __init__(
        self, kind: str, path: Path, *, sync: bool = True, cache: tuple[int, int] = (4096, 1 << 24)
    ) -> None:
        self.kind = kind
        self.path = path
        self.sync = sync
        self.cache = (0, 0) if kind == "rocks-nocache" else cache
        self.store: RaftStorage = self._open()

    def _open(self) -> RaftStorage:
        if self.kind == "memory":
            return MemoryStorage()
        entries, size = self.cache
        return RocksRaftStorage.open(
            self.path, sync=self.sync, cache_entries=entries, cache_bytes=size
        )

    def reopen(self) -> RaftStorage:
        if self.kind != "memory":
            self.store.close()
            self.store = self._open()
        return self.store

    def close(self) -> None:
        self.store.close()


@pytest.fixture(params=KINDS)
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(request.param, tmp_path / "data")
    yield harness
    harness.close()


def ents(lo: int, hi: int, term: int, size: int = 10) -> list[Entry]:
    """Entries [lo, hi) of ``term`` with data identifying index and term."""
    return [
        Entry(term=term, index=i, data=f"{i}@{term}".encode().ljust(size, b"."))
        for i in range(lo, hi)
    ]


def snap(
    index: int, term: int, data: bytes = b"state", voters: tuple[int, ...] = (1, 2, 3)
) -> Snapshot:
    return Snapshot(SnapshotMeta(index=index, term=term, voters=voters), data)


def observe(s: RaftStorage) -> tuple[object, ...]:
    """Everything a reader can see (the whole log, each term, bounds, state)."""
    first, last = s.first_index(), s.last_index()
    terms = tuple(s.term(i) for i in range(first - 1, last + 1))
    log = tuple(s.entries(first, last + 1, NO_LIMIT))
    return (first, last, terms, log, s.hard_state(), s.snapshot())


def now_and_reopened(h: Harness) -> Iterator[RaftStorage]:
    """The store as it is, then (lazily) the same store closed and reopened."""
    yield h.store
    yield h.reopen()


def assert_same_after_reopen(h: Harness) -> None:
    before = observe(h.store)
    assert observe(h.reopen()) == before


# -- empty store -------------------------------------------------------------------


def test_empty_store(h: Harness) -> None:
    for s in now_and_reopened(h):
        assert s.first_index() == 1
        assert s.last_index() == 0
        assert s.term(0) == 0
        with pytest.raises(UnavailableError):
            s.term(1)
        with pytest.raises(CompactedError):
            s.term(-1)
        assert s.entries(1, 1, NO_LIMIT) == []
        with pytest.raises(UnavailableError):
            s.entries(1, 2, NO_LIMIT)
        with pytest.raises(CompactedError):
            s.entries(0, 1, NO_LIMIT)
        assert s.hard_state() == HardState()
        assert s.snapshot() == Snapshot()
        assert s.snapshot().is_empty()


# -- append, term, entries ---------------------------------------------------------


def test_append_term_entries_half_open(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 4, 1) + ents(4, 8, 2))
    for s in now_and_reopened(h):
        assert (s.first_index(), s.last_index()) == (1, 7)
        assert [s.term(i) for i in range(0, 8)] == [0, 1, 1, 1, 2, 2, 2, 2]
        assert s.entries(2, 5, NO_LIMIT) == ents(2, 4, 1) + ents(4, 5, 2)
        assert s.entries(3, 3, NO_LIMIT) == []
        assert s.entries(1, 8, NO_LIMIT) == ents(1, 4, 1) + ents(4, 8, 2)


def test_entries_max_bytes(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 11, 1, size=10))
    size = ents(1, 2, 1, size=10)[0].size()  # 26: data + 16
    assert s.entries(1, 11, 0) == ents(1, 2, 1)  # always at least one entry
    assert s.entries(5, 11, 1) == ents(5, 6, 1)
    assert s.entries(1, 11, size) == ents(1, 2, 1)
    assert s.entries(1, 11, 3 * size) == ents(1, 4, 1)  # exactly at the limit: included
    assert s.entries(1, 11, 3 * size + size - 1) == ents(1, 4, 1)  # next would exceed
    assert s.entries(1, 11, 4 * size) == ents(1, 5, 1)
    assert s.entries(1, 3, NO_LIMIT) == ents(1, 3, 1)  # hi bounds before max_bytes does
    big = [Entry(term=1, index=11, data=b"x" * 1000)]
    s.persist(None, None, big)
    assert s.entries(11, 12, 10) == big


def test_bounds_errors_exact(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 11, 1))
    s.persist(None, snap(5, 1), [])  # first_index 6, term(5) from the snapshot
    for s in now_and_reopened(h):
        assert (s.first_index(), s.last_index()) == (6, 10)
        assert s.term(5) == 1  # first_index - 1: answered
        with pytest.raises(CompactedError):
            s.term(4)
        assert s.term(10) == 1
        with pytest.raises(UnavailableError):
            s.term(11)
        with pytest.raises(CompactedError):
            s.entries(5, 7, NO_LIMIT)
        with pytest.raises(UnavailableError):
            s.entries(6, 12, NO_LIMIT)
        assert s.entries(6, 11, NO_LIMIT) == ents(6, 11, 1)
        assert s.entries(11, 11, NO_LIMIT) == []


# -- overwrite and gaps ------------------------------------------------------------


def test_overwrite_conflicting_suffix(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 6, 1))
    s.persist(None, None, ents(3, 5, 2))  # drops 3..5, appends 3..4
    assert s.last_index() == 4
    assert [s.term(i) for i in range(1, 5)] == [1, 1, 2, 2]
    assert s.entries(1, 5, NO_LIMIT) == ents(1, 3, 1) + ents(3, 5, 2)
    s.persist(None, None, ents(5, 7, 2))  # plain append at last + 1
    s.persist(None, None, ents(1, 2, 3))  # overwrite from the very first entry
    assert s.entries(1, 2, NO_LIMIT) == ents(1, 2, 3)
    assert s.last_index() == 1
    assert_same_after_reopen(h)


def test_gap_raises_and_changes_nothing(h: Harness) -> None:
    s = h.store
    s.persist(HardState(1, 1, 0), None, ents(1, 4, 1))
    before = observe(s)
    with pytest.raises(StorageError):
        s.persist(HardState(2, 2, 2), None, ents(5, 6, 1))
    with pytest.raises(StorageError):  # a hole inside one append is a gap too
        s.persist(HardState(2, 2, 2), None, [Entry(1, 4), Entry(1, 6)])
    with pytest.raises(StorageError):  # the snapshot replaces the log, then 12 is a gap
        s.persist(HardState(2, 2, 2), snap(10, 2), ents(12, 13, 2))
    assert observe(s) == before
    assert observe(h.reopen()) == before


# -- snapshots ---------------------------------------------------------------------


def test_snapshot_keeps_matching_suffix(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 11, 1))
    s.persist(None, snap(5, 1, b"five"), [])
    for s in now_and_reopened(h):
        assert (s.first_index(), s.last_index()) == (6, 10)
        assert s.term(5) == 1
        assert s.entries(6, 11, NO_LIMIT) == ents(6, 11, 1)
        assert s.snapshot() == snap(5, 1, b"five")


def test_snapshot_replaces_log_on_term_mismatch(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 11, 1))
    s.persist(None, snap(5, 2), [])
    for s in now_and_reopened(h):
        assert (s.first_index(), s.last_index()) == (6, 5)
        assert s.term(5) == 2
        with pytest.raises(UnavailableError):
            s.term(6)


def test_snapshot_beyond_log_and_entries_in_same_persist(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 4, 1))
    s.persist(HardState(3, 1, 20), snap(20, 3, b"x"), ents(19, 23, 3))  # 19, 20 skipped
    for s in now_and_reopened(h):
        assert (s.first_index(), s.last_index()) == (21, 22)
        assert s.term(20) == 3
        assert s.entries(21, 23, NO_LIMIT) == ents(21, 23, 3)
        assert s.hard_state() == HardState(3, 1, 20)
    s.persist(None, None, ents(18, 21, 3))  # all covered by the snapshot: nothing changes
    assert (s.first_index(), s.last_index()) == (21, 22)


def test_snapshot_at_compaction_point_keeps_log(h: Harness) -> None:
    s = h.store
    s.persist(None, snap(5, 1), ents(6, 9, 1))
    s.persist(None, snap(5, 1, b"again"), [])  # same index: allowed, replaces the data
    assert (s.first_index(), s.last_index()) == (6, 8)
    assert s.snapshot().data == b"again"


def test_old_snapshot_out_of_date(h: Harness) -> None:
    s = h.store
    s.persist(None, snap(10, 2), ents(11, 13, 2))
    before = observe(s)
    with pytest.raises(SnapshotOutOfDateError):
        s.persist(HardState(5, 5, 5), snap(9, 2), ents(13, 14, 2))
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(10, (1,), b"")
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(3, (1,), b"")
    assert observe(s) == before
    assert observe(h.reopen()) == before


def test_create_snapshot_and_compact(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 4, 1) + ents(4, 11, 2))
    made = s.create_snapshot(6, (1, 2), b"image@6")
    assert made == snap(6, 2, b"image@6", (1, 2))
    assert s.snapshot() == made
    assert (s.first_index(), s.last_index()) == (1, 10)  # no entry dropped
    assert h.reopen().snapshot() == made
    s = h.store
    with pytest.raises(UnavailableError):
        s.create_snapshot(11, (1,), b"")
    with pytest.raises(StorageError):
        s.compact(7)  # beyond the snapshot
    s.compact(3)
    assert (s.first_index(), s.term(3)) == (4, 1)
    with pytest.raises(CompactedError):
        s.term(2)
    s.compact(2)  # already compacted: no-op
    assert s.first_index() == 4
    s.compact(6)
    for s in now_and_reopened(h):
        assert (s.first_index(), s.last_index(), s.term(6)) == (7, 10, 2)
        assert s.entries(7, 11, NO_LIMIT) == ents(7, 11, 2)
        assert s.snapshot() == made
        with pytest.raises(CompactedError):
            s.entries(6, 8, NO_LIMIT)
    s.compact(6)
    assert s.first_index() == 7


def test_compact_whole_log(h: Harness) -> None:
    s = h.store
    s.persist(None, None, ents(1, 6, 1))
    s.create_snapshot(5, (1,), b"")
    s.compact(5)
    for s in now_and_reopened(h):
        assert (s.first_index(), s.last_index(), s.term(5)) == (6, 5, 1)
        assert s.entries(6, 6, NO_LIMIT) == []
    s.persist(None, None, ents(6, 8, 2))
    assert s.entries(6, 8, NO_LIMIT) == ents(6, 8, 2)


def test_large_snapshot_round_trip(h: Harness) -> None:
    data = bytes(range(256)) * (SNAPSHOT_CHUNK * 2 // 256 + 7)  # 3 chunks in rocks
    h.store.persist(None, snap(100, 4, data), [])
    assert h.store.snapshot().data == data
    assert h.reopen().snapshot() == snap(100, 4, data)
    h.store.persist(None, snap(200, 5, b"small"), [])  # replaces every old chunk
    assert h.reopen().snapshot() == snap(200, 5, b"small")


# -- hard state --------------------------------------------------------------------


def test_hard_state_round_trip(h: Harness) -> None:
    s = h.store
    s.persist(HardState(term=3, vote=2, commit=0), None, [])
    assert s.hard_state() == HardState(3, 2, 0)
    s.persist(None, None, ents(1, 3, 3))  # None: unchanged
    assert h.reopen().hard_state() == HardState(3, 2, 0)
    big = HardState(term=2**63, vote=2**40, commit=2**62)
    h.store.persist(big, None, [])
    assert h.reopen().hard_state() == big


def test_reopen_keeps_everything(h: Harness) -> None:
    s = h.store
    s.persist(HardState(1, 1, 0), None, ents(1, 30, 1))
    s.persist(HardState(2, 3, 12), None, ents(25, 40, 2))
    s.create_snapshot(20, (1, 2, 3), b"image")
    s.compact(15)
    before = observe(s)
    assert observe(h.reopen()) == before
    assert observe(h.reopen()) == before  # twice: opening writes nothing that matters


# -- model test: both stores answer alike ---------------------------------------------


def _apply(store: RaftStorage, op: tuple[object, ...]) -> object:
    """Run ``op`` on ``store``; the result or the exception type it raised."""
    try:
        name = op[0]
        if name == "persist":
            hs, sn, es = op[1], op[2], op[3]
            assert hs is None or isinstance(hs, HardState)
            assert sn is None or isinstance(sn, Snapshot)
            assert isinstance(es, list)
            store.persist(hs, sn, es)
            return None
        if name == "create_snapshot":
            index, data = op[1], op[2]
            assert isinstance(index, int) and isinstance(data, bytes)
            return store.create_snapshot(index, (1, 2, 3), data)
        index = op[1]
        assert isinstance(index, int)
        store.compact(index)
        return None
    except StorageError as exc:
        return type(exc)


def span(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Integers in [lo, hi], clamped at 0. The snapshot index can exceed the last
    index (entries under it overwritten later), so ``hi < lo`` happens."""
    lo = max(lo, 0)
    return st.integers(lo, max(lo, hi))


class StoresAgree(RuleBasedStateMachine):
    """Random persist/create_snapshot/compact/reopen sequences, applied to a
    MemoryStorage (the model) and a RocksRaftStorage: same answers, same errors."""

    def __init__(self) -> None:
        super().__init__()
        # On tmpfs when there is one: this test checks logic, not the disk, and
        # creating a RocksDB costs several fsyncs per example on a real disk.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self._tmp = tempfile.TemporaryDirectory(prefix="raftlog-model-", dir=shm)
        self.model = MemoryStorage()
        # sync off: durability is the crash test's job; this one checks logic.
        # A tiny tail cache, so reads cross the cache/DB boundary and trimming runs.
        self.rocks = Harness("rocks", Path(self._tmp.name) / "data", sync=False, cache=(4, 200))

    def teardown(self) -> None:
        self.rocks.close()
        self._tmp.cleanup()

    def _both(self, op: tuple[object, ...]) -> None:
        assert _apply(self.model, op) == _apply(self.rocks.store, op), op

    def _term_near(self, data: st.DataObject, index: int) -> int:
        try:
            own = self.model.term(index)
        except StorageError:
            own = 0
        return data.draw(st.sampled_from([own, own, own + 1, max(own - 1, 0), 1, 2, 3]))

    @rule(data=st.data())
    def persist(self, data: st.DataObject) -> None:
        m = self.model
        snapshot: Snapshot | None = None
        if data.draw(st.integers(0, 4)) == 0:
            index = data.draw(span(m.snapshot().meta.index - 1, m.last_index() + 3))
            blob = data.draw(st.binary(max_size=8))
            snapshot = snap(index, self._term_near(data, index), blob)
        start = data.draw(st.integers(max(m.first_index() - 2, 0), m.last_index() + 2))
        count = data.draw(st.integers(0, 5))
        term = self._term_near(data, start - 1)
        entries = [
            Entry(term=term, index=i, data=data.draw(st.binary(max_size=6)))
            for i in range(start, start + count)
        ]
        if count > 1 and data.draw(st.integers(0, 9)) == 0:
            entries.pop(data.draw(st.integers(0, count - 1)))  # sometimes not contiguous
        hs = None
        if data.draw(st.booleans()):
            hs = HardState(*(data.draw(st.integers(0, 2**64 - 1)) for _ in range(3)))
        self._both(("persist", hs, snapshot, entries))

    @rule(data=st.data())
    def create_snapshot(self, data: st.DataObject) -> None:
        m = self.model
        index = data.draw(span(m.snapshot().meta.index - 1, m.last_index() + 1))
        self._both(("create_snapshot", index, data.draw(st.binary(max_size=8))))

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        m = self.model
        index = data.draw(span(m.first_index() - 2, m.snapshot().meta.index + 1))
        self._both(("compact", index))

    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        # Not every time: opening a RocksDB (fsyncs) dominates this test's time.
        if data.draw(st.integers(0, 3)) == 0:
            self.rocks.reopen()

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        m = self.model
        lo = data.draw(span(m.first_index() - 2, m.last_index() + 2))
        hi = data.draw(span(lo - 1, m.last_index() + 2))
        max_bytes = data.draw(st.sampled_from([0, 20, 40, 100, NO_LIMIT]))
        results: list[object] = []
        for store in (m, self.rocks.store):
            try:
                results.append((store.entries(lo, hi, max_bytes), store.term(lo)))
            except StorageError as exc:
                results.append(type(exc))
        assert results[0] == results[1], (lo, hi, max_bytes)

    @invariant()
    def same_observable_state(self) -> None:
        assert observe(self.rocks.store) == observe(self.model)
        m, r = self.model, self.rocks.store
        lo, hi = m.first_index(), m.last_index() + 1
        for max_bytes in (0, 30, 100):
            assert r.entries(lo, hi, max_bytes) == m.entries(lo, hi, max_bytes)
        for bad in (lo - 2, hi + 1):
            assert _read(m, bad) == _read(r, bad)


def _read(s: RaftStorage, index: int) -> object:
    try:
        return s.term(index), s.entries(index, index + 1, NO_LIMIT)
    except StorageError as exc:
        return type(exc)


TestStoresAgree = StoresAgree.TestCase
TestStoresAgree.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
