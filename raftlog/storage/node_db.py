"""The one RocksDB of a node (docs/architecture.md §6), opened through rocksdict.

Everything a node keeps on disk lives in one RocksDB under ``<data_dir>/rocksdb``,
split into column families, so that one WriteBatch can update the Raft log, the
Raft hard state and partition data atomically and one WAL sync makes the whole
group durable (group commit)::

    db = NodeDB.open(data_dir)            # sync=True: every write() is fsync'ed
    batch = db.batch()
    batch.put(CF.RAFT_STATE, b"k", b"v")
    batch.delete_range(CF.RAFT_LOG, lo_key, hi_key)
    db.write(batch)                        # atomic across CFs, synced once
    db.close()

The RocksDB lives in a subdirectory so the data dir can also hold small
node-identity files next to it. rocksdict is used in raw mode: keys and values
are plain bytes compared bytewise, so big-endian keys iterate in numeric order.

Not thread-safe for concurrent writers of the same keys; RocksDB itself is, so
reads from an executor thread while the loop writes are fine.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import rocksdict

from raftlog.storage.errors import (
    DataDirCorruptError,
    DataDirError,
    DataDirFormatError,
    DataDirIOError,
    DataDirLockedError,
    NodeDBClosedError,
)


class CF(enum.StrEnum):
    """The column families of a node DB (created on first open)."""

    RAFT_LOG = "raft_log"
    """Raft entries, key: 8-byte big-endian index."""
    RAFT_STATE = "raft_state"
    """Raft hard state, log offset and snapshot metadata: small fixed records."""
    RAFT_SNAPSHOT = "raft_snapshot"
    """Raft snapshot data, in chunks."""
    PARTITION_BATCHES = "partition_batches"
    """Record batches of the partitions this node replicates."""
    PARTITION_STATE = "partition_state"
    """Per-partition HW checkpoint, leader-epoch cache, log start offset."""


DB_SUBDIR: Final = "rocksdb"
#: Stored in the default CF, so a foreign or future-format DB is refused, not misread.
_FORMAT_KEY: Final = b"raftlog.node_db.format"
_FORMAT_VERSION: Final = b"\x01"
#: Files whose presence without CURRENT means a RocksDB lost its CURRENT file.
_ROCKSDB_FILE_MARKERS: Final = ("MANIFEST-", "OPTIONS-", "IDENTITY")


def _db_options() -> rocksdict.Options:
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    # A WAL record torn by a crash ends recovery at the last complete batch:
    # nothing after a hole is replayed, which is what a log needs. (A synced
    # batch is never torn, so acknowledged writes survive.)
    opts.set_wal_recovery_mode(rocksdict.DBRecoveryMode.point_in_time())
    opts.set_paranoid_checks(True)
    # Bound the WAL: low-traffic CFs otherwise keep old WAL files alive.
    opts.set_max_total_wal_size(64 << 20)
    opts.set_keep_log_file_num(4)
    return opts


def _cf_options() -> rocksdict.Options:
    return rocksdict.Options(raw_mode=True)


def _classify_open_error(path: Path, exc: Exception) -> DataDirError:
    """Map rocksdict's untyped open failure to a typed DataDirError."""
    msg = str(exc)
    low = msg.lower()
    if "lock" in low and ("/lock" in low or "lock hold" in low):
        return DataDirLockedError(f"data dir {path} is in use by another process or NodeDB: {msg}")
    if low.startswith("corruption") or "corrupt" in low:
        return DataDirCorruptError(f"data dir {path} is corrupt: {msg}")
    if "comparator" in low or "column families not opened" in low:
        return DataDirFormatError(f"data dir {path} is not a raftlog node DB: {msg}")
    return DataDirIOError(f"cannot open data dir {path}: {msg}")


class WriteBatch:
    """One atomic write across column families, plus hooks run after it committed.

    Stores *stage* their changes into a batch (``RocksRaftStorage.stage``) and
    register an ``after_commit`` hook that updates their in-memory view; the hooks
    run only when ``NodeDB.write`` returned, so memory never runs ahead of disk.
    """

    __slots__ = ("_batch", "_handles", "_hooks", "_owners")

    def __init__(self, handles: dict[CF, rocksdict.ColumnFamily]) -> None:
        self._batch = rocksdict.WriteBatch(raw_mode=True)
        self._handles = handles
        self._hooks: list[Callable[[], None]] = []
        self._owners: set[int] = set()

    def _handle(self, cf: CF) -> rocksdict.ColumnFamily:
        handle = self._handles.get(cf)
        if handle is None:  # NodeDB.close() emptied the shared handle map
            raise NodeDBClosedError("the node DB of this batch is closed")
        return handle

    def put(self, cf: CF, key: bytes, value: bytes) -> None:
        self._batch.put(key, value, self._handle(cf))

    def delete(self, cf: CF, key: bytes) -> None:
        self._batch.delete(key, self._handle(cf))

    def delete_range(self, cf: CF, begin: bytes, end: bytes) -> None:
        """Delete keys in ``[begin, end)``; a no-op for an empty range."""
        if begin < end:
            self._batch.delete_range(begin, end, self._handle(cf))

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)

    def claim(self, owner: object) -> bool:
        """Record that ``owner`` staged into this batch; False if it already had.

        A store validates each stage against its committed state, so two stages
        of one store into one batch would be checked against stale state."""
        key = id(owner)
        if key in self._owners:
            return False
        self._owners.add(key)
        return True

    def __len__(self) -> int:
        return int(self._batch.len())

    def size_in_bytes(self) -> int:
        return int(self._batch.size_in_bytes())

    def _take(self) -> tuple[rocksdict.WriteBatch, list[Callable[[], None]]]:
        return self._batch, self._hooks


class ColumnFamilyView:
    """Typed read access to one column family (keys and values are bytes).

    Holds no rocksdict object itself: the NodeDB's lock is released only once
    every rocksdict object referring to the DB is gone, so views look it up."""

    __slots__ = ("_db", "_cf")

    def __init__(self, db: NodeDB, cf: CF) -> None:
        self._db = db
        self._cf = cf

    @property
    def name(self) -> CF:
        return self._cf

    def get(self, key: bytes) -> bytes | None:
        value = self._db._rdict(self._cf).get(key)
        return None if value is None else bytes(value)

    def items(self, lo: bytes, hi: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Key/value pairs with ``lo <= key < hi`` (``hi=None``: to the end), in key order."""
        ro = rocksdict.ReadOptions()
        if hi is not None:
            # Only the upper bound: rocksdict 0.3.29's set_iterate_lower_bound
            # sets the *upper* bound (checked); ``from_key`` gives the lower one.
            ro.set_iterate_upper_bound(hi)
        for key, value in self._db._rdict(self._cf).items(from_key=lo, read_opt=ro):
            if not isinstance(key, bytes) or not isinstance(value, bytes):
                raise DataDirFormatError(f"non-bytes record in column family {self._cf}")
            yield key, value

    def first_key(self, lo: bytes = b"", hi: bytes | None = None) -> bytes | None:
        """The smallest key in ``[lo, hi)``, or None."""
        for key, _ in self.items(lo, hi):
            return key
        return None

    def last_key(self, lo: bytes = b"", hi: bytes | None = None) -> bytes | None:
        """The largest key in ``[lo, hi)``, or None."""
        ro = rocksdict.ReadOptions()
        if hi is not None:
            ro.set_iterate_upper_bound(hi)
        it = self._db._rdict(self._cf).iter(ro)
        it.seek_to_last()
        if not it.valid():
            return None
        key = bytes(it.key())
        return key if key >= lo else None


class NodeDB:
    """The node's RocksDB. Create with ``NodeDB.open(data_dir, sync=True)``."""

    def __init__(self, data_dir: Path, rdict: rocksdict.Rdict, sync: bool) -> None:
        """Use :meth:`open`; this only wires an already opened Rdict."""
        self._data_dir = data_dir
        self._sync = sync
        self._db: rocksdict.Rdict | None = rdict
        self._cfs: dict[CF, rocksdict.Rdict] = {cf: rdict.get_column_family(cf.value) for cf in CF}
        self._handles: dict[CF, rocksdict.ColumnFamily] = {
            cf: rdict.get_column_family_handle(cf.value) for cf in CF
        }
        self._write_opts = {True: rocksdict.WriteOptions(), False: rocksdict.WriteOptions()}
        for flag, wo in self._write_opts.items():
            wo.sync = flag

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], *, sync: bool = True) -> NodeDB:
        """Open (creating on first use) the node DB in ``data_dir``.

        ``sync=True`` (the default, durable): every ``write`` syncs the WAL before
        returning. ``sync=False`` survives a process crash but not a power loss.
        Raises DataDirLockedError when the dir is in use, DataDirCorruptError,
        DataDirFormatError or DataDirIOError otherwise; never repairs or deletes.
        """
        root = Path(data_dir)
        path = root / DB_SUBDIR
        try:
            path.mkdir(parents=True, exist_ok=True)
            names = os.listdir(path)
        except OSError as exc:
            raise DataDirIOError(f"cannot use data dir {root}: {exc}") from exc
        existing: list[str] = []
        has_db_files = any(
            n.startswith(_ROCKSDB_FILE_MARKERS) or n.endswith((".sst", ".log")) for n in names
        )
        if "CURRENT" in names:
            try:
                existing = list(rocksdict.Rdict.list_cf(str(path), _db_options()))
            except Exception as exc:  # rocksdict raises plain Exception
                raise _classify_open_error(path, exc) from exc
        elif has_db_files:
            # A DB without CURRENT would silently be re-created empty: refuse.
            raise DataDirCorruptError(f"data dir {path} holds RocksDB files but no CURRENT file")
        # Every existing CF must be opened too (RocksDB refuses otherwise).
        cf_names = {cf.value for cf in CF} | (set(existing) - {"default"})
        try:
            rdict = rocksdict.Rdict(
                str(path),
                _db_options(),
                column_families={name: _cf_options() for name in sorted(cf_names)},
            )
        except Exception as exc:
            raise _classify_open_error(path, exc) from exc
        db = cls(root, rdict, sync)
        try:
            db._check_format()
        except BaseException:
            db.close()
            raise
        return db

    def _check_format(self) -> None:
        default = self._live()
        version = default.get(_FORMAT_KEY)
        if version is None:
            default.put(_FORMAT_KEY, _FORMAT_VERSION, self._write_opts[True])
        elif bytes(version) != _FORMAT_VERSION:
            raise DataDirFormatError(
                f"data dir {self._data_dir} has node DB format {bytes(version)!r},"
                f" this build reads {_FORMAT_VERSION!r}"
            )

    # -- properties ------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def path(self) -> Path:
        """The RocksDB directory (``<data_dir>/rocksdb``)."""
        return self._data_dir / DB_SUBDIR

    @property
    def sync(self) -> bool:
        """Whether ``write`` syncs by default."""
        return self._sync

    @property
    def closed(self) -> bool:
        return self._db is None

    # -- reads -------------------------------------------------------------------
    def cf(self, cf: CF) -> ColumnFamilyView:
        return ColumnFamilyView(self, cf)

    @property
    def raft_log(self) -> ColumnFamilyView:
        return ColumnFamilyView(self, CF.RAFT_LOG)

    @property
    def raft_state(self) -> ColumnFamilyView:
        return ColumnFamilyView(self, CF.RAFT_STATE)

    @property
    def raft_snapshot(self) -> ColumnFamilyView:
        return ColumnFamilyView(self, CF.RAFT_SNAPSHOT)

    @property
    def partition_batches(self) -> ColumnFamilyView:
        return ColumnFamilyView(self, CF.PARTITION_BATCHES)

    @property
    def partition_state(self) -> ColumnFamilyView:
        return ColumnFamilyView(self, CF.PARTITION_STATE)

    def _live(self) -> rocksdict.Rdict:
        if self._db is None:
            raise NodeDBClosedError(f"node DB {self.path} is closed")
        return self._db

    def _rdict(self, cf: CF) -> rocksdict.Rdict:
        if self._db is None:
            raise NodeDBClosedError(f"node DB {self.path} is closed")
        return self._cfs[cf]

    # -- writes ------------------------------------------------------------------
    def batch(self) -> WriteBatch:
        """A new, empty batch for :meth:`write`."""
        self._live()
        return WriteBatch(self._handles)

    def write(self, batch: WriteBatch, *, sync: bool | None = None) -> None:
        """Apply ``batch`` atomically (all column families), synced when
        ``sync`` (default: the DB's setting) is true, then run its hooks.

        A failure raises DataDirIOError and runs no hook; RocksDB then refuses
        further writes, and the node should stop (it cannot know what is durable).
        """
        db = self._live()
        raw, hooks = batch._take()
        if len(raw) > 0:
            try:
                db.write(raw, self._write_opts[self._sync if sync is None else sync])
            except Exception as exc:
                raise DataDirIOError(f"write to node DB {self.path} failed: {exc}") from exc
        for hook in hooks:
            hook()

    def flush_wal(self) -> None:
        """Sync the WAL now (useful after a run of ``sync=False`` writes)."""
        try:
            self._live().flush_wal(True)
        except NodeDBClosedError:
            raise
        except Exception as exc:
            raise DataDirIOError(f"WAL sync of node DB {self.path} failed: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Close the DB and release the dir's lock. Idempotent."""
        db, self._db = self._db, None
        if db is None:
            return
        # Every rocksdict object (CF views, handles) keeps the DB open: drop them.
        self._cfs.clear()
        self._handles.clear()
        db.close()

    def __enter__(self) -> NodeDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("sync" if self._sync else "nosync")
        return f"NodeDB({str(self._data_dir)!r}, {state})"
