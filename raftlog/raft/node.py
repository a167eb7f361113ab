"""RaftNode: the pure Raft state machine (etcd's raft + RawNode in one object).

No I/O, no clock, no threads: time is ``tick()``, input is ``step()`` and the
local requests, output is a ``Ready`` the driver carries out and acknowledges
with ``advance()``. Randomness comes only from the injected ``random.Random``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from raftlog.raft import quorum
from raftlog.raft.log import LogCompactedError, RaftLog, entries_size
from raftlog.raft.progress import Progress, ProgressState
from raftlog.raft.read_only import ReadOnly
from raftlog.raft.roles import RoleMachine
from raftlog.raft.storage import LogStore, SnapshotStore, StableStore
from raftlog.raft.types import (
    NONE,
    Entry,
    HardState,
    Message,
    MessageType,
    PeerProgress,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SoftState,
    Status,
)

#: VOTE context of a campaign started by TIMEOUT_NOW: voters ignore their leader lease.
CAMPAIGN_TRANSFER = b"raft:campaign-transfer"

#: Upper bound on the bytes of committed entries handed out in one Ready.
MAX_COMMITTED_SIZE_PER_READY = 64 << 20

_MT = MessageType


class Storage(LogStore, StableStore, SnapshotStore, Protocol):
    """The read side of RaftStorage the core uses."""


@dataclass(frozen=True, slots=True)
class Config:
    id: int
    voters: tuple[int, ...]
    election_tick: int = 10
    """Election timeout is randomized in [election_tick, 2*election_tick) ticks."""
    heartbeat_tick: int = 1
    max_size_per_msg: int = 1 << 20
    """Bytes of entries per APPEND (at least one entry is always sent)."""
    max_inflight_msgs: int = 256
    """Pipelined APPENDs in flight per follower in replicate state."""
    max_inflight_bytes: int = 8 << 20
    """Bytes of entries in flight per follower (0: unbounded)."""
    pre_vote: bool = True
    check_quorum: bool = True
    applied: int = 0
    """Last index applied to the state machine, when restarting."""

    def __post_init__(self) -> None:
        if self.id <= NONE:
            raise ValueError(f"node id must be positive, got {self.id}")
        if len(set(self.voters)) != len(self.voters) or any(v <= NONE for v in self.voters):
            raise ValueError(f"voters must be distinct positive ids, got {self.voters}")
        if self.id not in self.voters:
            raise ValueError(f"node {self.id} is not among voters {self.voters}")
        if self.heartbeat_tick < 1:
            raise ValueError("heartbeat_tick must be >= 1")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election_tick must be greater than heartbeat_tick")
        if self.max_inflight_msgs < 1:
            raise ValueError("max_inflight_msgs must be >= 1")
        if self.max_size_per_msg < 0 or self.max_inflight_bytes < 0 or self.applied < 0:
            raise ValueError("sizes and applied must be non-negative")


class NotLeaderError(Exception):
    """The request needs the leader; ``leader_id`` is the known leader (0: unknown)."""

    def __init__(self, leader_id: int) -> None:
        super().__init__(f"not the leader (leader: {leader_id or 'unknown'})")
        self.leader_id = leader_id


class ProposalDroppedError(Exception):
    """The leader refuses proposals for now (a leadership transfer is in progress)."""


class InvalidMessageError(ValueError):
    """A malformed message; the node's state was not changed."""


class _Campaign(enum.Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


_INT_FIELDS = ("term", "log_term", "index", "commit", "reject_hint")
_MAY_REJECT = frozenset({_MT.APPEND_RESPONSE, _MT.VOTE_RESPONSE, _MT.PRE_VOTE_RESPONSE})


class RaftNode:
    def __init__(self, config: Config, storage: Storage, rng: random.Random) -> None:
        self._cfg = config
        self.id = config.id
        self._voters = config.voters
        self._rng = rng
        self._log = RaftLog(storage)
        self._roles = RoleMachine()

        hs = storage.hard_state()
        if hs.vote != NONE and hs.vote not in self._voters:
            raise ValueError(f"stored vote {hs.vote} is not a voter")
        if hs.commit > self._log.last_index():
            raise ValueError(
                f"stored commit {hs.commit} beyond last index {self._log.last_index()}"
            )
        self.term = hs.term
        self.vote = hs.vote
        # A stored snapshot is committed, and the driver restores its state
        # machine from it, so entries up to it are never handed out again.
        snap_index = storage.snapshot().meta.index
        self._log.commit_to(max(hs.commit, snap_index))
        if config.applied > self._log.committed:
            raise ValueError(f"applied {config.applied} beyond commit {self._log.committed}")
        self._log.applied = max(self._log.applied, snap_index, config.applied)

        self.lead = NONE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = config.election_tick
        self._votes: dict[int, bool] = {}
        self._prs: dict[int, Progress] = {}
        self._lead_transferee = NONE
        self._read_only = ReadOnly()
        # ReadIndex requests that arrived before the leader committed in its term.
        self._pending_reads: list[tuple[bytes, int]] = []
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []

        self._prev_hs = HardState(self.term, self.vote, self._log.committed)
        self._prev_ss = SoftState(NONE, Role.FOLLOWER)
        self._outstanding: Ready | None = None
        self._become_follower(self.term, NONE)

    # ------------------------------------------------------------------ roles
    @property
    def role(self) -> Role:
        return self._roles.role

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = self._cfg.election_tick + self._rng.randrange(
            self._cfg.election_tick
        )
        self._votes = {}
        self._prs = {}
        self._lead_transferee = NONE
        self._read_only.reset()
        self._pending_reads = []

    def _become_follower(self, term: int, lead: int) -> None:
        self._roles.transition(Role.FOLLOWER)
        self._reset(term)
        self.lead = lead

    def _become_pre_candidate(self) -> None:
        # Neither term nor vote change: a pre-election is only a poll.
        self._roles.transition(Role.PRE_CANDIDATE)
        self._votes = {}
        self.lead = NONE
        self._election_elapsed = 0

    def _become_candidate(self) -> None:
        self._roles.transition(Role.CANDIDATE)
        self._reset(self.term + 1)
        self.vote = self.id

    def _become_leader(self) -> None:
        self._roles.transition(Role.LEADER)
        self._reset(self.term)
        self.lead = self.id
        last = self._log.last_index()
        cfg = self._cfg
        for v in self._voters:
            self._prs[v] = Progress(last + 1, cfg.max_inflight_msgs, cfg.max_inflight_bytes)
        me = self._prs[self.id]
        me.become_replicate()
        me.recent_active = True
        # Only what is durable counts toward our own vote for commit.
        me.match = self._log.stable_last_index()
        me.next = last + 1
        # An entry of our term: committing it commits everything before it (§5.4.2).
        self._log.append([Entry(term=self.term, index=last + 1)])

    # ------------------------------------------------------------- elections
    def _hup(self, kind: _Campaign) -> None:
        if self.role is Role.LEADER:
            return
        self._campaign(kind)

    def _campaign(self, kind: _Campaign) -> None:
        if kind is _Campaign.PRE_ELECTION:
            self._become_pre_candidate()
            vote_type = _MT.PRE_VOTE
            term = self.term + 1  # the term we would campaign in
        else:
            self._become_candidate()
            vote_type = _MT.VOTE
            term = self.term
        if self._poll(self.id, True) is quorum.VoteResult.WON:
            # Single-voter cluster.
            if kind is _Campaign.PRE_ELECTION:
                self._campaign(_Campaign.ELECTION)
            else:
                self._become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if kind is _Campaign.TRANSFER else b""
        for v in self._voters:
            if v != self.id:
                self._send(
                    Message(
                        type=vote_type,
                        to=v,
                        sender=self.id,
                        term=term,
                        index=self._log.last_index(),
                        log_term=self._log.last_term(),
                        context=ctx,
                    )
                )

    def _poll(self, voter: int, granted: bool) -> quorum.VoteResult:
        self._votes.setdefault(voter, granted)
        return quorum.vote_result(self._voters, self._votes)

    # ------------------------------------------------------------------ ticks
    def tick(self) -> None:
        if self.role is Role.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout:
            self._election_elapsed = 0
            self._hup(_Campaign.PRE_ELECTION if self._cfg.pre_vote else _Campaign.ELECTION)

    def _tick_heartbeat(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._cfg.election_tick:
            self._election_elapsed = 0
            if self._cfg.check_quorum and not self._check_quorum_active():
                self._become_follower(self.term, NONE)
                return
            if self._lead_transferee != NONE:
                # The target did not take over within an election timeout.
                self._lead_transferee = NONE
        if self._heartbeat_elapsed >= self._cfg.heartbeat_tick:
            self._heartbeat_elapsed = 0
            self._bcast_heartbeat(self._read_only.last_pending() or b"")

    def _check_quorum_active(self) -> bool:
        active = {v for v, pr in self._prs.items() if v == self.id or pr.recent_active}
        for v, pr in self._prs.items():
            if v != self.id:
                pr.recent_active = False
        return quorum.has_quorum(self._voters, active)

    # ---------------------------------------------------------- local input
    def campaign(self) -> None:
        self._hup(_Campaign.PRE_ELECTION if self._cfg.pre_vote else _Campaign.ELECTION)

    def propose(self, data: Sequence[bytes]) -> tuple[int, int, int]:
        if self.role is not Role.LEADER:
            raise NotLeaderError(self.lead)
        if self._lead_transferee != NONE:
            raise ProposalDroppedError(
                f"leadership transfer to {self._lead_transferee} in progress"
            )
        if isinstance(data, (bytes, bytearray)) or not data:
            raise ValueError("propose takes a non-empty sequence of bytes objects")
        if not all(isinstance(d, (bytes, bytearray)) for d in data):
            raise ValueError("proposal data must be bytes")
        first = self._log.last_index() + 1
        entries = [Entry(term=self.term, index=first + i, data=bytes(d)) for i, d in enumerate(data)]
        self._log.append(entries)
        self._bcast_append()
        return self.term, first, entries[-1].index

    def read_index(self, context: bytes) -> None:
        if not isinstance(context, (bytes, bytearray)) or not context:
            raise ValueError("read_index needs a non-empty bytes context")
        context = bytes(context)
        if self.role is Role.LEADER:
            self._leader_read_index(context, NONE)
        elif self.role is Role.FOLLOWER and self.lead != NONE:
            # Term 0: like a local request, it is valid whatever the leader's term.
            self._send(Message(type=_MT.READ_INDEX, to=self.lead, sender=self.id, context=context))
        else:
            raise NotLeaderError(NONE)

    def transfer_leadership(self, to: int) -> None:
        if self.role is not Role.LEADER:
            raise NotLeaderError(self.lead)
        if to not in self._voters:
            raise ValueError(f"{to} is not a voter")
        if self._lead_transferee != NONE:
            if self._lead_transferee == to:
                return
            self._lead_transferee = NONE
        if to == self.id:
            return
        # The transfer must finish within an election timeout from now.
        self._election_elapsed = 0
        self._lead_transferee = to
        if self._prs[to].match == self._log.last_index():
            self._send_timeout_now(to)
        else:
            self._send_append(to)

    def report_unreachable(self, peer: int) -> None:
        self._check_peer(peer)
        if self.role is not Role.LEADER:
            return
        pr = self._prs[peer]
        # Optimistically sent APPENDs were probably lost.
        if pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self._check_peer(peer)
        if self.role is not Role.LEADER:
            return
        pr = self._prs[peer]
        if pr.state is not ProgressState.SNAPSHOT:
            return
        if not ok:
            pr.pending_snapshot = 0
        pr.become_probe()
        # Wait for a heartbeat response before probing again.
        pr.probe_sent = True

    def _check_peer(self, peer: int) -> None:
        if peer not in self._voters or peer == self.id:
            raise ValueError(f"{peer} is not a peer of {self.id}")

    # --------------------------------------------------------------- messages
    def _send(self, msg: Message) -> None:
        self._msgs.append(msg)

    def _validate(self, m: Message) -> None:
        def bad(why: str) -> InvalidMessageError:
            return InvalidMessageError(f"{why}: {m!r}")

        if not isinstance(m, Message):
            raise InvalidMessageError(f"not a Message: {m!r}")
        if not isinstance(m.type, MessageType):
            raise bad("unknown message type")
        for name in _INT_FIELDS:
            v = getattr(m, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise bad(f"{name} must be a non-negative int")
        if m.to != self.id:
            raise bad(f"addressed to {m.to}, not {self.id}")
        if m.sender == self.id or m.sender not in self._voters:
            raise bad(f"sender {m.sender} is not a peer")
        if not isinstance(m.context, bytes) or not isinstance(m.reject, bool):
            raise bad("bad context or reject")
        if m.type is _MT.READ_INDEX:
            if m.term != 0:
                raise bad("READ_INDEX carries term 0")
        elif m.term == 0:
            raise bad("term must be positive")
        if m.type in (_MT.READ_INDEX, _MT.READ_INDEX_RESPONSE) and not m.context:
            raise bad("ReadIndex messages need a context")
        if m.reject and m.type not in _MAY_REJECT:
            raise bad("only responses may reject")
        if m.type is _MT.APPEND_RESPONSE and m.reject and m.reject_hint > m.index:
            raise bad("reject hint beyond rejected index")
        if m.type in (_MT.VOTE, _MT.PRE_VOTE, _MT.APPEND) and m.log_term > m.term:
            raise bad("log term beyond message term")
        if m.type is _MT.APPEND:
            if m.index == 0 and m.log_term != 0:
                raise bad("entry 0 has term 0")
            if not isinstance(m.entries, tuple):
                raise bad("entries must be a tuple")
            prev_index, prev_term = m.index, m.log_term
            for e in m.entries:
                if not isinstance(e, Entry) or not isinstance(e.data, bytes):
                    raise bad("entries must be Entry values with bytes data")
                if e.index != prev_index + 1:
                    raise bad("entries not contiguous after index")
                if e.term < prev_term or e.term < 1 or e.term > m.term:
                    raise bad("entry terms must be non-decreasing and <= message term")
                prev_index, prev_term = e.index, e.term
        elif m.entries:
            raise bad("only APPEND carries entries")
        if m.type is _MT.SNAPSHOT:
            s = m.snapshot
            if not isinstance(s, Snapshot) or s.is_empty():
                raise bad("SNAPSHOT needs a non-empty snapshot")
            if not (1 <= s.meta.term <= m.term) or not isinstance(s.data, bytes):
                raise bad("bad snapshot term or data")
        elif m.snapshot is not None:
            raise bad("only SNAPSHOT carries a snapshot")

    def step(self, msg: Message) -> None:
        self._validate(msg)
        m = msg
        if m.type is _MT.READ_INDEX:
            self._step_read_index(m)
            return
        if m.term > self.term:
            if m.type in (_MT.VOTE, _MT.PRE_VOTE):
                force = m.type is _MT.VOTE and m.context == CAMPAIGN_TRANSFER
                lease_applies = self._cfg.check_quorum or m.type is _MT.PRE_VOTE
                in_lease = (
                    lease_applies
                    and self.lead != NONE
                    and self._election_elapsed < self._cfg.election_tick
                )
                if in_lease and not force:
                    # We heard from a leader recently: a disruptive candidate.
                    return
            if m.type is _MT.PRE_VOTE:
                pass  # a poll never changes our term
            elif m.type is _MT.PRE_VOTE_RESPONSE and not m.reject:
                pass  # granted for the term we would campaign in
            elif m.type in (_MT.APPEND, _MT.HEARTBEAT, _MT.SNAPSHOT):
                self._become_follower(m.term, m.sender)
            else:
                self._become_follower(m.term, NONE)
        elif m.term < self.term:
            if m.type in (_MT.APPEND, _MT.HEARTBEAT) and (
                self._cfg.check_quorum or self._cfg.pre_vote
            ):
                # A stale leader (e.g. back from a partition) learns our term and
                # steps down; without this it might never hear a higher term.
                self._send(Message(type=_MT.APPEND_RESPONSE, to=m.sender, sender=self.id, term=self.term))
            elif m.type is _MT.PRE_VOTE:
                self._send(
                    Message(
                        type=_MT.PRE_VOTE_RESPONSE,
                        to=m.sender,
                        sender=self.id,
                        term=self.term,
                        reject=True,
                    )
                )
            return

        if m.type in (_MT.VOTE, _MT.PRE_VOTE):
            self._step_vote(m)
        elif self.role is Role.LEADER:
            self._step_leader(m)
        elif self.role is Role.FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    def _step_vote(self, m: Message) -> None:
        can_vote = (
            self.vote == m.sender
            or (self.vote == NONE and self.lead == NONE)
            or (m.type is _MT.PRE_VOTE and m.term > self.term)
        )
        resp_type = _MT.VOTE_RESPONSE if m.type is _MT.VOTE else _MT.PRE_VOTE_RESPONSE
        if can_vote and self._log.is_up_to_date(m.index, m.log_term):
            # A granted pre-vote answers in the term polled for, so the
            # pre-candidate counts it; a real vote must be durable before this
            # response leaves, which the Ready ordering guarantees.
            self._send(Message(type=resp_type, to=m.sender, sender=self.id, term=m.term))
            if m.type is _MT.VOTE:
                self._election_elapsed = 0
                self.vote = m.sender
        else:
            self._send(
                Message(type=resp_type, to=m.sender, sender=self.id, term=self.term, reject=True)
            )

    def _step_candidate(self, m: Message) -> None:
        if m.type in (_MT.APPEND, _MT.HEARTBEAT, _MT.SNAPSHOT):
            # A leader exists in our term.
            self._become_follower(m.term, m.sender)
            self._step_follower(m)
            return
        expected = _MT.PRE_VOTE_RESPONSE if self.role is Role.PRE_CANDIDATE else _MT.VOTE_RESPONSE
        if m.type is not expected:
            return  # stale responses, TIMEOUT_NOW, READ_INDEX_RESPONSE: nothing to do
        if m.type is _MT.PRE_VOTE_RESPONSE and not m.reject and m.term != self.term + 1:
            return  # granted for another pre-election
        result = self._poll(m.sender, not m.reject)
        if result is quorum.VoteResult.WON:
            if self.role is Role.PRE_CANDIDATE:
                self._campaign(_Campaign.ELECTION)
            else:
                self._become_leader()
                self._bcast_append()
        elif result is quorum.VoteResult.LOST:
            self._become_follower(self.term, NONE)

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t is _MT.APPEND:
            self._election_elapsed = 0
            self.lead = m.sender
            self._handle_append(m)
        elif t is _MT.HEARTBEAT:
            self._election_elapsed = 0
            self.lead = m.sender
            self._handle_heartbeat(m)
        elif t is _MT.SNAPSHOT:
            self._election_elapsed = 0
            self.lead = m.sender
            self._handle_snapshot(m)
        elif t is _MT.TIMEOUT_NOW:
            # Our leader hands over: campaign at once, past pre-vote and leases.
            self._hup(_Campaign.TRANSFER)
        elif t is _MT.READ_INDEX_RESPONSE:
            self._read_states.append(ReadState(index=m.index, context=m.context))
        # Other types (stale responses) need no action.

    def _handle_append(self, m: Message) -> None:
        log = self._log
        if m.index < log.committed:
            self._send(
                Message(
                    type=_MT.APPEND_RESPONSE,
                    to=m.sender,
                    sender=self.id,
                    term=self.term,
                    index=log.committed,
                )
            )
            return
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(
                Message(
                    type=_MT.APPEND_RESPONSE, to=m.sender, sender=self.id, term=self.term, index=last_new
                )
            )
            return
        # Tell the leader where our log could match: the last index at or
        # below the probe whose term is <= the leader's term there.
        hint_index, hint_term = log.find_conflict_by_term(min(m.index, log.last_index()), m.log_term)
        self._send(
            Message(
                type=_MT.APPEND_RESPONSE,
                to=m.sender,
                sender=self.id,
                term=self.term,
                index=m.index,
                reject=True,
                reject_hint=hint_index,
                log_term=hint_term,
            )
        )

    def _handle_heartbeat(self, m: Message) -> None:
        # The leader sends min(our match, its commit): entries we hold that match its log.
        self._log.commit_to(m.commit)
        self._send(
            Message(
                type=_MT.HEARTBEAT_RESPONSE,
                to=m.sender,
                sender=self.id,
                term=self.term,
                context=m.context,
            )
        )

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        s = m.snapshot
        log = self._log
        if s.meta.index <= log.committed:
            index = log.committed
        elif log.match_term(s.meta.index, s.meta.term):
            # We already hold the snapshot's last entry: just fast-forward commit.
            log.commit_to(s.meta.index)
            index = log.committed
        else:
            log.restore(s)
            index = log.last_index()
        self._send(
            Message(type=_MT.APPEND_RESPONSE, to=m.sender, sender=self.id, term=self.term, index=index)
        )

    # ----------------------------------------------------------------- leader
    def _step_leader(self, m: Message) -> None:
        pr = self._prs[m.sender]
        if m.type is _MT.APPEND_RESPONSE:
            pr.recent_active = True
            self._handle_append_response(m, pr)
        elif m.type is _MT.HEARTBEAT_RESPONSE:
            pr.recent_active = True
            pr.probe_sent = False
            if pr.state is ProgressState.REPLICATE and pr.inflights.full():
                # Unblock a pipeline whose APPENDs were all lost.
                pr.inflights.free_first_one()
            if pr.match < self._log.last_index() or pr.state is ProgressState.PROBE:
                self._send_append(m.sender)
            if m.context:
                acks = self._read_only.ack(m.context, m.sender)
                if acks is not None and quorum.has_quorum(self._voters, acks):
                    for req in self._read_only.advance(m.context):
                        self._answer_read(req.index, req.context, req.origin)
        # Stale vote responses, TIMEOUT_NOW etc. need nothing from a leader.

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        if m.reject:
            hint = m.reject_hint
            if m.log_term > 0:
                # Skip every entry of ours whose term the follower cannot have.
                hint, _ = self._log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, hint):
                self._send_append(m.sender)
            return
        old_paused = pr.is_paused()
        if not (pr.maybe_update(m.index) or (pr.match == m.index and pr.state is ProgressState.PROBE)):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match + 1 >= self._log.first_index():
            # The follower caught up past the snapshot; the log has the rest.
            pr.become_probe()
            pr.become_replicate()
        elif pr.state is ProgressState.REPLICATE:
            pr.inflights.free_le(m.index)
        if self._maybe_commit():
            self._bcast_append()
        elif old_paused:
            self._send_append(m.sender)
        while self._maybe_send_append(m.sender, send_if_empty=False):
            pass
        if m.sender == self._lead_transferee and pr.match == self._log.last_index():
            self._send_timeout_now(m.sender)

    def _maybe_commit(self) -> bool:
        match = {v: pr.match for v, pr in self._prs.items()}
        mci = quorum.committed_index(self._voters, match)
        # Only an entry of our own term is committed by counting replicas (§5.4.2).
        if not self._log.maybe_commit(mci, self.term):
            return False
        if self._pending_reads:
            pending, self._pending_reads = self._pending_reads, []
            for ctx, origin in pending:
                self._leader_read_index(ctx, origin)
        return True

    def _committed_in_current_term(self) -> bool:
        return self._log.term_or_zero(self._log.committed) == self.term

    def _send_timeout_now(self, to: int) -> None:
        self._send(Message(type=_MT.TIMEOUT_NOW, to=to, sender=self.id, term=self.term))

    def _bcast_append(self) -> None:
        for v in self._voters:
            if v != self.id:
                self._send_append(v)

    def _send_append(self, to: int) -> None:
        self._maybe_send_append(to, send_if_empty=True)

    def _maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        pr = self._prs[to]
        if pr.is_paused():
            return False
        log = self._log
        prev_index = pr.next - 1
        prev_term = log.term(prev_index)
        entries = None
        if prev_term is not None:
            try:
                entries = log.entries_from(pr.next, self._cfg.max_size_per_msg)
            except LogCompactedError:
                entries = None
        if prev_term is None or entries is None:
            if prev_index > log.last_index():
                raise RuntimeError(f"progress of {to} beyond our log: next {pr.next}")
            return self._send_snapshot(to, pr)
        if not entries and not send_if_empty:
            return False
        self._send(
            Message(
                type=_MT.APPEND,
                to=to,
                sender=self.id,
                term=self.term,
                index=prev_index,
                log_term=prev_term,
                entries=tuple(entries),
                commit=log.committed,
            )
        )
        pr.sent_entries(entries[-1].index if entries else None, entries_size(entries))
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False  # do not ship a snapshot to a peer that may be down
        snap = self._log.snapshot()
        if snap.is_empty():
            raise RuntimeError("entries compacted but no snapshot available")
        pr.become_snapshot(snap.meta.index)
        self._send(Message(type=_MT.SNAPSHOT, to=to, sender=self.id, term=self.term, snapshot=snap))
        return True

    def _bcast_heartbeat(self, ctx: bytes) -> None:
        for v in self._voters:
            if v == self.id:
                continue
            # Never ask a follower to commit past what it is known to hold.
            commit = min(self._prs[v].match, self._log.committed)
            self._send(
                Message(
                    type=_MT.HEARTBEAT,
                    to=v,
                    sender=self.id,
                    term=self.term,
                    commit=commit,
                    context=ctx,
                )
            )

    # -------------------------------------------------------------- ReadIndex
    def _step_read_index(self, m: Message) -> None:
        if self.role is Role.LEADER:
            self._leader_read_index(m.context, m.sender)
        # Non-leaders drop it; the requester retries.

    def _leader_read_index(self, ctx: bytes, origin: int) -> None:
        if not self._committed_in_current_term():
            # Our commit index may be behind the previous leader's until then.
            self._pending_reads.append((ctx, origin))
            return
        if len(self._voters) == 1:
            self._answer_read(self._log.committed, ctx, origin)
            return
        if self._read_only.add(self._log.committed, ctx, origin):
            self._read_only.ack(ctx, self.id)
            self._bcast_heartbeat(ctx)

    def _answer_read(self, index: int, ctx: bytes, origin: int) -> None:
        if origin == NONE:
            self._read_states.append(ReadState(index=index, context=ctx))
        else:
            self._send(
                Message(
                    type=_MT.READ_INDEX_RESPONSE,
                    to=origin,
                    sender=self.id,
                    term=self.term,
                    index=index,
                    context=ctx,
                )
            )

    # ------------------------------------------------------------------ Ready
    def _hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self._log.committed)

    def _soft_state(self) -> SoftState:
        return SoftState(leader_id=self.lead, role=self.role)

    def has_ready(self) -> bool:
        """Whether ready() has something to hand out (False while a Ready is
        awaiting advance())."""
        if self._outstanding is not None:
            return False
        u = self._log.unstable
        return bool(
            self._msgs
            or self._read_states
            or u.entries
            or u.snapshot is not None
            or self._log.has_next_committed()
            or self._hard_state() != self._prev_hs
            or self._soft_state() != self._prev_ss
        )

    def ready(self) -> Ready:
        """Everything to persist, send and apply. Call advance() with it before
        the next ready()."""
        if self._outstanding is not None:
            raise RuntimeError("advance() the previous Ready before calling ready() again")
        ss = self._soft_state()
        hs = self._hard_state()
        u = self._log.unstable
        rd = Ready(
            soft_state=ss if ss != self._prev_ss else None,
            hard_state=hs if hs != self._prev_hs else None,
            snapshot=u.snapshot,
            entries=tuple(u.entries),
            committed_entries=tuple(self._log.next_committed(MAX_COMMITTED_SIZE_PER_READY)),
            messages=tuple(self._msgs),
            read_states=tuple(self._read_states),
        )
        self._prev_ss = ss
        self._prev_hs = hs
        self._msgs = []
        self._read_states = []
        self._outstanding = rd
        return rd

    def advance(self, ready: Ready) -> None:
        """The driver persisted, sent and applied ``ready``."""
        if ready is not self._outstanding:
            raise ValueError("advance() must be given the Ready last returned by ready()")
        self._outstanding = None
        log = self._log
        if ready.snapshot is not None:
            log.unstable.stable_snap_to(ready.snapshot.meta.index)
            log.applied_to(max(log.applied, ready.snapshot.meta.index))
        if ready.entries:
            last = ready.entries[-1]
            log.unstable.stable_to(last.index, last.term)
        if ready.committed_entries:
            log.applied_to(ready.committed_entries[-1].index)
        if self.role is Role.LEADER:
            # Our own durable log now counts toward commit.
            if self._prs[self.id].maybe_update(log.stable_last_index()) and self._maybe_commit():
                self._bcast_append()

    # ----------------------------------------------------------------- status
    def status(self) -> Status:
        progress: tuple[tuple[int, PeerProgress], ...] = ()
        if self.role is Role.LEADER:
            progress = tuple(
                (
                    v,
                    PeerProgress(
                        match=pr.match,
                        next=pr.next,
                        recent_active=pr.recent_active,
                        state=pr.state.value,
                    ),
                )
                for v, pr in sorted(self._prs.items())
            )
        return Status(
            id=self.id,
            term=self.term,
            vote=self.vote,
            commit=self._log.committed,
            applied=self._log.applied,
            last_index=self._log.last_index(),
            leader_id=self.lead,
            role=self.role,
            progress=progress,
            lead_transferee=self._lead_transferee,
        )
