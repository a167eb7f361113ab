"""Deterministic simulation of a Raft cluster built from pure RaftNode cores.

The driver loop per node is ready() -> write to its disk and sync -> send ->
apply committed entries -> advance(), as node/raft_driver.py does it. Each node
has a ``SimDisk`` (tests/raft/disk.py) with a page cache: a process crash loses
the core's memory (unstable entries, a pending Ready) but keeps every write; a
power loss also loses writes not yet synced, and may tear the last one, which
recovery must discard. Power may fail in the middle of a Ready's write, for one
node or for the whole cluster at once.

A seeded scheduler drives N cores over an in-memory network that drops,
duplicates, delays, reorders and partitions messages, symmetric or one-way
(A->B cut while B->A delivers); a sender's queue may overflow and drop a burst,
reported to the core as the real transport does. Nodes crash and restart, lose
power, or *pause* (a GC pause, a frozen VM): a paused node gets no ticks and
handles nothing, maybe halfway through a Ready, while the others elect a new
leader; it resumes believing what it believed, its queued messages go out
late and what was sent to it arrives late. Clients propose, read (ReadIndex)
and transfer leadership; nodes snapshot and compact. Raft's safety invariants
are checked after every step, liveness once everything heals. Everything
derives from the seed, so a failure is replayed with:

    python -m tests.raft.sim --seed 1234 --nodes 5 -v

``--mutant NAME`` runs with a known bug injected (tests/raft/mutants.py), to show
the checks catch it; tests/raft/test_simulation.py replays one catching seed each.
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
    HardState,
    Message,
    MessageType,
    NotLeaderError,
    ProposalDroppedError,
    RaftNode,
    Ready,
    Role,
)
from raftlog.raft.storage import MemoryStorage
from tests.raft import mutants
from tests.raft.disk import SimDisk

#: After the network heals and every node is up, a leader must be elected and a
#: proposal applied on every node within this many ticks (election_tick = 10).
LIVENESS_TICKS = 120
#: Ticks of chaos per run.
CHAOS_TICKS = 200
#: A full pairwise log comparison every this many ticks (incremental checks run every step).
FULL_CHECK_EVERY = 25

ELECTION_TICK = 10
#: How much likelier a queue overflow is right behind a SNAPSHOT than behind any message.
SNAPSHOT_OVERFLOW_FACTOR = 30


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
    power_loss: float  # per node per tick: lose power (unsynced writes are lost)
    outage: float  # per tick: every node loses power at once
    power_loss_mid_write: float  # per synced write: power fails before the sync returns
    lazy_commit_sync: bool  # a commit-only hard state is written without a sync (etcd's MustSync)
    writeback: float  # per node per tick: the kernel writes the page cache back (a sync)
    oneway: float  # per tick: cut one direction of a link, or all of a node's in- or outbound
    pause: float  # per tick: pause a node (often the leader)
    pause_mid_ready: float  # per Ready: pause between its write and sending its messages
    pause_ticks: int  # max ticks a pause lasts (at least two election timeouts)
    overflow: float  # per send: the sender's queue to that peer overflows and drops a burst
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
            power_loss=rng.choice([0.0, 0.002, 0.005]),
            outage=rng.choice([0.0, 0.0, 0.005]),
            power_loss_mid_write=rng.choice([0.0, 0.005, 0.02]),
            lazy_commit_sync=rng.random() < 0.3,
            writeback=rng.choice([0.05, 0.2]),
            oneway=rng.choice([0.0, 0.0, 0.02, 0.05]),
            pause=rng.choice([0.0, 0.0, 0.01, 0.02]),
            pause_mid_ready=rng.choice([0.0, 0.001, 0.005]),
            pause_ticks=rng.choice([3, 5]) * ELECTION_TICK,
            overflow=rng.choice([0.0, 0.0, 0.003, 0.01]),
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
class InFlight:
    at: int  # tick at which it may be delivered
    seq: int
    msg: Message
    sender_incarnation: int  # transport reports go only to the node that sent it


@dataclass
class SimNode:
    id: int
    disk: SimDisk = field(default_factory=SimDisk)
    node: RaftNode | None = None
    incarnation: int = 0
    down_until: int = 0
    #: The state machine: applied (term, data) for indexes 1..len(sm).
    sm: list[tuple[int, bytes]] = field(default_factory=list)
    #: Entries up to this index were checked against the global committed log.
    verified: int = 0
    #: Carrying out a Ready: transport reports wait, as in the driver.
    busy: bool = False
    #: Paused (no ticks, nothing handled) until ``paused_until``.
    paused: bool = False
    paused_until: int = 0
    #: A Ready written but not yet sent/applied/advanced when the pause hit.
    frozen: Ready | None = None
    #: Messages that reached the paused node (its socket buffers), handled on resume.
    inbox: list[InFlight] = field(default_factory=list)
    #: Its own messages not yet on the wire when it paused (its transport queue).
    held: list[InFlight] = field(default_factory=list)
    #: Transport reports (kind, peer, ok) waiting for the node to be free.
    reports: list[tuple[str, int, bool]] = field(default_factory=list)
    #: Ticks this incarnation has received (its own clock: stops while paused).
    clock: int = 0
    #: peer -> (term, clock) of the last APPEND/HEARTBEAT_RESPONSE delivered from it.
    heard: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: (term, clock) since which it leads, or since a leadership transfer restarted its timer.
    leading_since: tuple[int, int] = (0, 0)

    @property
    def storage(self) -> MemoryStorage:
        """What the running node reads: durable state plus page cache."""
        return self.disk.storage

    def responsive(self) -> bool:
        return self.node is not None and not self.paused


class Sim:
    def __init__(
        self,
        seed: int,
        nodes: int,
        verbose: bool = False,
        contract_checks: bool = True,
        mutant: str | None = None,
    ) -> None:
        if mutant is not None and mutant not in mutants.MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; known: {sorted(mutants.MUTANTS)}")
        self.seed = seed
        self.n = nodes
        self.verbose = verbose
        self.contract_checks = contract_checks
        self.mutant = mutant
        self.rng = random.Random(f"raftsim-{seed}-{nodes}")
        self.p = Params.draw(self.rng)
        self.voters = tuple(range(1, nodes + 1))
        self.nodes = {i: SimNode(i) for i in self.voters}
        self.now = 0
        self.seq = 0
        self.current: list[InFlight] = []  # deliverable now, in any order
        self.future: list[InFlight] = []  # delayed
        self.group: dict[int, int] = {i: 0 for i in self.voters}  # partition groups
        self.oneway: set[tuple[int, int]] = set()  # (sender, receiver) links cut one way
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
        self.stats = {
            "commits": 0,
            "reads": 0,
            "snap_installs": 0,
            "transfers": 0,
            "crashes": 0,
            "leaders": 0,
            "power_losses": 0,
            "oneway_cuts": 0,
            "pauses": 0,
            "overflows": 0,
        }
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
            f"replay: {self.replay_command()}\n"
            f"nodes:\n{states}\nlast events:\n{tail}"
        )

    def replay_command(self) -> str:
        cmd = f"python -m tests.raft.sim --seed {self.seed} --nodes {self.n}"
        if self.mutant is not None:
            cmd += f" --mutant {self.mutant}"
        if not self.contract_checks:
            cmd += " --no-contract-checks"
        return cmd + " -v"

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
        """The process dies: its memory is gone, its disk (page cache too) stays."""
        self.log(f"CRASH {sn.id}")
        self.stats["crashes"] += 1
        self._stop(sn)

    def power_loss(self, sn: SimNode, why: str) -> None:
        """The machine loses power: the process dies and the disk keeps only what
        was synced (plus whatever the kernel happened to write back)."""
        outcome = sn.disk.power_loss(self.rng, trust_torn=self.mutant == "trust-torn-tail")
        self.log(f"POWER LOSS {sn.id} ({why}): {outcome.describe()}")
        self.stats["power_losses"] += 1
        self._stop(sn)

    def _stop(self, sn: SimNode) -> None:
        sn.node = None
        sn.down_until = self.now + self.rng.randint(1, self.p.downtime)
        # What the process held in memory dies with it (its transport queue too).
        sn.busy = sn.paused = False
        sn.frozen = None
        sn.inbox, sn.held, sn.reports = [], [], []
        sn.clock, sn.heard, sn.leading_since = 0, {}, (0, 0)
        self.dirty.discard(sn.id)

    def restart(self, sn: SimNode) -> None:
        self.log(f"RESTART {sn.id}")
        self._start(sn)

    def cut(self, sender: int, receiver: int) -> bool:
        return self.group[sender] != self.group[receiver] or (sender, receiver) in self.oneway

    # -------------------------------------------------------------- network
    def send(self, sender: SimNode, m: Message) -> None:
        p, rng = self.p, self.rng
        if p.overflow:
            # A snapshot is by far the largest message: the queue it sits in is
            # the one most likely to fill up behind it and drop it.
            chance = min(1.0, p.overflow * (SNAPSHOT_OVERFLOW_FACTOR if m.type is MessageType.SNAPSHOT else 1))
            if rng.random() < chance:
                self.overflow(sender, m)
                return
        copies = 2 if rng.random() < p.dup else 1
        for _ in range(copies):
            if self.cut(m.sender, m.to) or rng.random() < p.drop:
                self.log(f"drop {fmt(m)}")
                if m.type is MessageType.SNAPSHOT:
                    # The transport reports a failed snapshot send.
                    self.report(sender, "snapshot", m.to, False)
                elif rng.random() < 0.5:
                    self.report(sender, "unreachable", m.to, False)
                continue
            self.seq += 1
            item = InFlight(self.now, self.seq, m, sender.incarnation)
            if rng.random() < p.delay:
                item.at = self.now + rng.randint(1, p.max_delay)
                self.future.append(item)
            else:
                self.current.append(item)

    def overflow(self, sender: SimNode, m: Message) -> None:
        """The sender's queue to ``m.to`` overflows: node/transport.py drops the
        oldest messages; here ``m`` and everything still undelivered on that
        link go. Reported to the core like any lost batch (unless the mutant
        "silent-overflow" reproduces the transport before that fix)."""
        def on_link(x: InFlight) -> bool:
            return x.msg.sender == m.sender and x.msg.to == m.to and x.sender_incarnation == sender.incarnation

        dropped = [m] + [x.msg for x in self.current if on_link(x)] + [x.msg for x in self.future if on_link(x)]
        self.current = [x for x in self.current if not on_link(x)]
        self.future = [x for x in self.future if not on_link(x)]
        self.stats["overflows"] += 1
        more = ", ..." if len(dropped) > 3 else ""
        self.log(f"OVERFLOW {m.sender}->{m.to}: dropped {len(dropped)} ({', '.join(fmt(x) for x in dropped[:3])}{more})")
        if self.mutant == "silent-overflow":
            return
        self.report(sender, "unreachable", m.to, False)
        if any(x.type is MessageType.SNAPSHOT for x in dropped):
            self.report(sender, "snapshot", m.to, False)

    def report(self, sn: SimNode, kind: str, peer: int, ok: bool) -> None:
        """A transport report to ``sn``'s core; like RaftDriver._do, it waits
        while a Ready is being carried out (or the node is paused)."""
        if sn.node is None:
            return
        if sn.busy or sn.paused:
            sn.reports.append((kind, peer, ok))
            return
        if kind == "snapshot":
            sn.node.report_snapshot(peer, ok)
        else:
            sn.node.report_unreachable(peer)
        self.dirty.add(sn.id)
        self.check_node(sn)

    def drain_reports(self, sn: SimNode) -> None:
        reports, sn.reports = sn.reports, []
        for kind, peer, ok in reports:
            self.report(sn, kind, peer, ok)

    def deliver(self, item: InFlight) -> None:
        m = item.msg
        dst = self.nodes[m.to]
        src = self.nodes[m.sender]
        src_alive = src.node is not None and src.incarnation == item.sender_incarnation
        if dst.node is None or self.cut(m.sender, m.to):
            self.log(f"lost {fmt(m)}")
            if m.type is MessageType.SNAPSHOT and src_alive:
                self.report(src, "snapshot", m.to, False)
            return
        if dst.paused:
            # It sits in the paused node's socket buffers until it resumes.
            dst.inbox.append(item)
            return
        self.log(f"deliver {fmt(m)}")
        if m.type in (MessageType.APPEND_RESPONSE, MessageType.HEARTBEAT_RESPONSE):
            dst.heard[m.sender] = (m.term, dst.clock)
        dst.node.step(m)
        self.dirty.add(dst.id)
        self.check_node(dst)
        if m.type is MessageType.SNAPSHOT and src_alive:
            self.report(src, "snapshot", m.to, True)

    # ---------------------------------------------------------------- Ready
    def process_ready(self, sn: SimNode) -> None:
        node = sn.node
        assert node is not None
        rd = node.ready()
        self.log(f"ready {sn.id}: {fmt_ready(rd)}")
        if rd.entries:
            self.check_new_entries(sn, rd.entries)
        sn.busy = True
        if not self.write_ready(sn, rd):
            return  # power failed before the write was synced: nothing left the node
        if self.p.pause_mid_ready and self.rng.random() < self.p.pause_mid_ready:
            # Frozen between its write and its sends: it resumes with this Ready.
            sn.frozen = rd
            self.pause(sn, "between a Ready's write and its sends")
            return
        self.finish_ready(sn, rd)

    def write_ready(self, sn: SimNode, rd: Ready) -> bool:
        """The driver's persist step: write, then sync before anything is sent
        (RaftDriver: one synced WriteBatch). False if power failed meanwhile."""
        p = self.p
        if rd.must_sync():
            if self.mutant == "send-before-sync":
                sync = False  # NodeDB(sync=False): the kernel writes it back some time
            elif p.lazy_commit_sync and commit_only(rd, sn.storage.hard_state()):
                # etcd's MustSync: a lost commit index is learned again from the
                # leader, so it need not be synced (the next synced write covers it).
                sync = False
            else:
                sync = True
            if sync and p.power_loss_mid_write and self.rng.random() < p.power_loss_mid_write:
                sn.disk.persist(rd.hard_state, rd.snapshot, rd.entries, sync=False)
                self.power_loss(sn, "while writing a Ready, before its sync returned")
                return False
            sn.disk.persist(rd.hard_state, rd.snapshot, rd.entries, sync=sync)
        if self.contract_checks:
            self.check_persist_contract(sn, rd)
        return True

    def finish_ready(self, sn: SimNode, rd: Ready) -> None:
        """Send, apply, serve reads, advance: the rest of the driver's Ready cycle."""
        node = sn.node
        assert node is not None
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
        sn.busy = False
        self.check_node(sn)
        self.drain_reports(sn)
        if self.p.crash_after_ready and node.has_ready() and self.rng.random() < self.p.crash_after_ready:
            self.crash(sn)

    # ---------------------------------------------------------------- pauses
    def pause(self, sn: SimNode, why: str) -> None:
        """Freeze a node: no ticks, no messages handled, for a long stretch."""
        assert sn.node is not None
        sn.paused = True
        sn.paused_until = self.now + self.rng.randint(2 * ELECTION_TICK, self.p.pause_ticks)

        def mine(x: InFlight) -> bool:
            return x.msg.sender == sn.id and x.sender_incarnation == sn.incarnation

        # What it sent but the network has not delivered yet was still in its
        # transport queue, frozen with it: it goes out late, after the resume.
        sn.held = [x for x in self.current if mine(x)] + [x for x in self.future if mine(x)]
        self.current = [x for x in self.current if not mine(x)]
        self.future = [x for x in self.future if not mine(x)]
        self.dirty.discard(sn.id)
        self.stats["pauses"] += 1
        self.log(
            f"PAUSE {sn.id} ({sn.node.role.value} of term {sn.node.term}, {why}) "
            f"until t={sn.paused_until}, holding {len(sn.held)} outbound"
        )

    def resume(self, sn: SimNode) -> None:
        """The node runs again with the state it had: maybe still believing it
        leads. It finishes a frozen Ready, then its queued messages leave and
        the ones sent to it meanwhile arrive, all late."""
        assert sn.node is not None
        self.log(f"RESUME {sn.id} ({sn.node.role.value} of term {sn.node.term}), {len(sn.inbox)} inbound waiting")
        sn.paused = False
        if sn.frozen is not None:
            rd, sn.frozen = sn.frozen, None
            self.finish_ready(sn, rd)
            if sn.node is None:
                return  # crashed right after that Ready
        self.drain_reports(sn)
        for x in sn.held:
            x.at = self.now + self.rng.randint(0, self.p.max_delay)
        self.future.extend(sn.held)
        self.current.extend(sn.inbox)
        sn.held, sn.inbox = [], []
        self.dirty.add(sn.id)
        if sn.node.role is Role.LEADER:
            # A client that was waiting on the stale leader reads through it now.
            self.read(sn)

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
            if sn.leading_since[0] != node.term:
                sn.leading_since = (node.term, sn.clock)
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
        """Nothing leaves a node that depends on state not yet durable (synced):
        a power loss may take back anything else."""
        durable = sn.disk.durable()
        hs = durable.hard_state()
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
                st = durable
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
                i
                for i in sorted(self.dirty)
                if (n := self.nodes[i].node) is not None and not self.nodes[i].paused and n.has_ready()
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

    def responsive_nodes(self) -> list[SimNode]:
        """Up and not paused: the nodes a client can talk to."""
        return [sn for sn in self.nodes.values() if sn.responsive()]

    def leader(self, responsive: bool = False) -> SimNode | None:
        """The leader of the highest term among live nodes (there may be stale
        ones), among those not paused with ``responsive``."""
        best, best_term = None, -1
        for sn in self.responsive_nodes() if responsive else self.up_nodes():
            assert sn.node is not None
            if sn.node.role is Role.LEADER and sn.node.term > best_term:
                best, best_term = sn, sn.node.term
        return best

    def client_actions(self) -> None:
        p, rng = self.p, self.rng
        up = self.responsive_nodes()
        if not up:
            return
        if rng.random() < p.propose:
            target = self.leader(responsive=True) if rng.random() < 0.9 else rng.choice(up)
            if target is not None:
                self.propose(target, [self.data() for _ in range(rng.randint(1, 4))])
        if rng.random() < p.read:
            self.read(rng.choice(up))
        if rng.random() < p.transfer:
            ld = self.leader(responsive=True)
            if ld is not None and ld.node is not None:
                to = rng.choice(self.voters)
                self.log(f"transfer {ld.id} -> {to}")
                ld.node.transfer_leadership(to)
                if to != ld.id:
                    ld.leading_since = (ld.node.term, ld.clock)  # the core restarts its timer
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

    def read(self, sn: SimNode) -> None:
        """A linearizable read through ``sn``: whatever it answers must cover
        every entry committed before now."""
        assert sn.node is not None
        self.counter += 1
        ctx = f"read-{self.counter}".encode()
        try:
            sn.node.read_index(ctx)
        except NotLeaderError:
            return
        self.reads[ctx] = (sn.id, len(self.committed))
        self.dirty.add(sn.id)
        self.log(f"read_index {sn.id} {ctx!r} min={len(self.committed)}")
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
        # The driver's create_snapshot and compact are synced writes of their own.
        sync = self.mutant != "send-before-sync"
        sn.disk.create_snapshot(applied, self.voters, key, sync=sync)
        sn.disk.compact(max(st.first_index() - 1, applied - self.rng.randint(0, 5)), sync=sync)
        self.log(f"snapshot {sn.id} at {applied}, first index now {st.first_index()}")

    def chaos(self) -> None:
        p, rng = self.p, self.rng
        for sn in self.nodes.values():
            if sn.disk.unsynced and rng.random() < p.writeback:
                sn.disk.sync()  # the kernel wrote the dirty pages back (process up or not)
            if sn.node is None and self.now >= sn.down_until:
                self.restart(sn)
            elif sn.paused and self.now >= sn.paused_until:
                self.resume(sn)
            elif sn.node is not None and rng.random() < p.crash:
                self.crash(sn)
            elif sn.node is not None and p.power_loss and rng.random() < p.power_loss:
                self.power_loss(sn, "one machine")
        if p.outage and rng.random() < p.outage:
            self.log("OUTAGE: every machine loses power")
            for sn in self.up_nodes():
                self.power_loss(sn, "outage")
        if rng.random() < p.kill_leader:
            ld = self.leader()
            if ld is not None:
                self.crash(ld)
        if p.pause and rng.random() < p.pause:
            up = self.responsive_nodes()
            ld = self.leader(responsive=True)
            target = ld if ld is not None and rng.random() < 0.8 else (rng.choice(up) if up else None)
            if target is not None:
                self.pause(target, "chaos")
        if p.oneway and rng.random() < p.oneway:
            self.cut_one_way()
        elif self.oneway and rng.random() < p.heal:
            self.oneway = set()
            self.log("HEAL one-way cuts")
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

    def cut_one_way(self) -> None:
        """Cut one direction only: a link, everything a node sends ("mute": it
        still hears everyone), or everything it receives ("deaf": everyone
        still hears it). Often the leader's."""
        rng = self.rng
        ld = self.leader()
        a = ld.id if ld is not None and rng.random() < 0.5 else rng.choice(self.voters)
        others = [i for i in self.voters if i != a]
        kind = rng.choice(("link", "mute", "deaf"))
        if kind == "link":
            links = {(a, rng.choice(others))}
        elif kind == "mute":
            links = {(a, b) for b in others}
        else:
            links = {(b, a) for b in others}
        self.oneway |= links
        self.stats["oneway_cuts"] += 1
        self.log(f"ONE-WAY {kind} {a}: cut {sorted(links)}")

    def heal_partition(self) -> None:
        self.group = {i: 0 for i in self.voters}
        self.oneway = set()
        self.log("HEAL")

    def tick_all(self) -> None:
        self.now += 1
        order = self.responsive_nodes()
        self.rng.shuffle(order)
        for sn in order:
            assert sn.node is not None
            sn.node.tick()
            sn.clock += 1
            self.dirty.add(sn.id)
            self.check_node(sn)
            self.check_quorum_step_down(sn)

    def check_quorum_step_down(self, sn: SimNode) -> None:
        """With check_quorum, a leader that has not heard from a quorum for two
        election timeouts (of its own clock) has stepped down. Otherwise a leader
        that can send but not hear ("deaf", a one-way cut) keeps every follower
        in its lease with heartbeats, and the cluster is stuck while the cut lasts."""
        node = sn.node
        if node is None or node.role is not Role.LEADER or not self.p.check_quorum:
            return
        heard = sorted(
            (at for term, at in sn.heard.values() if term == node.term), reverse=True
        )
        need = len(self.voters) // 2  # peers that, with the leader itself, make a quorum
        last_quorum = heard[need - 1] if len(heard) >= need else 0
        since = max(sn.leading_since[1], last_quorum)
        if sn.clock - since > 2 * ELECTION_TICK:
            self.fail(
                f"check quorum: leader {sn.id} of term {node.term} still leads {sn.clock - since} ticks "
                f"after it last heard from a quorum"
            )

    def run(self) -> dict[str, int]:
        self.log(f"params {self.p}" + (f" MUTANT {self.mutant}" if self.mutant else ""))
        with mutants.applied(self.mutant):
            try:
                for _ in range(CHAOS_TICKS):
                    self.chaos()
                    self.client_actions()
                    self.tick_all()
                    self.settle()
                    if self.now % FULL_CHECK_EVERY == 0:
                        self.full_check()
                self.check_liveness()
                self.full_check()
            except SimulationFailure:
                raise
            except Exception as exc:
                # The core's own assertions (e.g. "commit beyond last index") and
                # storage contract errors fail the run too, with a replay line.
                self.fail(f"{type(exc).__name__}: {exc}")
        return self.stats

    def check_liveness(self) -> None:
        # Heal everything: no partitions, no loss, every node up.
        self.heal_partition()
        p = self.p
        p.drop = p.dup = p.delay = p.crash = p.crash_step = p.crash_after_ready = p.kill_leader = 0.0
        p.depose_new = p.power_loss = p.outage = p.power_loss_mid_write = 0.0
        p.oneway = p.pause = p.pause_mid_ready = p.overflow = 0.0
        for sn in self.nodes.values():
            if sn.node is None:
                self.restart(sn)
            elif sn.paused:
                self.resume(sn)
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


def commit_only(rd: Ready, stored: HardState) -> bool:
    """Whether the only durable change of ``rd`` is a higher commit index."""
    hs = rd.hard_state
    return (
        hs is not None
        and not rd.entries
        and rd.snapshot is None
        and (hs.term, hs.vote) == (stored.term, stored.vote)
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


def run(
    seed: int, nodes: int, verbose: bool = False, contract_checks: bool = True, mutant: str | None = None
) -> dict[str, int]:
    return Sim(seed, nodes, verbose=verbose, contract_checks=contract_checks, mutant=mutant).run()


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.raft.sim", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--count", type=int, default=1, help="run seeds seed..seed+count-1")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the event trace")
    ap.add_argument("--no-contract-checks", action="store_true", help="only check Raft's safety invariants")
    ap.add_argument(
        "--mutant",
        choices=sorted(mutants.MUTANTS),
        help="inject a known bug, to see the checks catch it: "
        + "; ".join(f"{k}: {v}" for k, v in sorted(mutants.MUTANTS.items())),
    )
    args = ap.parse_args(argv)
    failed = 0
    for seed in range(args.seed, args.seed + args.count):
        try:
            stats = run(
                seed,
                args.nodes,
                verbose=args.verbose,
                contract_checks=not args.no_contract_checks,
                mutant=args.mutant,
            )
        except SimulationFailure as exc:
            failed += 1
            out(f"FAIL seed {seed}: {exc}")
        else:
            out(f"ok seed {seed} nodes {args.nodes}: {stats}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
