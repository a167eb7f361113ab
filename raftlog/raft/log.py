"""The Raft log as the core sees it: durable storage plus not-yet-persisted entries.

``Unstable`` holds what the core appended (or a snapshot it received) that the
driver has not yet persisted; ``RaftLog`` reads through it to storage, and tracks
the commit and applied indexes.
"""

from __future__ import annotations

from typing import Protocol

from raftlog.raft.storage import CompactedError, LogStore, SnapshotStore, UnavailableError
from raftlog.raft.types import Entry, Snapshot


class LogStorage(LogStore, SnapshotStore, Protocol):
    """The read side of storage the log needs."""


class LogCompactedError(Exception):
    """The requested entries are no longer in the log (a snapshot must be sent)."""


def entries_size(entries: tuple[Entry, ...] | list[Entry]) -> int:
    return sum(e.size() for e in entries)


class Unstable:
    """Entries (and maybe a snapshot) at indexes >= ``offset`` not yet persisted."""

    __slots__ = ("snapshot", "entries", "offset")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.meta.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.meta.index
        return None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.meta.index == index:
                return self.snapshot.meta.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        """The driver persisted entries up to ``index``; only drop them if they are
        still the ones we hold (they may have been replaced meanwhile)."""
        t = self.maybe_term(index)
        if t is None or t != term or index < self.offset:
            return
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.meta.index == index:
            self.snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        self.offset = snapshot.meta.index + 1
        self.entries = []
        self.snapshot = snapshot

    def truncate_and_append(self, entries: list[Entry]) -> None:
        first = entries[0].index
        if first == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif first <= self.offset:
            # Replaces everything unstable (and, once persisted, the storage suffix).
            self.offset = first
            self.entries = list(entries)
        else:
            del self.entries[first - self.offset :]
            self.entries.extend(entries)


class RaftLog:
    __slots__ = ("storage", "unstable", "committed", "applied")

    def __init__(self, storage: LogStorage) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        # Everything up to the snapshot/compaction point is committed and applied.
        self.committed = first - 1
        self.applied = first - 1

    # -- indexes and terms -------------------------------------------------
    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def stable_last_index(self) -> int:
        """The last index known durable and consistent with this log (0 while a
        received snapshot is not yet persisted)."""
        if self.unstable.snapshot is not None:
            return 0
        if self.unstable.entries:
            return self.unstable.offset - 1
        return self.storage.last_index()

    def term(self, index: int) -> int | None:
        """Term at ``index``; None when compacted or beyond the end."""
        dummy = self.first_index() - 1
        if index < dummy or index > self.last_index():
            return None
        t = self.unstable.maybe_term(index)
        if t is not None:
            return t
        try:
            return self.storage.term(index)
        except (CompactedError, UnavailableError):
            return None

    def term_or_zero(self, index: int) -> int:
        t = self.term(index)
        return 0 if t is None else t

    def last_term(self) -> int:
        return self.term_or_zero(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        t = self.term(index)
        return t is not None and t == term

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Whether a candidate's log (ending at last_index/term) is at least as
        up to date as ours (Raft §5.4.1)."""
        lt = self.last_term()
        return term > lt or (term == lt and last_index >= self.last_index())

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest ``i <= index`` whose term is ``<= term``, and that term (0 if
        unknown). Lets a leader skip a whole divergent term at once."""
        while index > 0:
            t = self.term(index)
            if t is None:
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    # -- reading entries ---------------------------------------------------
    def slice(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        """Entries ``[lo, hi)``, at least one, at most ``max_bytes`` otherwise.
        Raises LogCompactedError if ``lo`` was compacted away."""
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise LogCompactedError(lo)
        if hi > self.last_index() + 1:
            raise ValueError(f"slice [{lo},{hi}) beyond last index {self.last_index()}")
        out: list[Entry] = []
        off = self.unstable.offset
        if lo < off:
            try:
                stored = self.storage.entries(lo, min(hi, off), max_bytes)
            except CompactedError as exc:
                # The driver compacted storage under us.
                raise LogCompactedError(lo) from exc
            out.extend(stored)
            if len(stored) < min(hi, off) - lo:
                return out
        if hi > off:
            size = entries_size(out)
            for e in self.unstable.entries[max(lo, off) - off : hi - off]:
                size += e.size()
                if out and size > max_bytes:
                    break
                out.append(e)
        return out

    def entries_from(self, lo: int, max_bytes: int) -> list[Entry]:
        return self.slice(lo, self.last_index() + 1, max_bytes)

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    # -- changing the log --------------------------------------------------
    def append(self, entries: list[Entry]) -> int:
        if not entries:
            return self.last_index()
        if entries[0].index - 1 < self.committed:
            raise RuntimeError(
                f"would truncate committed entries: append at {entries[0].index}, "
                f"committed {self.committed}"
            )
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: tuple[Entry, ...]) -> int:
        """Index of the first entry that is new or conflicts with ours (0: none)."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: tuple[Entry, ...]
    ) -> int | None:
        """Follower side of AppendEntries: None if our log does not contain
        (index, log_term); otherwise append and return the last new index."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        ci = self.find_conflict(entries)
        if ci != 0:
            if ci <= self.committed:
                raise RuntimeError(f"entry {ci} conflicts with committed entry {self.committed}")
            self.append(list(entries[ci - index - 1 :]))
        self.commit_to(min(committed, last_new))
        return last_new

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise RuntimeError(f"commit {index} beyond last index {self.last_index()}")
            self.committed = index

    def maybe_commit(self, index: int, term: int) -> bool:
        if index > self.committed and self.term_or_zero(index) == term:
            self.commit_to(index)
            return True
        return False

    def restore(self, snapshot: Snapshot) -> None:
        self.committed = snapshot.meta.index
        self.unstable.restore(snapshot)

    # -- applying ----------------------------------------------------------
    def apply_floor(self) -> int:
        """Entries at or below this are applied or covered by a pending snapshot."""
        if self.unstable.snapshot is not None:
            return max(self.applied, self.unstable.snapshot.meta.index)
        return self.applied

    def has_next_committed(self) -> bool:
        return self.committed > self.apply_floor()

    def next_committed(self, max_bytes: int) -> list[Entry]:
        lo = max(self.apply_floor(), self.first_index() - 1) + 1
        if lo > self.committed:
            return []
        return self.slice(lo, self.committed + 1, max_bytes)

    def applied_to(self, index: int) -> None:
        if index > self.committed:
            raise RuntimeError(f"applied {index} beyond commit {self.committed}")
        self.applied = max(self.applied, index)
