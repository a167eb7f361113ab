"""The simulation's disk model: what a power loss keeps, and torn-write recovery."""

from __future__ import annotations

import random

from raftlog.raft import Entry, HardState
from tests.raft.disk import PersistOp, SimDisk, WalRecord, checksum, tear


def entries(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(term=term, index=i, data=f"value-{i}".encode()) for i in range(lo, hi + 1)]


def test_synced_writes_survive_power_loss() -> None:
    disk = SimDisk()
    disk.persist(HardState(term=2, vote=1, commit=0), None, entries(1, 3), sync=True)
    outcome = disk.power_loss(random.Random(0))
    assert outcome.unsynced == 0
    assert disk.storage.hard_state() == HardState(term=2, vote=1, commit=0)
    assert disk.storage.last_index() == 3


def test_unsynced_writes_are_visible_until_power_loss_keeps_a_prefix() -> None:
    for seed in range(50):
        disk = SimDisk()
        disk.persist(HardState(term=1, vote=1), None, entries(1, 2), sync=True)
        disk.persist(None, None, entries(3, 4), sync=False)
        disk.persist(HardState(term=1, vote=1, commit=4), None, (), sync=False)
        disk.persist(None, None, entries(5, 6), sync=False)
        # The running node reads the page cache; the durable state is the last sync.
        assert disk.storage.last_index() == 6 and disk.unsynced == 3
        assert disk.durable().last_index() == 2
        outcome = disk.power_loss(random.Random(seed))
        st = disk.storage
        assert not outcome.torn_kept
        # Whatever survived is a prefix of the writes, in order, and never torn.
        expected_last = {0: 2, 1: 4, 2: 4, 3: 6}[outcome.kept]
        assert st.last_index() == expected_last
        assert st.hard_state().commit == (4 if outcome.kept >= 2 else 0)
        assert [e.data for e in st.entries(1, st.last_index() + 1, 1 << 20)] == [
            f"value-{i}".encode() for i in range(1, expected_last + 1)
        ]
        assert disk.unsynced == 0


def test_sync_makes_every_earlier_write_durable() -> None:
    disk = SimDisk()
    disk.persist(None, None, entries(1, 2), sync=False)
    disk.persist(HardState(term=1, vote=2), None, (), sync=True)
    assert disk.unsynced == 0
    disk.power_loss(random.Random(1))
    assert disk.storage.last_index() == 2 and disk.storage.hard_state().vote == 2


def test_a_torn_record_fails_its_checksum() -> None:
    op = PersistOp(HardState(term=3, vote=1, commit=2), None, tuple(entries(1, 3, term=3)))
    torn = tear(op, random.Random(4))
    assert torn is not None and isinstance(torn, PersistOp)
    assert torn.hard_state is None  # staged last, so never written before the entries
    assert 1 <= len(torn.entries) <= 3
    assert torn.entries[-1].data != op.entries[len(torn.entries) - 1].data
    assert not WalRecord(torn, checksum(op)).intact()
    assert WalRecord(op, checksum(op)).intact()


def torn_power_loss(trust_torn: bool) -> SimDisk:
    """A power loss that tears the first unsynced write (found by seed search)."""
    for seed in range(200):
        disk = SimDisk()
        disk.persist(HardState(term=1, vote=1), None, entries(1, 1), sync=True)
        disk.persist(None, None, entries(2, 4), sync=False)
        outcome = disk.power_loss(random.Random(seed), trust_torn=trust_torn)
        if outcome.torn and outcome.kept == 0:
            assert outcome.torn_kept == trust_torn
            return disk
    raise AssertionError("no seed tore the write")


def test_recovery_discards_a_torn_tail() -> None:
    disk = torn_power_loss(trust_torn=False)
    assert disk.storage.last_index() == 1


def test_trusting_a_torn_tail_keeps_corrupt_entries() -> None:
    # The mutant "trust-torn-tail": what the simulation must then catch.
    disk = torn_power_loss(trust_torn=True)
    st = disk.storage
    assert st.last_index() >= 2
    last = st.entries(st.last_index(), st.last_index() + 1, 1 << 20)[0]
    assert last.data != f"value-{last.index}".encode()
