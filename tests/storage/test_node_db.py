"""NodeDB: column families, group commit, settings, and typed data-dir errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import rocksdict

from raftlog.raft.storage import StorageError
from raftlog.raft.types import Entry, HardState
from raftlog.storage import (
    CF,
    DataDirCorruptError,
    DataDirError,
    DataDirFormatError,
    DataDirIOError,
    DataDirLockedError,
    NodeDB,
    NodeDBClosedError,
    RocksRaftStorage,
)
from raftlog.storage.node_db import DB_SUBDIR, WriteBatch


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def test_creates_column_families_and_defaults(tmp_path: Path) -> None:
    with NodeDB.open(tmp_path / "d") as db:
        assert db.sync is True
        assert db.path == tmp_path / "d" / DB_SUBDIR
        assert not db.closed
    names = set(rocksdict.Rdict.list_cf(str(tmp_path / "d" / DB_SUBDIR)))
    assert {cf.value for cf in CF} <= names
    assert {"raft_log", "raft_state", "raft_snapshot"} <= names
    assert {"partition_batches", "partition_state"} <= names
    with NodeDB.open(tmp_path / "d", sync=False) as db:  # second open: nothing to create
        assert db.sync is False


def test_group_commit_across_column_families(tmp_path: Path) -> None:
    db = NodeDB.open(tmp_path / "d")
    store = RocksRaftStorage(db)
    batch = db.batch()
    store.stage(batch, HardState(1, 1, 0), None, [Entry(1, 1, b"a")])
    batch.put(CF.PARTITION_BATCHES, b"\x00topic\x00\x00\x00\x00" + (0).to_bytes(8, "big"), b"batch")
    batch.put(CF.PARTITION_STATE, b"hw", (7).to_bytes(8, "big"))
    assert store.last_index() == 0  # staged, not yet committed: memory follows disk
    with pytest.raises(StorageError):
        store.stage(batch, None, None, [Entry(1, 2)])  # one stage per store per batch
    other = db.batch()
    with pytest.raises(StorageError):  # does not fit the on-disk format: nothing staged
        store.stage(other, HardState(2**64, 0, 0), None, [Entry(1, 1)])
    assert len(other) == 0
    db.write(batch)
    assert store.last_index() == 1
    assert db.partition_state.get(b"hw") == (7).to_bytes(8, "big")
    store.close()
    db.close()
    with NodeDB.open(tmp_path / "d") as db:
        store = RocksRaftStorage(db)
        assert store.entries(1, 2, 100) == [Entry(1, 1, b"a")]
        assert store.hard_state() == HardState(1, 1, 0)
        assert list(db.partition_batches.items(b"")) == [
            (b"\x00topic\x00\x00\x00\x00" + (0).to_bytes(8, "big"), b"batch")
        ]


def test_views_range_reads(tmp_path: Path) -> None:
    with NodeDB.open(tmp_path / "d") as db:
        batch = db.batch()
        for i in range(10):
            batch.put(CF.PARTITION_BATCHES, i.to_bytes(8, "big"), b"%d" % i)
        batch.delete_range(CF.PARTITION_BATCHES, (2).to_bytes(8, "big"), (4).to_bytes(8, "big"))
        db.write(batch, sync=False)
        view = db.partition_batches
        assert [v for _, v in view.items((1).to_bytes(8, "big"), (6).to_bytes(8, "big"))] == [
            b"1",
            b"4",
            b"5",
        ]
        assert view.first_key() == (0).to_bytes(8, "big")
        assert view.last_key() == (9).to_bytes(8, "big")
        assert view.last_key(hi=(3).to_bytes(8, "big")) == (1).to_bytes(8, "big")
        assert view.last_key(lo=(10).to_bytes(8, "big")) is None
        assert view.get((3).to_bytes(8, "big")) is None


def test_closed_db_and_store_raise(tmp_path: Path) -> None:
    db = NodeDB.open(tmp_path / "d")
    store = RocksRaftStorage(db)
    batch = db.batch()
    db.close()
    db.close()  # idempotent
    with pytest.raises(NodeDBClosedError):
        db.raft_state.get(b"x")
    with pytest.raises(NodeDBClosedError):
        db.batch()
    with pytest.raises(NodeDBClosedError):
        batch.put(CF.RAFT_STATE, b"k", b"v")
    with pytest.raises(NodeDBClosedError):
        store.persist(HardState(1, 0, 0), None, [])
    store.close()
    with pytest.raises(NodeDBClosedError):
        store.last_index()
    with pytest.raises(NodeDBClosedError):
        RocksRaftStorage(db)
    NodeDB.open(tmp_path / "d").close()  # the lock was released


def test_second_open_in_process_is_locked(tmp_path: Path) -> None:
    with NodeDB.open(tmp_path / "d"):
        with pytest.raises(DataDirLockedError) as info:
            NodeDB.open(tmp_path / "d")
        assert isinstance(info.value, DataDirError)
    NodeDB.open(tmp_path / "d").close()


def test_corrupt_current_file_is_refused_untouched(tmp_path: Path) -> None:
    NodeDB.open(tmp_path / "d").close()
    path = tmp_path / "d" / DB_SUBDIR
    (path / "CURRENT").write_bytes(b"garbage")
    before = _files(path)
    with pytest.raises(DataDirCorruptError):
        NodeDB.open(tmp_path / "d")
    assert _files(path) == before  # nothing repaired, nothing deleted


def test_corrupt_manifest_is_refused(tmp_path: Path) -> None:
    NodeDB.open(tmp_path / "d").close()
    path = tmp_path / "d" / DB_SUBDIR
    manifest = path / (path / "CURRENT").read_text().strip()
    manifest.write_bytes(b"\x00" * 64)
    with pytest.raises(DataDirCorruptError):
        NodeDB.open(tmp_path / "d")


def test_missing_current_is_not_recreated(tmp_path: Path) -> None:
    with NodeDB.open(tmp_path / "d") as db:
        RocksRaftStorage(db).persist(HardState(5, 1, 0), None, [])
    path = tmp_path / "d" / DB_SUBDIR
    os.remove(path / "CURRENT")
    before = _files(path)
    with pytest.raises(DataDirCorruptError):
        NodeDB.open(tmp_path / "d")
    assert _files(path) == before


def test_data_dir_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataDirIOError):
        NodeDB.open(tmp_path / "f")


def test_foreign_rocksdb_is_refused(tmp_path: Path) -> None:
    # A rocksdict DB in its default (pickling, custom comparator) mode.
    (tmp_path / "d").mkdir()
    foreign = rocksdict.Rdict(str(tmp_path / "d" / DB_SUBDIR))
    foreign["k"] = 1
    foreign.close()
    with pytest.raises(DataDirFormatError):
        NodeDB.open(tmp_path / "d")


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    NodeDB.open(tmp_path / "d").close()
    opts = rocksdict.Options(raw_mode=True)
    raw = rocksdict.Rdict(
        str(tmp_path / "d" / DB_SUBDIR),
        opts,
        column_families={cf.value: rocksdict.Options(raw_mode=True) for cf in CF},
    )
    raw.put(b"raftlog.node_db.format", b"\x63")
    raw.close()
    del raw
    with pytest.raises(DataDirFormatError):
        NodeDB.open(tmp_path / "d")


def test_unknown_extra_column_family_is_opened(tmp_path: Path) -> None:
    # A CF this build does not know (e.g. added by a newer one) must not block open.
    NodeDB.open(tmp_path / "d").close()
    names = [cf.value for cf in CF] + ["future_cf"]
    opts = rocksdict.Options(raw_mode=True)
    opts.create_missing_column_families(True)
    raw = rocksdict.Rdict(
        str(tmp_path / "d" / DB_SUBDIR),
        opts,
        column_families={n: rocksdict.Options(raw_mode=True) for n in names},
    )
    raw.close()
    del raw
    NodeDB.open(tmp_path / "d").close()


def test_corrupt_entry_record_is_typed(tmp_path: Path) -> None:
    with NodeDB.open(tmp_path / "d") as db:
        store = RocksRaftStorage(db, cache_entries=0)  # read the DB, not the tail cache
        store.persist(None, None, [Entry(1, 1), Entry(1, 2), Entry(1, 3)])
        batch = db.batch()
        batch.put(CF.RAFT_LOG, (2).to_bytes(8, "big"), b"\x01")  # truncated header
        db.write(batch)
        with pytest.raises(DataDirCorruptError):
            store.entries(1, 4, 1000)
        batch = db.batch()
        batch.delete(CF.RAFT_LOG, (2).to_bytes(8, "big"))  # a hole
        db.write(batch)
        with pytest.raises(DataDirCorruptError):
            store.entries(1, 4, 1000)
        with pytest.raises(DataDirCorruptError):
            store.term(2)


def test_raft_writes_are_synced_even_when_the_db_is_not(tmp_path: Path) -> None:
    """A vote or entry that a power loss can erase breaks Raft's safety, so the Raft
    store syncs every persist even on a ``sync=False`` NodeDB (partition data only)."""
    with NodeDB.open(tmp_path / "d", sync=False) as db:
        syncs: list[bool | None] = []
        write = db.write

        def recording_write(batch: WriteBatch, *, sync: bool | None = None) -> None:
            syncs.append(sync)
            write(batch, sync=sync)

        db.write = recording_write  # type: ignore[method-assign]
        store = RocksRaftStorage(db)
        store.persist(HardState(term=1, vote=1, commit=0), None, [Entry(1, 1, b"x")])
        assert syncs == [True]
