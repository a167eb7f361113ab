"""Deterministic unit tests of the Raft core, driven message by message."""

from __future__ import annotations

import dataclasses
import random

import pytest

from raftlog.raft import (
    CAMPAIGN_TRANSFER,
    LEGAL_TRANSITIONS,
    Config,
    Entry,
    HardState,
    IllegalTransitionError,
    InvalidMessageError,
    Message,
    MessageType,
    NotLeaderError,
    ProposalDroppedError,
    RaftNode,
    Role,
    Snapshot,
    SnapshotMeta,
)
from raftlog.raft.roles import RoleMachine
from raftlog.raft.storage import MemoryStorage
from tests.raft.harness import Cluster, preload

MT = MessageType


def is_type(t: MessageType, to: int | None = None):  # type: ignore[no-untyped-def]
    return lambda m: m.type is t and (to is None or m.to == to)


# ----------------------------------------------------------------- elections
def test_single_node_elects_itself_and_commits_only_after_persisting() -> None:
    c = Cluster(1)
    n = c[1]
    c.tick(times=20)
    assert n.role is Role.LEADER and n.term == 1
    term, first, last = n.propose([b"a", b"b"])
    assert (term, first, last) == (1, 2, 3)
    # Appended but not yet persisted: the leader's own log does not count yet.
    assert n.status().commit == 1
    rd = n.ready()
    assert [e.index for e in rd.entries] == [2, 3] and not rd.committed_entries
    c.storages[1].persist(rd.hard_state, rd.snapshot, rd.entries)
    n.advance(rd)
    assert n.status().commit == 3
    rd = c.process(1)
    assert [e.data for e in rd.committed_entries] == [b"a", b"b"]
    assert rd.hard_state is not None and rd.hard_state.commit == 3


def test_three_nodes_elect_exactly_one_leader() -> None:
    c = Cluster(3)
    for _ in range(40):
        c.tick()
        if c.leaders():
            break
    assert len(c.leaders()) == 1
    ld = c.leaders()[0]
    assert all(c[i].status().leader_id == ld for i in c.ids)
    # The leader's empty entry commits everywhere.
    c.tick(times=2)
    assert all(c[i].status().commit == 1 for i in c.ids)


def test_election_timeout_is_randomized_in_range() -> None:
    seen = set()
    for seed in range(40):
        st = MemoryStorage()
        n = RaftNode(Config(id=1, voters=(1, 2, 3)), st, random.Random(seed))
        ticks = 0
        while n.role is Role.FOLLOWER:
            n.tick()
            ticks += 1
        assert 10 <= ticks < 20
        assert n.role is Role.PRE_CANDIDATE and n.term == 0  # pre-vote does not bump the term
        seen.add(ticks)
    assert len(seen) > 3


def test_vote_is_in_the_same_ready_as_its_response() -> None:
    c = Cluster(3)
    c[1].campaign()
    c.flush()  # pre-vote round
    c.deliver()
    # Find node 2's Ready that granted a real vote.
    assert c[2].vote == 1
    assert c.storages[2].hard_state().vote == 1
    resp = [m for m in c.sent if m.type is MT.VOTE_RESPONSE and m.sender == 2]
    assert resp and not resp[0].reject


def test_vote_response_and_persisted_vote_travel_together() -> None:
    c = Cluster(3, pre_vote=False)
    c[1].campaign()
    c.flush()
    vote = c.take(is_type(MT.VOTE, to=2))[0]
    c[2].step(vote)
    rd = c[2].ready()
    assert rd.hard_state == HardState(term=1, vote=1, commit=0)
    assert [m.type for m in rd.messages] == [MT.VOTE_RESPONSE]


def test_restart_restores_term_vote_and_commit() -> None:
    c = Cluster(3)
    c.elect(1)
    c[1].propose([b"x"])
    c.deliver()
    c.tick(times=2)
    before = c[2].status()
    n = c.start(2, applied=before.applied)
    st = n.status()
    assert (st.term, st.vote, st.commit, st.last_index) == (before.term, before.vote, before.commit, before.last_index)
    assert st.role is Role.FOLLOWER and st.leader_id == 0
    assert not n.ready().committed_entries  # already applied


def test_restart_reapplies_committed_entries_after_applied() -> None:
    c = Cluster(3)
    c.elect(1)
    c[1].propose([b"x", b"y"])
    c.deliver()
    c.tick(times=2)
    n = c.start(2, applied=1)
    assert [e.data for e in n.ready().committed_entries] == [b"x", b"y"]


# ------------------------------------------------------ pre-vote, check quorum
def test_prevote_keeps_a_partitioned_node_from_disrupting() -> None:
    c = Cluster(3)
    c.elect(1)
    term = c[1].term
    c.isolate(3)
    c.tick(times=100)
    # The isolated node polls but never bumps its term.
    assert c[3].term == term and c[3].role is Role.PRE_CANDIDATE
    c.heal()
    c.tick(times=5)
    assert c.leaders() == [1] and c[1].term == term
    assert c[3].role is Role.FOLLOWER and c[3].status().leader_id == 1


def test_without_prevote_a_partitioned_node_bumps_its_term() -> None:
    c = Cluster(3, pre_vote=False)
    c.elect(1)
    term = c[1].term
    c.isolate(3)
    c.tick(times=50)
    assert c[3].term > term + 1 and c[3].role is Role.CANDIDATE


def test_prevote_rejected_while_follower_hears_from_leader() -> None:
    c = Cluster(3)
    c.elect(1)
    pv = Message(type=MT.PRE_VOTE, to=2, sender=3, term=c[1].term + 1, index=99, log_term=c[1].term)
    before = c[2].status()
    c[2].step(pv)
    assert c[2].status() == before
    assert not c[2].has_ready()  # lease: no answer at all


def test_leader_lease_ignores_higher_term_vote() -> None:
    c = Cluster(3)
    c.elect(1)
    term = c[1].term
    v = Message(type=MT.VOTE, to=2, sender=3, term=term + 5, index=99, log_term=term)
    c[2].step(v)
    assert c[2].term == term and c[2].vote == 1
    # ...but a transfer campaign is let through.
    c[2].step(dataclasses.replace(v, context=CAMPAIGN_TRANSFER))
    assert c[2].term == term + 5 and c[2].vote == 3


def test_check_quorum_steps_down_an_isolated_leader() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(1)
    for _ in range(25):
        c.tick(1)
        if c[1].role is not Role.LEADER:
            break
    assert c[1].role is Role.FOLLOWER
    c.tick(2, 3, times=40)
    assert len([i for i in (2, 3) if c[i].role is Role.LEADER]) == 1


def test_leader_with_quorum_stays() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    c.tick(1, 2, times=50)
    assert c[1].role is Role.LEADER


def test_stale_leader_learns_higher_term_from_append_response() -> None:
    c = Cluster(3, check_quorum=False)
    c.elect(1)
    c.isolate(1)
    c.tick(2, 3, times=40)
    new = [i for i in (2, 3) if c[i].role is Role.LEADER]
    assert new and c[1].role is Role.LEADER  # still thinks so
    c.heal()
    c.tick(1)
    assert c[1].role is Role.FOLLOWER and c[1].term == c[new[0]].term


# --------------------------------------------------------------- replication
def test_conflict_backoff_skips_whole_terms() -> None:
    c = Cluster(3, pre_vote=False, max_size_per_msg=1)
    # Leader-to-be: 3 entries of term 1 then 5 of term 3. Node 2 diverged with
    # 40 entries of term 2 after the common prefix.
    preload(c.storages[1], [1, 1, 1] + [3] * 5, term=3)
    preload(c.storages[2], [1, 1, 1] + [2] * 40, term=3)
    preload(c.storages[3], [1, 1, 1] + [3] * 5, term=3)
    for i in c.ids:
        c.start(i)
    c.filter = lambda m: 2 not in (m.sender, m.to) or m.type not in (MT.VOTE, MT.VOTE_RESPONSE)
    c.elect(1)
    rejects = [m for m in c.sent if m.type is MT.APPEND_RESPONSE and m.sender == 2 and m.reject]
    # One rejection skips the follower's whole term 2, a second finds the match.
    assert 1 <= len(rejects) <= 2, rejects
    assert c.storages[2].last_index() == c.storages[1].last_index() == 9
    assert [c.storages[2].term(i) for i in range(1, 10)] == [1, 1, 1, 3, 3, 3, 3, 3, 4]


def test_follower_reject_carries_hint_and_term() -> None:
    st = MemoryStorage()
    preload(st, [1, 1, 2, 2, 2], term=2)
    n = RaftNode(Config(id=2, voters=(1, 2, 3)), st, random.Random(0))
    n.step(Message(type=MT.APPEND, to=2, sender=1, term=4, index=7, log_term=3))
    rd = n.ready()
    (resp,) = rd.messages
    assert resp.reject and resp.index == 7
    # Highest index <= min(7, last=5) whose term <= 3: index 5 with term 2.
    assert (resp.reject_hint, resp.log_term) == (5, 2)


def _replicating_leader(**cfg: object) -> Cluster:
    c = Cluster(3, **cfg)
    c.elect(1)
    c.tick(times=2)
    assert dict(c[1].status().progress)[2].state == "replicate"
    return c


def test_pipelining_bounded_by_inflight_count() -> None:
    c = _replicating_leader(max_inflight_msgs=3)
    for k in range(10):
        c[1].propose([f"p{k}".encode()])
    c.flush()
    apps = c.take(is_type(MT.APPEND, to=2))
    assert len(apps) == 3 and all(m.entries for m in apps)
    # Acks free the window and the rest flows.
    for m in apps:
        c[2].step(m)
    c.deliver()
    assert c.storages[2].last_index() == c.storages[1].last_index()


def test_pipelining_bounded_by_inflight_bytes() -> None:
    c = _replicating_leader(max_inflight_bytes=100, max_size_per_msg=40)
    for k in range(10):
        c[1].propose([b"x" * 10])  # 26 bytes each
    c.flush()
    apps = c.take(is_type(MT.APPEND, to=2))
    sizes = [sum(e.size() for e in m.entries) for m in apps]
    assert all(s <= 52 for s in sizes)
    assert sum(sizes[:-1]) < 100 <= sum(sizes)  # the window closes once 100 bytes are out


def test_append_batches_up_to_max_size_per_msg() -> None:
    c = _replicating_leader(max_size_per_msg=100, max_inflight_msgs=1)
    c.isolate(2)
    c.isolate(3)
    for k in range(10):
        c[1].propose([b"y" * 24])  # 40 bytes each
    c.flush()
    c.heal()
    c.queue.clear()
    c.tick(1)  # heartbeat -> response -> the follower is sent what it lacks
    apps = [m for m in c.sent if m.type is MT.APPEND and m.to == 2 and m.entries]
    assert max(len(m.entries) for m in apps) == 2


def test_probe_sends_one_append_at_a_time() -> None:
    c = Cluster(3)
    c.elect(1)
    c[1].report_unreachable(2)
    assert dict(c[1].status().progress)[2].state == "probe"
    c.filter = lambda m: m.to != 2
    for k in range(5):
        c[1].propose([f"q{k}".encode()])
    c.flush()
    apps = [m for m in c.queue if m.type is MT.APPEND and m.to == 2]
    assert len(apps) == 1


def test_previous_term_entry_not_committed_by_counting_replicas() -> None:
    """Figure 8: an entry of an older term is committed only through an entry of
    the leader's own term, never by counting its replicas."""
    c = Cluster(3, pre_vote=False, max_size_per_msg=1)
    preload(c.storages[1], [1, 2], term=3)  # node 1 holds (2, t2), uncommitted
    preload(c.storages[2], [1], term=3)
    preload(c.storages[3], [1], term=3)
    for i in c.ids:
        c.start(i)
    probes_with_3 = []

    def hold_back_index_3(m: Message) -> bool:
        if 3 in (m.sender, m.to):
            return False
        if m.type is MT.APPEND and m.to == 2 and any(e.index == 3 for e in m.entries):
            probes_with_3.append(m)
            return len(probes_with_3) == 1  # the first probe, rejected by node 2
        return True

    c.filter = hold_back_index_3
    c[1].campaign()
    c.deliver()
    assert c[1].role is Role.LEADER and c[1].term == 4
    # Node 2 now durably holds (2, t2): with the leader that is a majority...
    assert c.storages[2].last_index() == 2 and c.storages[2].term(2) == 2
    assert dict(c[1].status().progress)[2].match == 2
    # ...but an entry of term 2 is not committed by counting replicas.
    assert c[1].status().commit == 0
    c.filter = lambda m: 3 not in (m.sender, m.to)
    c.tick(1)
    assert c[1].status().commit == 3


def test_leader_counts_its_own_log_only_once_persisted() -> None:
    c = Cluster(3)
    c.elect(1)
    c.tick(times=2)
    c.isolate(3)
    c[1].propose([b"z"])
    rd = c[1].ready()
    c.storages[1].persist(rd.hard_state, rd.snapshot, rd.entries)
    for m in rd.messages:
        if m.to == 2:
            c[2].step(m)
    c.flush()
    for m in c.take(lambda m: m.to == 1):
        c[1].step(m)
    # Node 2 acked, the entry is on the leader's disk, but the core was not told
    # (no advance()): only 1 of 3 counts.
    assert dict(c[1].status().progress)[2].match == rd.entries[-1].index
    assert c[1].status().commit < rd.entries[-1].index
    c[1].advance(rd)
    assert c[1].status().commit == rd.entries[-1].index


def test_heartbeat_commit_is_capped_by_match() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    c[1].propose([b"a"])
    c.deliver()
    c.tick(1)
    hbs = [m for m in c.sent if m.type is MT.HEARTBEAT and m.to == 3]
    assert hbs and all(m.commit <= 1 for m in hbs)
    assert c[1].status().commit == 2


# ------------------------------------------------------------------ transfer
def test_leadership_transfer() -> None:
    c = Cluster(3)
    c.elect(1)
    c.tick(times=2)
    term = c[1].term
    c[1].transfer_leadership(2)
    assert c[1].status().lead_transferee == 2
    with pytest.raises(ProposalDroppedError):
        c[1].propose([b"nope"])
    c.deliver()
    assert c.leaders() == [2] and c[2].term == term + 1
    votes = [m for m in c.sent if m.type is MT.VOTE and m.sender == 2]
    assert votes and all(m.context == CAMPAIGN_TRANSFER for m in votes)
    assert not [m for m in c.sent if m.type is MT.PRE_VOTE and m.sender == 2]


def test_transfer_catches_up_a_lagging_target_first() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    c[1].propose([b"a", b"b", b"c"])
    c.deliver()
    c.heal()
    c.queue.clear()
    c[1].transfer_leadership(3)
    c.flush()
    assert not [m for m in c.queue if m.type is MT.TIMEOUT_NOW]
    c.deliver()
    assert c.leaders() == [3]
    assert c.storages[3].last_index() >= 4


def test_transfer_aborts_after_election_timeout() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    c[1].transfer_leadership(3)
    c.tick(1, 2, times=10)
    assert c[1].role is Role.LEADER and c[1].status().lead_transferee == 0
    c[1].propose([b"ok again"])


def test_transfer_and_propose_on_follower_raise_not_leader() -> None:
    c = Cluster(3)
    c.elect(1)
    with pytest.raises(NotLeaderError) as ei:
        c[2].propose([b"x"])
    assert ei.value.leader_id == 1
    with pytest.raises(NotLeaderError):
        c[2].transfer_leadership(3)
    fresh = Cluster(3)
    with pytest.raises(NotLeaderError) as ei:
        fresh[1].propose([b"x"])
    assert ei.value.leader_id == 0


# ----------------------------------------------------------------- ReadIndex
def test_read_index_on_leader_needs_a_heartbeat_quorum() -> None:
    c = Cluster(3)
    c.elect(1)
    c.tick(times=2)
    c[1].read_index(b"r1")
    c.flush()
    assert not c.read_states[1]
    hbs = [m for m in c.queue if m.type is MT.HEARTBEAT and m.context == b"r1"]
    assert len(hbs) == 2
    c.deliver()
    assert [(r.index, r.context) for r in c.read_states[1]] == [(1, b"r1")]


def test_read_index_not_answered_without_quorum() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(1)
    c[1].read_index(b"r")
    c.tick(1, times=3)
    assert not c.read_states[1]


def test_read_index_waits_for_commit_in_leader_term() -> None:
    c = Cluster(3, pre_vote=False)
    c[1].campaign()
    while c[1].role is not Role.LEADER:
        c.deliver(limit=1)
    # Elected; the no-op entry of its term is not committed yet.
    assert c[1].status().commit == 0
    c[1].read_index(b"early")
    c.flush()
    assert not c.read_states[1]
    c.deliver()
    assert [(r.index, r.context) for r in c.read_states[1]] == [(1, b"early")]


def test_read_index_forwarded_from_follower() -> None:
    c = Cluster(3)
    c.elect(1)
    c[1].propose([b"v"])
    c.deliver()
    c[3].read_index(b"f")
    c.deliver()
    assert [(r.index, r.context) for r in c.read_states[3]] == [(2, b"f")]
    assert [m for m in c.sent if m.type is MT.READ_INDEX_RESPONSE and m.to == 3]


def test_read_index_single_node() -> None:
    c = Cluster(1)
    c.tick(times=20)
    c.flush()
    c[1].read_index(b"s")
    c.flush()
    assert [(r.index, r.context) for r in c.read_states[1]] == [(1, b"s")]


def test_read_index_without_leader_raises() -> None:
    c = Cluster(3)
    with pytest.raises(NotLeaderError):
        c[1].read_index(b"x")


# ------------------------------------------------------------------ snapshots
def test_snapshot_sent_when_follower_is_behind_compaction() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    for k in range(5):
        c[1].propose([f"s{k}".encode()])
    c.deliver()
    c.tick(1, 2, times=2)
    st = c.storages[1]
    applied = c[1].status().applied
    assert applied == 6
    st.create_snapshot(applied, c.ids, b"state@6")
    st.compact(applied)
    c.heal()
    c.tick(times=3)
    snaps = [m for m in c.sent if m.type is MT.SNAPSHOT and m.to == 3]
    assert snaps and snaps[0].snapshot is not None and snaps[0].snapshot.meta.index == 6
    assert c.storages[3].snapshot().data == b"state@6"
    c[1].report_snapshot(3, True)
    c[1].propose([b"after"])
    c.tick(times=3)
    assert c[3].status().commit == 7 and c.storages[3].term(7) == c[1].term
    assert [(e.index, e.data) for e in c.applied[3]] == [(1, b""), (7, b"after")]


def test_follower_installs_snapshot_through_ready() -> None:
    st = MemoryStorage()
    preload(st, [1, 1], term=1)
    n = RaftNode(Config(id=2, voters=(1, 2, 3)), st, random.Random(0))
    snap = Snapshot(SnapshotMeta(index=10, term=3, voters=(1, 2, 3)), b"sm")
    n.step(Message(type=MT.SNAPSHOT, to=2, sender=1, term=3, snapshot=snap))
    rd = n.ready()
    assert rd.snapshot == snap and not rd.committed_entries
    assert rd.hard_state is not None and rd.hard_state.commit == 10
    (ack,) = rd.messages
    assert ack.type is MT.APPEND_RESPONSE and ack.index == 10 and not ack.reject
    st.persist(rd.hard_state, rd.snapshot, rd.entries)
    n.advance(rd)
    s = n.status()
    assert (s.commit, s.applied, s.last_index) == (10, 10, 10)
    # The log continues after the snapshot point.
    n.step(Message(type=MT.APPEND, to=2, sender=1, term=3, index=10, log_term=3,
                   entries=(Entry(term=3, index=11, data=b"n"),), commit=11))
    rd = n.ready()
    assert [e.index for e in rd.committed_entries] == [11]


def test_stale_snapshot_is_acked_with_commit() -> None:
    c = Cluster(3)
    c.elect(1)
    c[1].propose([b"a"])
    c.deliver()
    c.tick(times=2)
    snap = Snapshot(SnapshotMeta(index=1, term=1, voters=c.ids), b"old")
    c[2].step(Message(type=MT.SNAPSHOT, to=2, sender=1, term=c[1].term, snapshot=snap))
    rd = c[2].ready()
    assert rd.snapshot is None
    assert rd.messages[0].index == 2


# ----------------------------------------------------------------- validation
def _bad_messages(term: int) -> list[Message]:
    e = lambda t, i: Entry(term=t, index=i)  # noqa: E731
    base = Message(type=MT.APPEND, to=2, sender=1, term=term, index=1, log_term=1)
    return [
        dataclasses.replace(base, to=3),  # not for us
        dataclasses.replace(base, sender=2),  # from ourselves
        dataclasses.replace(base, sender=9),  # not a voter
        dataclasses.replace(base, term=-1),
        dataclasses.replace(base, index=-1),
        dataclasses.replace(base, commit=-5),
        dataclasses.replace(base, term=0),
        dataclasses.replace(base, entries=(e(term, 3),)),  # gap after index 1
        dataclasses.replace(base, entries=(e(term, 2), e(term, 4))),  # not contiguous
        dataclasses.replace(base, entries=(e(term, 2), e(term - 1 if term > 1 else 0, 3))),  # term decreases
        dataclasses.replace(base, entries=(e(term + 1, 2),)),  # entry term > message term
        dataclasses.replace(base, log_term=term + 1),
        dataclasses.replace(base, snapshot=Snapshot(SnapshotMeta(index=3, term=1))),
        Message(type=MT.SNAPSHOT, to=2, sender=1, term=term),  # no snapshot
        Message(type=MT.SNAPSHOT, to=2, sender=1, term=term, snapshot=Snapshot()),
        Message(type=MT.HEARTBEAT, to=2, sender=1, term=term, entries=(e(term, 1),)),
        Message(type=MT.HEARTBEAT, to=2, sender=1, term=term, reject=True),
        Message(type=MT.APPEND_RESPONSE, to=2, sender=1, term=term, index=3, reject=True, reject_hint=5),
        Message(type=MT.READ_INDEX, to=2, sender=1, term=0),  # no context
        Message(type=MT.READ_INDEX, to=2, sender=1, term=term, context=b"x"),
        Message(type=MT.VOTE, to=2, sender=1, term=term + 7, log_term=term + 8),
        dataclasses.replace(base, type=99),  # type: ignore[arg-type]
        "not a message",  # type: ignore[list-item]
    ]


@pytest.mark.parametrize("role", ["follower", "leader"])
def test_malformed_messages_rejected_without_state_change(role: str) -> None:
    c = Cluster(3)
    c.elect(2 if role == "leader" else 1)
    c.tick(times=2)
    n = c[2]
    term = n.term
    for m in _bad_messages(term):
        before = n.status()
        hs_before = c.storages[2].hard_state()
        with pytest.raises(InvalidMessageError):
            n.step(m)
        assert n.status() == before, m
        assert not n.has_ready(), m
        assert c.storages[2].hard_state() == hs_before
    # Still fully functional afterwards.
    c.tick(times=3)
    assert len(c.leaders()) == 1


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        Config(id=4, voters=(1, 2, 3))
    with pytest.raises(ValueError):
        Config(id=1, voters=(1, 1, 2))
    with pytest.raises(ValueError):
        Config(id=1, voters=(1,), election_tick=1, heartbeat_tick=1)


def test_local_request_validation() -> None:
    c = Cluster(3)
    c.elect(1)
    with pytest.raises(ValueError):
        c[1].propose([])
    with pytest.raises(ValueError):
        c[1].propose(b"bytes, not a sequence of them")
    with pytest.raises(ValueError):
        c[1].read_index(b"")
    with pytest.raises(ValueError):
        c[1].transfer_leadership(9)
    with pytest.raises(ValueError):
        c[1].report_unreachable(1)


# ------------------------------------------------------------ Ready protocol
def test_ready_must_be_advanced_before_the_next() -> None:
    c = Cluster(3)
    c[1].campaign()
    rd = c[1].ready()
    assert not c[1].has_ready()
    with pytest.raises(RuntimeError):
        c[1].ready()
    with pytest.raises(ValueError):
        c[1].advance(dataclasses.replace(rd))
    c[1].advance(rd)


def test_ready_reports_soft_state_changes_once() -> None:
    c = Cluster(1)
    for _ in range(20):
        c[1].tick()
    rds = []
    while c[1].has_ready():
        rds.append(c.process(1))
    soft = [rd.soft_state for rd in rds if rd.soft_state]
    assert soft and soft[-1].role is Role.LEADER and soft[-1].leader_id == 1
    assert not c[1].has_ready()


def test_report_unreachable_and_snapshot() -> None:
    c = Cluster(3)
    c.elect(1)
    c.tick(times=2)
    c[1].report_unreachable(2)
    assert dict(c[1].status().progress)[2].state == "probe"
    c[1].report_snapshot(2, False)  # not in snapshot state: no-op
    assert dict(c[1].status().progress)[2].state == "probe"
    c[2].report_unreachable(1)  # followers ignore it


# ------------------------------------------------------------------- roles
def test_role_transition_table() -> None:
    assert LEGAL_TRANSITIONS[Role.LEADER] == frozenset({Role.FOLLOWER})
    for frm, tos in LEGAL_TRANSITIONS.items():
        for to in Role:
            rm = RoleMachine()
            rm._role = frm  # noqa: SLF001 - set up the starting role
            if to in tos:
                rm.transition(to)
                assert rm.role is to
            else:
                with pytest.raises(IllegalTransitionError):
                    rm.transition(to)
    assert Role.LEADER not in LEGAL_TRANSITIONS[Role.FOLLOWER]
    assert Role.LEADER not in LEGAL_TRANSITIONS[Role.PRE_CANDIDATE]


def test_restart_from_snapshot_skips_entries_it_covers() -> None:
    st = MemoryStorage()
    preload(st, [1, 1, 1, 1], term=1)
    st.persist(HardState(term=1, vote=0, commit=4), None, [])
    st.create_snapshot(3, (1, 2, 3), b"sm@3")  # snapshot taken, log not compacted
    n = RaftNode(Config(id=1, voters=(1, 2, 3)), st, random.Random(0))
    s = n.status()
    assert (s.commit, s.applied) == (4, 3)
    assert [e.index for e in n.ready().committed_entries] == [4]
