"""A simulated disk with a page cache, for power-loss testing of the Raft driver.

What the real store promises (raftlog/storage): every ``persist`` of a Ready is
one RocksDB WriteBatch, i.e. one WAL record with a checksum; ``NodeDB.write``
with ``sync=True`` returns only once the WAL is fsync'ed, so every record up to
and including it is durable. A record written without a sync sits in the page
cache: a process crash keeps it (the kernel still writes it back), a power loss
keeps only what the kernel had written back by then: a prefix of the unsynced
records, of which the last may be *torn* (partly written). WAL recovery
(``point_in_time``) checks each record's checksum and stops at the first bad
one, so a torn record and everything after it are discarded.

``SimDisk`` models exactly that, cheaply: ``storage`` is what the running node
reads (durable state plus page cache). The durable state is kept apart only
while unsynced records exist; a synced write with nothing pending costs one
in-memory write, as before.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from raftlog.raft.storage import MemoryStorage
from raftlog.raft.types import Entry, HardState, Snapshot


@dataclass(frozen=True, slots=True)
class PersistOp:
    """One Ready's write (RocksRaftStorage.persist: one WriteBatch)."""

    hard_state: HardState | None
    snapshot: Snapshot | None
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class CreateSnapshotOp:
    index: int
    voters: tuple[int, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class CompactOp:
    index: int


WriteOp = PersistOp | CreateSnapshotOp | CompactOp


@dataclass(frozen=True, slots=True)
class WalRecord:
    """A write as it reached the platter: ``op`` may be a torn version of the op
    whose checksum the record carries."""

    op: WriteOp
    checksum: int

    def intact(self) -> bool:
        return checksum(self.op) == self.checksum


def checksum(op: WriteOp) -> int:
    # Stands in for the WAL's CRC: equal ops hash equal within one process,
    # which is all a simulation run needs.
    return hash(op)


def tear(op: WriteOp, rng: random.Random) -> WriteOp | None:
    """The op as a power loss in the middle of writing it may leave it: a prefix
    of the batch (snapshot, entries, hard state: the order RocksRaftStorage
    stages them in) whose last entry is cut short. None when nothing of it
    reached the disk."""
    if not isinstance(op, PersistOp) or not op.entries:
        return None
    kept = rng.randint(1, len(op.entries))
    entries = list(op.entries[:kept])
    last = entries[-1]
    # A partly written value: its first bytes, then whatever the sector held.
    entries[-1] = Entry(term=last.term, index=last.index, data=last.data[: len(last.data) // 2] + b"\x00")
    return PersistOp(hard_state=None, snapshot=op.snapshot, entries=tuple(entries))


def apply(storage: MemoryStorage, op: WriteOp) -> None:
    if isinstance(op, PersistOp):
        storage.persist(op.hard_state, op.snapshot, op.entries)
    elif isinstance(op, CreateSnapshotOp):
        storage.create_snapshot(op.index, op.voters, op.data)
    else:
        storage.compact(op.index)


@dataclass(frozen=True, slots=True)
class PowerLossOutcome:
    """What survived: ``kept`` of ``unsynced`` records, and whether the next one
    was torn (then discarded by recovery, unless ``torn_kept``)."""

    unsynced: int
    kept: int
    torn: bool
    torn_kept: bool

    def describe(self) -> str:
        if not self.unsynced:
            return "nothing unsynced"
        text = f"kept {self.kept}/{self.unsynced} unsynced writes"
        if self.torn:
            text += ", next one torn" + (" and KEPT" if self.torn_kept else " and discarded")
        return text


class SimDisk:
    """A node's disk: see the module docstring."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        #: The state as of the last sync, while unsynced records exist (else None:
        #: the durable state is ``storage`` itself).
        self._durable: MemoryStorage | None = None
        self._unsynced: list[WalRecord] = []

    # -- writes (all through here, so the disk sees every one) -----------------
    def write(self, op: WriteOp, *, sync: bool) -> None:
        """Apply ``op``; with ``sync``, it and every earlier write are durable on
        return, as after ``NodeDB.write(batch, sync=True)``."""
        if not sync and self._durable is None:
            self._durable = self.storage.copy()
        apply(self.storage, op)  # raises (and writes nothing) on a contract violation
        if sync:
            self.sync()
        else:
            self._unsynced.append(WalRecord(op, checksum(op)))

    def persist(
        self, hard_state: HardState | None, snapshot: Snapshot | None, entries: Sequence[Entry], *, sync: bool
    ) -> None:
        self.write(PersistOp(hard_state, snapshot, tuple(entries)), sync=sync)

    def create_snapshot(self, index: int, voters: tuple[int, ...], data: bytes, *, sync: bool) -> None:
        self.write(CreateSnapshotOp(index, voters, data), sync=sync)

    def compact(self, index: int, *, sync: bool) -> None:
        self.write(CompactOp(index), sync=sync)

    def sync(self) -> None:
        """fsync: everything written so far is durable."""
        self._durable = None
        self._unsynced = []

    # -- what survives ---------------------------------------------------------
    @property
    def unsynced(self) -> int:
        return len(self._unsynced)

    def durable(self) -> MemoryStorage:
        """The state a power loss right now would at least keep."""
        return self.storage if self._durable is None else self._durable

    def power_loss(self, rng: random.Random, *, trust_torn: bool = False) -> PowerLossOutcome:
        """Lose the page cache: keep the durable state plus a prefix of the
        unsynced records the kernel happened to write back, maybe tearing the
        record after it; then recover as the WAL does (checksums, stop at the
        first bad record). ``trust_torn`` is a deliberately broken recovery that
        keeps a torn record (to show the simulation catches it)."""
        pending, durable = self._unsynced, self._durable
        if durable is None:
            return PowerLossOutcome(0, 0, False, False)
        kept = rng.randint(0, len(pending))
        wal = pending[:kept]
        torn = False
        if kept < len(pending) and rng.random() < 0.5:
            torn_op = tear(pending[kept].op, rng)
            if torn_op is not None:
                torn = True
                wal.append(WalRecord(torn_op, pending[kept].checksum))
        torn_kept = False
        for record in wal:
            if not record.intact():
                if not trust_torn:
                    break  # point-in-time recovery: nothing after a bad record
                torn_kept = True
            apply(durable, record.op)
        self.storage = durable
        self._durable = None
        self._unsynced = []
        return PowerLossOutcome(len(pending), kept, torn, torn_kept)
