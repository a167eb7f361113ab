"""The narrow storage interfaces the Raft core reads from, and an in-memory store.

The core only *reads* storage (what is durable); the driver *writes* it, from a
``Ready``, before any message of that Ready leaves. The same contract-test suite
(tests/storage/test_raft_storage_contract.py) runs against ``MemoryStorage`` and
the rocksdict store, so the simulation and a real node rely on the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from raftlog.raft.types import Entry, HardState, Snapshot, SnapshotMeta


class StorageError(Exception):
    """Base class for storage contract errors."""


class CompactedError(StorageError):
    """The requested index was compacted away (it is covered by the snapshot)."""


class UnavailableError(StorageError):
    """The requested index is beyond the last stored entry."""


class SnapshotOutOfDateError(StorageError):
    """A snapshot older than the one already stored was offered."""


@runtime_checkable
class LogStore(Protocol):
    def first_index(self) -> int:
        """Index of the first stored entry (snapshot index + 1 when the log is empty)."""
        ...

    def last_index(self) -> int:
        """Index of the last stored entry (the snapshot index when the log is empty)."""
        ...

    def term(self, index: int) -> int:
        """Term of entry ``index``, for ``first_index() - 1 <= index <= last_index()``.

        ``first_index() - 1`` is answered from the snapshot/compaction point.
        Raises CompactedError below that range and UnavailableError above it.
        """
        ...

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        """Entries ``[lo, hi)``, stopping once ``max_bytes`` is exceeded but always
        returning at least one entry when ``lo < hi``. Raises CompactedError when
        ``lo < first_index()`` and UnavailableError when ``hi > last_index() + 1``."""
        ...


@runtime_checkable
class StableStore(Protocol):
    def hard_state(self) -> HardState:
        """The last persisted hard state (HardState() on a fresh store)."""
        ...


@runtime_checkable
class SnapshotStore(Protocol):
    def snapshot(self) -> Snapshot:
        """The newest stored snapshot (an empty Snapshot when there is none)."""
        ...


class RaftStorage(LogStore, StableStore, SnapshotStore, Protocol):
    """Everything a node stores for Raft, plus the write side used by the driver."""

    def persist(
        self,
        hard_state: HardState | None,
        snapshot: Snapshot | None,
        entries: Sequence[Entry],
    ) -> None:
        """Durably store one Ready's state as one atomic write.

        Order of effect: the snapshot (if any) replaces every entry at or below its
        index, and the whole log if the log does not hold the snapshot's last entry
        with the same term; then ``entries`` are appended, first dropping any stored
        entry at or after ``entries[0].index``; then ``hard_state`` replaces the
        stored one. Raises SnapshotOutOfDateError for a snapshot older than the
        stored one, and StorageError for entries that would leave a gap.
        """
        ...

    def create_snapshot(self, index: int, voters: tuple[int, ...], data: bytes) -> Snapshot:
        """Store a snapshot of the state machine at applied ``index`` (which must be
        a stored or already-snapshotted index). Does not drop log entries."""
        ...

    def compact(self, index: int) -> None:
        """Drop entries up to and including ``index`` (at most the snapshot index)."""
        ...

    def close(self) -> None: ...


def check_contiguous(entries: Sequence[Entry]) -> None:
    """Raise StorageError unless ``entries`` have consecutive indexes (a hole
    inside one append is a gap too, and would misplace every later entry)."""
    if not entries:
        return
    first = entries[0].index
    for pos, entry in enumerate(entries):
        if entry.index != first + pos:
            raise StorageError(
                f"entries not contiguous: index {entry.index} at position {pos} after {first}"
            )


class MemoryStorage:
    """An in-memory RaftStorage: what the simulation treats as "on disk"."""

    def __init__(self) -> None:
        # _log[0] is a dummy entry standing for the compaction point (index, term).
        self._log: list[Entry] = [Entry(term=0, index=0)]
        self._hard_state = HardState()
        self._snapshot = Snapshot()

    # -- read side -----------------------------------------------------------
    def _offset(self) -> int:
        return self._log[0].index

    def first_index(self) -> int:
        return self._offset() + 1

    def last_index(self) -> int:
        return self._log[-1].index

    def term(self, index: int) -> int:
        offset = self._offset()
        if index < offset:
            raise CompactedError(f"index {index} compacted (first index {offset + 1})")
        if index > self.last_index():
            raise UnavailableError(f"index {index} beyond last index {self.last_index()}")
        return self._log[index - offset].term

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        offset = self._offset()
        if lo <= offset:
            raise CompactedError(f"index {lo} compacted (first index {offset + 1})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"index {hi - 1} beyond last index {self.last_index()}")
        out: list[Entry] = []
        size = 0
        for entry in self._log[lo - offset : hi - offset]:
            size += entry.size()
            if out and size > max_bytes:
                break
            out.append(entry)
        return out

    def hard_state(self) -> HardState:
        return self._hard_state

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- write side ----------------------------------------------------------
    def persist(
        self,
        hard_state: HardState | None,
        snapshot: Snapshot | None,
        entries: Sequence[Entry],
    ) -> None:
        # Validate everything before changing anything: the write is all-or-nothing.
        if snapshot is not None and snapshot.is_empty():
            snapshot = None
        last = self.last_index()
        if snapshot is not None:
            meta = snapshot.meta
            if meta.index < self._snapshot.meta.index:
                raise SnapshotOutOfDateError(
                    f"snapshot at {meta.index} older than stored {self._snapshot.meta.index}"
                )
            if not self._holds(meta.index, meta.term):
                last = meta.index
        if entries:
            check_contiguous(entries)
            if entries[0].index > last + 1:
                raise StorageError(f"append at {entries[0].index} would leave a gap after {last}")
        if snapshot is not None:
            self._apply_snapshot(snapshot)
        if entries:
            self._append(entries)
        if hard_state is not None:
            self._hard_state = hard_state

    def _holds(self, index: int, term: int) -> bool:
        """Whether the log (or its compaction point) has entry ``index`` at ``term``."""
        offset = self._offset()
        return offset <= index <= self.last_index() and self._log[index - offset].term == term

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        meta = snapshot.meta
        self._snapshot = snapshot
        offset = self._offset()
        if self._holds(meta.index, meta.term):
            self._log = [Entry(term=meta.term, index=meta.index)] + self._log[
                meta.index - offset + 1 :
            ]
        else:
            self._log = [Entry(term=meta.term, index=meta.index)]

    def _append(self, entries: Sequence[Entry]) -> None:
        first_new = entries[0].index
        offset = self._offset()
        if first_new > self.last_index() + 1:
            raise StorageError(
                f"append at {first_new} would leave a gap after {self.last_index()}"
            )
        if first_new <= offset:
            # Entries already covered by the snapshot are skipped, not re-added.
            entries = [e for e in entries if e.index > offset]
            if not entries:
                return
            first_new = entries[0].index
        del self._log[first_new - offset :]
        self._log.extend(entries)

    def create_snapshot(self, index: int, voters: tuple[int, ...], data: bytes) -> Snapshot:
        if index <= self._snapshot.meta.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {index} not newer than stored {self._snapshot.meta.index}"
            )
        snapshot = Snapshot(SnapshotMeta(index=index, term=self.term(index), voters=voters), data)
        self._snapshot = snapshot
        return snapshot

    def compact(self, index: int) -> None:
        offset = self._offset()
        if index <= offset:
            return
        if index > self._snapshot.meta.index:
            raise StorageError(
                f"cannot compact to {index} beyond snapshot {self._snapshot.meta.index}"
            )
        if index > self.last_index():
            # Only reachable if entries under the snapshot index were overwritten
            # since; without this the list lookup below raised IndexError.
            raise UnavailableError(
                f"cannot compact to {index} beyond last index {self.last_index()}"
            )
        self._log = [Entry(term=self._log[index - offset].term, index=index)] + self._log[
            index - offset + 1 :
        ]

    def copy(self) -> MemoryStorage:
        """An independent copy (entries are immutable, so only the list is copied):
        the simulation's disk model keeps one as the durable state of the last sync."""
        other = MemoryStorage()
        other._log = list(self._log)
        other._hard_state = self._hard_state
        other._snapshot = self._snapshot
        return other

    def close(self) -> None:
        pass
