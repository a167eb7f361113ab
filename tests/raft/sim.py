"""Deterministic simulation of a Raft cluster built from pure RaftNode cores.

The driver loop per node is ready() -> persist to its MemoryStorage -> send ->
apply committed entries -> advance(), done atomically; a crash between two such
loops loses every unpersisted change (unstable entries, a pending Ready, the
core's in-memory state) and the node restarts from its MemoryStorage.

A seeded scheduler drives N cores over an in-memory network that drops,
duplicates, delays, reorders and partitions messages; nodes crash and restart
from their MemoryStorage ("disk"), losing everything not persisted. Clients
propose, read (ReadIndex) and transfer leadership; nodes snapshot and compact.
Raft's safety invariants are checked after every step, liveness once the
network heals. Everything derives from the seed, so a failure is replayed with:

    python -m tests.raft.sim --seed 1234 --nodes 5 -v
"""

from __future__ import annotations

import argparse
import bisect
import random
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from raftlog.raft import (
    Config,
    Entry,
    Message,
    MessageType,
    NotLeaderError,
    ProposalDroppedError,
    RaftNode,
    Ready,
    Role,
)
from raftlog.raft.storage import MemoryStorage

#: After the network heals and every node is up, a leader must be elected and a
#: proposal applied on every node within this many ticks (election_tick = 10).
LIVENESS_TICKS = 120
#: Ticks of chaos per run.
CHAOS_TICKS = 150
#: A full pairwise log comparison every this many ticks (incremental checks run every step).
FULL_CHECK_EVERY = 25

ELECTION_TICK = 10


class SimulationFailure(AssertionError):
    pass


@dataclass
class Params:
    """Chaos knobs, drawn per seed so runs range from calm to hostile."""

    drop: float
    dup: float
    delay: float
    max_delay: int
    crash: float  # per node per tick
    crash_step: float  # per delivery/Ready step: crash a random node mid-flight
    crash_after_ready: float  # crash a node right after it handled a Ready (the next one is lost)
    downtime: int  # max ticks a crashed node stays down
    partition: float  # per tick: start a partition
    heal: float  # per tick: heal it
    propose: float
    read: float
    transfer: float
    snapshot: float
    campaign: float
    kill_leader: float  # per tick (and, scaled down, per step): crash the leader
    isolate_leader: float  # per tick: cut the leader (maybe with one follower) off
    depose_new: float  # cut a newly elected leader off at once: its first entries stay local
    heartbeat_tick: int
    max_size_per_msg: int
    max_inflight_msgs: int
    max_inflight_bytes: int
    pre_vote: bool
    check_quorum: bool

    @staticmethod
    def draw(rng: random.Random) -> Params:
        harsh = rng.random() < 0.5
        p = Params(
            drop=rng.choice([0.0, 0.02, 0.1, 0.2 if harsh else 0.05]),
            dup=rng.choice([0.0, 0.02, 0.1]),
            delay=rng.choice([0.0, 0.1, 0.3]),
            max_delay=rng.randint(1, 4),
            crash=rng.choice([0.0, 0.003, 0.01, 0.03 if harsh else 0.01]),
            crash_step=rng.choice([0.0, 0.001, 0.003, 0.01 if harsh else 0.003]),
            crash_after_ready=rng.choice([0.0, 0.0, 0.01, 0.05]),
            downtime=rng.choice([2, 3 * ELECTION_TICK]),
            partition=rng.choice([0.0, 0.02, 0.05]),
            heal=rng.choice([0.05, 0.15]),
            propose=rng.choice([0.3, 0.6, 0.9]),
            read=rng.choice([0.05, 0.2]),
            transfer=rng.choice([0.0, 0.01, 0.04]),
            snapshot=rng.choice([0.02, 0.08]),
            campaign=rng.choice([0.0, 0.01]),
            kill_leader=rng.choice([0.0, 0.0, 0.02, 0.06]),
            isolate_leader=rng.choice([0.0, 0.0, 0.03, 0.1]),
            depose_new=rng.choice([0.0, 0.0, 0.3, 0.6]),
            heartbeat_tick=rng.choice([1, 1, 2, 3]),
            max_size_per_msg=rng.choice([1, 30, 100, 400, 1 << 20]),
            max_inflight_msgs=rng.choice([1, 2, 4, 64]),
            max_inflight_bytes=rng.choice([0, 200, 1 << 20]),
            pre_vote=rng.random() < 0.85,
            check_quorum=rng.random() < 0.85,
        )
        if rng.random() < 0.3:
            # Leader churn with one-entry messages: new leaders leave local-only
            # entries behind and followers catch up entry by entry, the
            # interleavings behind Raft's "Figure 8".
            p.depose_new = rng.choice([0.3, 0.6])
            p.kill_leader = rng.choice([0.02, 0.06])
            p.max_size_per_msg = 1
            p.max_inflight_msgs = rng.choice([1, 2])
        return p


@dataclass
class SimNode:
    id: int
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    node: RaftNode | None = None
    incarnation: int = 0
    down_until: int = 0
    #: The state machine: applied (term, data) for indexes 1..len(sm).
    sm: list[tuple[int, bytes]] = field(default_factory=list)
    #: Entries up to this index were checked against the global committed log.
    verified: int = 0


@dataclass
class InFlight:
    at: int  # tick at which it may be delivered
    seq: int
    msg: Message
    sender_incarnation: int  # transport reports go only to the node that sent it


class Sim:
    def __init__(self, seed: int, nodes: int, verbose: bool = False, contract_checks: bool = True) -> None:
        self.seed = seed
        self.n = nodes
        self.verbose = verbose
        self.contract_checks = contract_checks
        self.rng = random.Random(f"raftsim-{seed}-{nodes}")
        self.p = Params.draw(self.rng)
        self.voters = tuple(range(1, nodes + 1))
        self.nodes = {i: SimNode(i) for i in self.voters}
        self.now = 0
        self.seq = 0
        self.current: list[InFlight] = []  # deliverable now, in any order
        self.future: list[InFlight] = []  # delayed
        self.group: dict[int, int] = {i: 0 for i in self.voters}  # partition groups
        self.dirty: set[int] = set()
        self.trace: deque[str] = deque(maxlen=60)
        # -- invariant bookkeeping
        self.leaders: dict[int, int] = {}  # term -> leader id
        self.committed: list[tuple[int, bytes]] = []  # the global committed log, index i at [i-1]
        self.commit_term: list[int] = []  # upper bound on the term each index was committed in
        self.seen: dict[tuple[int, int], tuple[bytes, int]] = {}  # (index, term) -> (data, prev term)
        self.snapshots: dict[bytes, tuple[tuple[int, bytes], ...]] = {}
        self.reads: dict[bytes, tuple[int, int]] = {}  # ctx -> (node, min index)
        self.counter = 0
        self.stats = {"commits": 0, "reads": 0, "snap_installs": 0, "transfers": 0, "crashes": 0, "leaders": 0}
        for sn in self.nodes.values():
            self._start(sn)

    # ------------------------------------------------------------- plumbing
    def log(self, text: str) -> None:
        line = f"[t={self.now}] {text}"
        self.trace.append(line)
        if self.verbose:
            print(line)

    def fail(self, what: str) -> None:
        tail = "\n".join(self.trace) if not self.verbose else ""
        states = "\n".join(
            f"  {sn.id}: {sn.node.status()}" if sn.node is not None else f"  {sn.id}: down"
            for sn in self.nodes.values()
        )
        raise SimulationFailure(
            f"{what} (seed={self.seed}, nodes={self.n}, tick={self.now})\n"
            f"replay: python -m tests.raft.sim --seed {self.seed} --nodes {self.n} -v\n"
            f"nodes:\n{states}\nlast events:\n{tail}"
        )

    def _config(self, sn: SimNode, applied: int) -> Config:
        p = self.p
        return Config(
            id=sn.id,
            voters=self.voters,
            election_tick=ELECTION_TICK,
            heartbeat_tick=p.heartbeat_tick,
            max_size_per_msg=p.max_size_per_msg,
            max_inflight_msgs=p.max_inflight_msgs,
            max_inflight_bytes=p.max_inflight_bytes,
            pre_vote=p.pre_vote,
            check_quorum=p.check_quorum,
            applied=applied,
        )

    def _start(self, sn: SimNode) -> None:
        snap = sn.storage.snapshot()
        if snap.is_empty():
            sn.sm = []
        else:
            sn.sm = list(self.snapshots[snap.data])
        sn.incarnation += 1
        rng = random.Random(f"node-{self.seed}-{sn.id}-{sn.incarnation}")
        sn.node = RaftNode(self._config(sn, len(sn.sm)), sn.storage, rng)
        # Re-verify the durable log against the global committed log.
        sn.verified = snap.meta.index
        self.dirty.add(sn.id)
        self.check_node(sn)

    def crash(self, sn: SimNode) -> None:
        self.log(f"CRASH {sn.id}")
        self.stats["crashes"] += 1
        sn.node = None
        sn.down_until = self.now + self.rng.randint(1, self.p.downtime)
        self.dirty.discard(sn.id)

    def restart(self, sn: SimNode) -> None:
        self.log(f"RESTART {sn.id}")
        self._start(sn)

    def cut(self, a: int, b: int) -> bool:
        return self.group[a] != self.group[b]

    # -------------------------------------------------------------- network
    def send(self, sender: SimNode, m: Message) -> None:
        p, rng = self.p, self.rng
        copies = 2 if rng.random() < p.dup else 1
        for _ in range(copies):
            if self.cut(m.sender, m.to) or rng.random() < p.drop:
                self.log(f"drop {fmt(m)}")
                assert sender.node is not None
                if m.type is MessageType.SNAPSHOT:
                    # The transport reports a failed snapshot send.
                    sender.node.report_snapshot(m.to, False)
                elif rng.random() < 0.5:
                    sender.node.report_unreachable(m.to)
                continue
            self.seq += 1
            item = InFlight(self.now, self.seq, m, sender.incarnation)
            if rng.random() < p.delay:
                item.at = self.now + rng.randint(1, p.max_delay)
                self.future.append(item)
            else:
                self.current.append(item)

    def deliver(self, item: InFlight) -> None:
        m = item.msg
        dst = self.nodes[m.to]
        if dst.node is None or self.cut(m.sender, m.to):
            self.log(f"lost {fmt(m)}")
            src = self.nodes[m.sender]
            if m.type is MessageType.SNAPSHOT and src.node is not None and src.incarnation == item.sender_incarnation:
                src.node.report_snapshot(m.to, False)
                self.dirty.add(src.id)
            return
        self.log(f"deliver {fmt(m)}")
        dst.node.step(m)
        self.dirty.add(dst.id)
        self.check_node(dst)
        if m.type is MessageType.SNAPSHOT:
            src = self.nodes[m.sender]
            if src.node is not None and src.incarnation == item.sender_incarnation:
                src.node.report_snapshot(m.to, True)
                self.dirty.add(src.id)
                self.check_node(src)

    # ---------------------------------------------------------------- Ready
    def process_ready(self, sn: SimNode) -> None:
        node = sn.node
        assert node is not None
        rd = node.ready()
        self.log(f"ready {sn.id}: {fmt_ready(rd)}")
        if rd.entries:
            self.check_new_entries(sn, rd.entries)
        sn.storage.persist(rd.hard_state, rd.snapshot, rd.entries)
        if self.contract_checks:
            self.check_persist_contract(sn, rd)
        for m in rd.messages:
            self.send(sn, m)
        if rd.snapshot is not None:
            contents = self.snapshots[rd.snapshot.data]
            if list(contents) != self.committed[: len(contents)]:
                self.fail(f"node {sn.id} installed a snapshot that disagrees with the committed log")
            sn.sm = list(contents)
            self.stats["snap_installs"] += 1
        for e in rd.committed_entries:
            self.apply(sn, e)
        for rs in rd.read_states:
            # The network duplicates requests and answers: a read may be answered twice.
            req = self.reads.get(rs.context)
            if req is None:
                self.fail(f"node {sn.id} answered unknown read {rs.context!r}")
                return
            origin, min_index = req
            if origin != sn.id:
                self.fail(f"read {rs.context!r} asked on {origin} answered on {sn.id}")
            if rs.index < min_index:
                self.fail(
                    f"ReadIndex not linearizable: read {rs.context!r} on node {sn.id} got index "
                    f"{rs.index} < commit index {min_index} known when it was requested"
                )
            self.stats["reads"] += 1
        node.advance(rd)
        self.check_node(sn)
        if self.p.crash_after_ready and node.has_ready() and self.rng.random() < self.p.crash_after_ready:
            self.crash(sn)

    def apply(self, sn: SimNode, e: Entry) -> None:
        if e.index != len(sn.sm) + 1:
            self.fail(f"node {sn.id} applies index {e.index} after {len(sn.sm)}")
        self.note_committed(sn, e.index, e.term, e.data)
        sn.sm.append((e.term, e.data))

    # ---------------------------------------------------------------- checks
    def note_committed(self, sn: SimNode, index: int, term: int, data: bytes) -> None:
        if index <= len(self.committed):
            if self.committed[index - 1] != (term, data):
                self.fail(
                    f"committed entry changed: index {index} was {self.committed[index - 1]}, "
                    f"node {sn.id} has {(term, data)} as committed"
                )
        elif index == len(self.committed) + 1:
            assert sn.node is not None
            self.committed.append((term, data))
            bound = sn.node.term
            if self.commit_term:
                bound = max(bound, self.commit_term[-1])
            self.commit_term.append(bound)
            self.stats["commits"] += 1
        else:
            self.fail(f"node {sn.id} committed {index} past the known committed log {len(self.committed)}")

    def check_node(self, sn: SimNode) -> None:
        node = sn.node
        if node is None:
            return
        log = node._log
        if node.role is Role.LEADER:
            prev = self.leaders.setdefault(node.term, sn.id)
            if prev == sn.id and len(self.leaders) > self.stats["leaders"]:
                self.stats["leaders"] = len(self.leaders)
                if self.rng.random() < self.p.depose_new and all(g == 0 for g in self.group.values()):
                    self.group = {i: (1 if i == sn.id else 0) for i in self.voters}
                    self.log(f"DEPOSE new leader {sn.id} of term {node.term}")
            if prev != sn.id:
                self.fail(f"election safety: nodes {prev} and {sn.id} both leader in term {node.term}")
            # Leader completeness: every entry committed in an earlier term is in our log.
            j = bisect.bisect_left(self.commit_term, node.term)
            if j > 0 and j >= log.first_index() - 1:
                t = log.term(j)
                if t != self.committed[j - 1][0]:
                    self.fail(
                        f"leader completeness: leader {sn.id} of term {node.term} has term {t} at "
                        f"{j}, committed term {self.committed[j - 1][0]}"
                    )
        c = log.committed
        if c > sn.verified:
            lo = max(sn.verified + 1, log.first_index())
            if lo <= c:
                for e in log.slice(lo, c + 1, 1 << 62):
                    self.note_committed(sn, e.index, e.term, e.data)
            sn.verified = c

    def check_new_entries(self, sn: SimNode, entries: tuple[Entry, ...]) -> None:
        """Log matching, incrementally: an (index, term) names one entry and one
        predecessor term everywhere, so equal (index, term) implies equal prefixes."""
        assert sn.node is not None
        prev_term = sn.node._log.term(entries[0].index - 1)
        for e in entries:
            key = (e.index, e.term)
            val = (e.data, prev_term if prev_term is not None else -1)
            old = self.seen.setdefault(key, val)
            if old != val and not (old[0] == val[0] and -1 in (old[1], val[1])):
                self.fail(f"log matching: entry {key} is {old} on one node and {val} on node {sn.id}")
            prev_term = e.term

    def check_persist_contract(self, sn: SimNode, rd: Ready) -> None:
        """Nothing leaves a node that depends on state it has not persisted."""
        hs = sn.storage.hard_state()
        for m in rd.messages:
            if m.type in (MessageType.PRE_VOTE, MessageType.PRE_VOTE_RESPONSE, MessageType.READ_INDEX):
                continue
            if m.term > hs.term:
                self.fail(f"persist contract: node {sn.id} sends {fmt(m)} with durable term {hs.term}")
            # A durable later term supersedes a vote or an ack of an earlier term.
            if m.term < hs.term:
                continue
            if m.type is MessageType.VOTE_RESPONSE and not m.reject and hs.vote != m.to:
                self.fail(f"persist contract: node {sn.id} grants a vote to {m.to} with durable vote {hs.vote}")
            if m.type is MessageType.APPEND_RESPONSE and not m.reject and m.index > 0:
                st = sn.storage
                if m.index > st.last_index():
                    self.fail(f"persist contract: node {sn.id} acks {m.index} but stores up to {st.last_index()}")

    def full_check(self) -> None:
        """Pairwise log matching and committed prefixes over the whole logs."""
        logs: dict[int, dict[int, tuple[int, bytes]]] = {}
        for sn in self.nodes.values():
            if sn.node is None:
                continue
            log = sn.node._log
            ents = log.slice(log.first_index(), log.last_index() + 1, 1 << 62)
            logs[sn.id] = {e.index: (e.term, e.data) for e in ents}
            for e in ents:
                if e.index > log.committed:
                    break
                if e.index <= len(self.committed) and self.committed[e.index - 1] != (e.term, e.data):
                    self.fail(f"node {sn.id} log at committed index {e.index} differs from committed log")
        ids = sorted(logs)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                la, lb = logs[a], logs[b]
                common = sorted(set(la) & set(lb))
                agreed = -1
                for idx in reversed(common):
                    if la[idx][0] == lb[idx][0]:
                        agreed = idx
                        break
                for idx in common:
                    if idx > agreed:
                        break
                    if la[idx] != lb[idx]:
                        self.fail(f"log matching: nodes {a},{b} agree at {agreed} but differ at {idx}")

    # --------------------------------------------------------------- driver
    def settle(self) -> None:
        """Deliver everything due and process Readies, in random interleavings."""
        rng = self.rng
        if self.future:
            due = [x for x in self.future if x.at <= self.now]
            if due:
                self.future = [x for x in self.future if x.at > self.now]
                self.current.extend(due)
        for _ in range(100_000):
            ready_ids = [
                i for i in sorted(self.dirty) if (n := self.nodes[i].node) is not None and n.has_ready()
            ]
            self.dirty = set(ready_ids)
            if not self.current and not ready_ids:
                return
            if self.p.crash_step and rng.random() < self.p.crash_step:
                victim = self.nodes[rng.choice(self.voters)]
                if victim.node is not None:
                    self.crash(victim)
                    continue
            if self.p.kill_leader and rng.random() < self.p.kill_leader / 4:
                ld = self.leader()
                if ld is not None:
                    self.crash(ld)
                    continue
            if self.current and (not ready_ids or rng.random() < 0.6):
                k = rng.randrange(len(self.current))
                item = self.current[k]
                self.current[k] = self.current[-1]
                self.current.pop()
                self.deliver(item)
            else:
                self.process_ready(self.nodes[rng.choice(ready_ids)])
        self.fail("settle did not converge")

    def up_nodes(self) -> list[SimNode]:
        return [sn for sn in self.nodes.values() if sn.node is not None]

    def leader(self) -> SimNode | None:
        """The leader of the highest term among live nodes (there may be stale ones)."""
        best, best_term = None, -1
        for sn in self.up_nodes():
            assert sn.node is not None
            if sn.node.role is Role.LEADER and sn.node.term > best_term:
                best, best_term = sn, sn.node.term
        return best

    def client_actions(self) -> None:
        p, rng = self.p, self.rng
        up = self.up_nodes()
        if not up:
            return
        if rng.random() < p.propose:
            target = self.leader() if rng.random() < 0.9 else rng.choice(up)
            if target is not None:
                self.propose(target, [self.data() for _ in range(rng.randint(1, 4))])
        if rng.random() < p.read:
            sn = rng.choice(up)
            self.counter += 1
            ctx = f"read-{self.counter}".encode()
            assert sn.node is not None
            try:
                sn.node.read_index(ctx)
            except NotLeaderError:
                pass
            else:
                self.reads[ctx] = (sn.id, len(self.committed))
                self.dirty.add(sn.id)
                self.log(f"read_index {sn.id} {ctx!r} min={len(self.committed)}")
        if rng.random() < p.transfer:
            ld = self.leader()
            if ld is not None and ld.node is not None:
                to = rng.choice(self.voters)
                self.log(f"transfer {ld.id} -> {to}")
                ld.node.transfer_leadership(to)
                self.stats["transfers"] += 1
                self.dirty.add(ld.id)
                self.check_node(ld)
        if rng.random() < p.snapshot:
            self.take_snapshot(rng.choice(up))
        if rng.random() < p.campaign:
            sn = rng.choice(up)
            assert sn.node is not None
            self.log(f"campaign {sn.id}")
            sn.node.campaign()
            self.dirty.add(sn.id)
            self.check_node(sn)

    def data(self) -> bytes:
        self.counter += 1
        return f"v{self.counter}".encode()

    def propose(self, sn: SimNode, data: list[bytes]) -> bool:
        assert sn.node is not None
        try:
            term, first, last = sn.node.propose(data)
        except (NotLeaderError, ProposalDroppedError) as exc:
            self.log(f"propose on {sn.id} refused: {exc}")
            return False
        if last - first + 1 != len(data) or term != sn.node.term:
            self.fail(f"propose returned {(term, first, last)} for {len(data)} entries")
        self.log(f"propose on {sn.id}: {first}..{last}")
        self.dirty.add(sn.id)
        self.check_node(sn)
        return True

    def take_snapshot(self, sn: SimNode) -> None:
        applied = len(sn.sm)
        st = sn.storage
        if applied <= st.snapshot().meta.index or applied > st.last_index():
            return
        key = f"snap-{sn.id}-{sn.incarnation}-{applied}-{self.now}".encode()
        self.snapshots[key] = tuple(sn.sm)
        st.create_snapshot(applied, self.voters, key)
        st.compact(max(st.first_index() - 1, applied - self.rng.randint(0, 5)))
        self.log(f"snapshot {sn.id} at {applied}, first index now {st.first_index()}")

    def chaos(self) -> None:
        p, rng = self.p, self.rng
        for sn in self.nodes.values():
            if sn.node is None and self.now >= sn.down_until:
                self.restart(sn)
            elif sn.node is not None and rng.random() < p.crash:
                self.crash(sn)
        if rng.random() < p.kill_leader:
            ld = self.leader()
            if ld is not None:
                self.crash(ld)
        if all(g == 0 for g in self.group.values()):
            ld = self.leader()
            if ld is not None and rng.random() < p.isolate_leader:
                others = [i for i in self.voters if i != ld.id]
                side = [ld.id] + rng.sample(others, rng.randint(0, (len(self.voters) - 1) // 2 - 1))
                self.group = {i: (1 if i in side else 0) for i in self.voters}
                self.log(f"ISOLATE leader {ld.id} with {sorted(side)}")
            elif rng.random() < p.partition:
                ids = list(self.voters)
                rng.shuffle(ids)
                cut = rng.randint(1, len(ids) - 1)
                self.group = {i: (0 if k < cut else 1) for k, i in enumerate(ids)}
                self.log(f"PARTITION {sorted(ids[:cut])} | {sorted(ids[cut:])}")
        elif rng.random() < p.heal:
            self.heal_partition()

    def heal_partition(self) -> None:
        self.group = {i: 0 for i in self.voters}
        self.log("HEAL")

    def tick_all(self) -> None:
        self.now += 1
        order = [sn for sn in self.nodes.values() if sn.node is not None]
        self.rng.shuffle(order)
        for sn in order:
            assert sn.node is not None
            sn.node.tick()
            self.dirty.add(sn.id)
            self.check_node(sn)

    def run(self) -> dict[str, int]:
        self.log(f"params {self.p}")
        for _ in range(CHAOS_TICKS):
            self.chaos()
            self.client_actions()
            self.tick_all()
            self.settle()
            if self.now % FULL_CHECK_EVERY == 0:
                self.full_check()
        self.check_liveness()
        self.full_check()
        return self.stats

    def check_liveness(self) -> None:
        # Heal everything: no partitions, no loss, every node up.
        self.heal_partition()
        p = self.p
        p.drop = p.dup = p.delay = p.crash = p.crash_step = p.crash_after_ready = p.kill_leader = 0.0
        p.depose_new = 0.0
        for sn in self.nodes.values():
            if sn.node is None:
                self.restart(sn)
        start = self.now
        marker = f"liveness-{self.seed}".encode()
        proposed_at: tuple[int, int] | None = None  # (leader, term) that accepted the marker
        while self.now - start < LIVENESS_TICKS:
            ld = self.leader()
            if ld is not None and ld.node is not None:
                # A client retries with each new leader: the old one may have lost it.
                if proposed_at != (ld.id, ld.node.term) and self.propose(ld, [marker]):
                    proposed_at = (ld.id, ld.node.term)
            self.tick_all()
            self.settle()
            if proposed_at and all(any(d == marker for _, d in sn.sm) for sn in self.nodes.values()):
                self.log(f"liveness reached after {self.now - start} ticks")
                return
        self.fail(
            f"liveness: no leader committed a proposal on every node within {LIVENESS_TICKS} "
            f"ticks after healing (accepted by {proposed_at})"
        )


def fmt(m: Message) -> str:
    s = f"{m.type.name} {m.sender}->{m.to} t{m.term}"
    if m.type in (MessageType.APPEND, MessageType.VOTE, MessageType.PRE_VOTE):
        s += f" i{m.index}/t{m.log_term}"
    if m.entries:
        s += f" ents[{m.entries[0].index}..{m.entries[-1].index}]"
    if m.commit:
        s += f" c{m.commit}"
    if m.type is MessageType.APPEND_RESPONSE:
        s += f" i{m.index}" + (f" REJECT hint{m.reject_hint}/t{m.log_term}" if m.reject else "")
    elif m.reject:
        s += " REJECT"
    if m.snapshot is not None:
        s += f" snap@{m.snapshot.meta.index}/t{m.snapshot.meta.term}"
    if m.context:
        s += f" ctx={m.context!r}"
    return s


def fmt_ready(rd: Ready) -> str:
    parts = []
    if rd.soft_state:
        parts.append(f"soft={rd.soft_state.role.value}/lead{rd.soft_state.leader_id}")
    if rd.hard_state:
        hs = rd.hard_state
        parts.append(f"hs=t{hs.term}/v{hs.vote}/c{hs.commit}")
    if rd.snapshot:
        parts.append(f"snap@{rd.snapshot.meta.index}")
    if rd.entries:
        parts.append(f"ents[{rd.entries[0].index}/t{rd.entries[0].term}..{rd.entries[-1].index}/t{rd.entries[-1].term}]")
    if rd.committed_entries:
        parts.append(f"apply[{rd.committed_entries[0].index}..{rd.committed_entries[-1].index}]")
    if rd.read_states:
        parts.append(f"reads={[(r.index, r.context) for r in rd.read_states]}")
    parts.append(f"msgs={len(rd.messages)}")
    return " ".join(parts)


def run(seed: int, nodes: int, verbose: bool = False, contract_checks: bool = True) -> dict[str, int]:
    return Sim(seed, nodes, verbose=verbose, contract_checks=contract_checks).run()


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.raft.sim", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--count", type=int, default=1, help="run seeds seed..seed+count-1")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the event trace")
    ap.add_argument("--no-contract-checks", action="store_true", help="only check Raft's safety invariants")
    args = ap.parse_args(argv)
    failed = 0
    for seed in range(args.seed, args.seed + args.count):
        try:
            stats = run(seed, args.nodes, verbose=args.verbose, contract_checks=not args.no_contract_checks)
        except SimulationFailure as exc:
            failed += 1
            out(f"FAIL seed {seed}: {exc}")
        else:
            out(f"ok seed {seed} nodes {args.nodes}: {stats}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
