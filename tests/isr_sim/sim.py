"""Deterministic simulation of ISR partition replication and its controller.

Several brokers, each running the broker's real code for every replica it hosts —
``Partition`` (roles, HW, ISR, epochs, pending ISR changes, follower fetch states),
``PartitionLog`` with its epoch cache over an in-memory "disk" (``fakes.FakeDB``),
the fetcher's truncation and fetch decisions — plus a model of the active
controller that decides with the real pure functions of ``node/controller``
(AlterPartition, fencing and unfencing, clean and unclean election) and commits
records after a delay. A seeded scheduler drives it all with no wall clock.

Faults: controller commits that are delayed, time out and still commit, or are lost
on a controller failover (an uncommitted suffix; a prefix may survive); AlterPartition
requests delivered twice (the first answer wins; either may be the refusal of the
duplicate) and answers lost or late (the broker's call times out: outcome unknown);
metadata that reaches each broker late, batched or skipping images, and only once
the broker's registration is committed (as ``node/app.py``); broker crashes and
restarts (HW checkpoint and epoch cache reloaded from the fake disk, producer state
rebuilt from the log); brokers cut off from the controller or from each other
(zombie leaders keep taking produce requests); fetch and OffsetForLeaderEpoch calls
lost, delayed, reordered or timed out; clean elections on fencing and clean leader
moves that keep the old leader in the ISR; unclean elections (per-seed topic config);
retention moving the log start; the topic deleted and re-created while a broker is
down; idempotent producers (one request in flight) that retry, reroute and bump
their epoch on OUT_OF_ORDER_SEQUENCE_NUMBER.

After every step: HW within a leader epoch never decreases; a leader's HW never
exceeds the log end of any member of the controller's committed ISR; every committed
ISR change was decided on the partition epoch it applies to. Every few ticks and at
the end: every acks=all record is at its acknowledged offset in every later leader,
and what any leader had below its HW never changes (both without unclean elections); a follower that finished truncating is a prefix of its
leader and replicas agree below their HWs; epoch caches match the epochs stamped on
the batches; no duplicate or reordered producer sequences. Liveness after healing:
the ISR re-expands to every replica and every HW reaches the log end.

Everything derives from the seed; replay a failure with:

    python -m tests.isr_sim.sim --seed 1234 -v
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import logging
import random
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.broker.config import BrokerConfig
from raftlog.node.broker.partition import Partition, PendingIsrChange, Role, Transition, group_batches, validate_produce
from raftlog.node.broker.partition.epochs import leader_end_offset_for_epoch
from raftlog.node.broker.partition.follower import FollowerFetchState, TruncateFullyAndStartAt
from raftlog.node.broker.replica_manager import _UNKNOWN_OUTCOME
from raftlog.node.metadata.image import NO_LEADER, MetadataDelta, MetadataImage
from raftlog.records import build_batch, read_header
from raftlog.node.broker.replica_log import KafkaErrorsLog
from raftlog.storage.partition_log import PartitionLog
from raftlog.topic_config import TopicConfig
from raftlog.v1 import controller_pb2, metadata_pb2

from tests.unit import controller_ops as decisions
from tests.isr_sim.fakes import QUIET_LOGGER, FakeDB, SyncCommitter, run_sync

logger = logging.getLogger(__name__)

TICK_MS = 10
CHAOS_TICKS = 400
LIVENESS_TICKS = 300
FULL_CHECK_EVERY = 10
CONTROLLER = 0  # the controller's id on the simulated network
TOPIC = "t"
REPLICA_LAG_MS = 300
ALTER_TIMEOUT_TICKS = 8
PRODUCE_TIMEOUT_TICKS = 25
FETCH_TIMEOUT_TICKS = 6
SESSION_TICKS = 12
#: AlterPartition failures whose outcome is unknown: the broker retries them.
UNKNOWN_OUTCOME = _UNKNOWN_OUTCOME

Key = tuple[str, int]  # (topic id, partition)
Record = metadata_pb2.MetadataRecord


class SimulationFailure(AssertionError):
    pass


# ----------------------------------------------------------------- messages
@dataclass(frozen=True, slots=True)
class FetchRequest:
    src: int
    dst: int
    key: Key
    generation: int
    call: int
    """The follower's RPC number: an answer to a call it gave up on is dropped (as gRPC)."""
    fetch_offset: int
    current_leader_epoch: int
    broker_epoch: int
    max_bytes: int
    last_fetched_epoch: int | None


@dataclass(frozen=True, slots=True)
class FetchResponse:
    src: int
    dst: int
    key: Key
    generation: int
    call: int
    """The follower's RPC number: an answer to a call it gave up on is dropped (as gRPC)."""
    fetch_offset: int
    error: int
    message: str
    high_watermark: int
    log_start_offset: int
    records: bytes
    diverging: tuple[int, int] | None = None
    """The leader's DivergingEpoch (epoch, end offset) for a follower whose log diverges."""


@dataclass(frozen=True, slots=True)
class EpochRequest:
    src: int
    dst: int
    key: Key
    generation: int
    call: int
    """The follower's RPC number: an answer to a call it gave up on is dropped (as gRPC)."""
    current_leader_epoch: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class EpochResponse:
    src: int
    dst: int
    key: Key
    generation: int
    call: int
    """The follower's RPC number: an answer to a call it gave up on is dropped (as gRPC)."""
    asked: int
    error: int
    message: str
    leader_epoch: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class AlterRequest:
    src: int
    dst: int
    req_id: int
    broker_epoch: int
    key: Key
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlterResponse:
    src: int
    dst: int
    req_id: int
    error: ErrorCode | None
    partition_epoch: int


@dataclass(frozen=True, slots=True)
class ProduceRequest:
    src: int  # the producer's id (negative: producers are not brokers)
    dst: int
    req_id: int
    topic_id: str
    partition: int
    records: bytes


@dataclass(frozen=True, slots=True)
class ProduceResponse:
    src: int
    dst: int
    req_id: int
    error: ErrorCode | None
    base_offset: int
    leader_epoch: int


Message = FetchRequest | FetchResponse | EpochRequest | EpochResponse | AlterRequest | AlterResponse | \
    ProduceRequest | ProduceResponse


# ----------------------------------------------------------------- knobs
@dataclass
class Params:
    """Chaos knobs, drawn per seed so runs range from calm to hostile."""

    brokers: int
    partitions: int
    replication: int
    min_isr: int
    unclean: bool
    retention_bytes: int
    drop: float
    delay: float
    max_delay: int
    crash: float
    downtime: int
    cut: float  # per tick: cut a broker off (from the controller, or from everyone)
    heal: float
    meta_lag: float  # per tick per broker: metadata does not advance
    meta_skip: float  # metadata jumps several images at once
    slow_commit: float  # a controller commit takes longer than the AlterPartition timeout
    failover: float  # per tick: the controller fails over, losing an uncommitted suffix
    dup_alter: float  # an AlterPartition request is delivered twice
    produce: float
    producers: int
    recreate: float  # per tick while a broker is down: delete and re-create the topic
    move_leader: float  # per tick: a clean leader move to another live ISR member (preferred election)
    ckpt_every: int
    retention_every: int
    fetch_max_bytes: int

    @staticmethod
    def draw(rng: random.Random) -> Params:
        brokers = rng.choice([3, 3, 4, 5])
        replication = min(brokers, rng.choice([2, 3, 3]))
        harsh = rng.random() < 0.5
        return Params(
            brokers=brokers,
            partitions=rng.choice([1, 1, 2]),
            replication=replication,
            min_isr=rng.choice([1, 1, 2]) if replication > 2 else 1,
            unclean=rng.random() < 0.2,
            retention_bytes=rng.choice([-1, -1, 800, 2500]),
            drop=rng.choice([0.0, 0.02, 0.1 if harsh else 0.05]),
            delay=rng.choice([0.1, 0.3, 0.6]),
            max_delay=rng.randint(1, 4),
            crash=rng.choice([0.0, 0.005, 0.02 if harsh else 0.01]),
            downtime=rng.choice([5, 20, 40]),
            cut=rng.choice([0.0, 0.01, 0.03]),
            heal=rng.choice([0.05, 0.15]),
            meta_lag=rng.choice([0.0, 0.3, 0.7]),
            meta_skip=rng.choice([0.0, 0.3, 0.8]),
            slow_commit=rng.choice([0.0, 0.1, 0.4]),
            failover=rng.choice([0.0, 0.005, 0.02]),
            dup_alter=rng.choice([0.0, 0.1, 0.4]),
            produce=rng.choice([0.3, 0.6, 0.9]),
            producers=rng.randint(1, 3),
            recreate=rng.choice([0.0, 0.0, 0.02]),
            move_leader=rng.choice([0.0, 0.02, 0.08]),
            ckpt_every=rng.choice([1, 5, 20]),
            retention_every=rng.choice([5, 15]),
            fetch_max_bytes=rng.choice([1, 300, 1 << 20]),
        )


# ----------------------------------------------------------------- controller model
@dataclass
class Proposal:
    records: list[Record]
    commit_at: int
    decided_on: dict[Key, int]
    """Partition epoch each changed partition had in the image the decision saw."""
    waiters: list[tuple[int, int, int]] = field(default_factory=list)
    """(broker, request id, deadline tick) of AlterPartition calls answered at commit."""


class Controller:
    """The active controller: decisions by ``node.controller.partitions`` on the image
    of every record it proposed (Kafka's controller keeps uncommitted records in its
    in-memory state); ``decide_on_committed`` injects bug 2 (decisions on the
    committed image only)."""

    def __init__(self, sim: Sim, decide_on_committed: bool) -> None:
        self.sim = sim
        self.decide_on_committed = decide_on_committed
        self.committed: list[Record] = []
        self.images: list[MetadataImage] = [MetadataImage()]
        self.pending: deque[Proposal] = deque()
        self._decision_image: MetadataImage | None = None
        self.last_heartbeat: dict[int, int] = {}

    @property
    def image(self) -> MetadataImage:
        """The committed image."""
        return self.images[-1]

    def decision_image(self) -> MetadataImage:
        if self.decide_on_committed or not self.pending:
            return self.image
        if self._decision_image is None:
            delta = MetadataDelta(self.image)
            offset = len(self.committed)
            for proposal in self.pending:
                for record in proposal.records:
                    offset += 1
                    delta.replay(record, offset, 1)
            self._decision_image = delta.apply()
        return self._decision_image

    def propose(self, records: list[Record], image: MetadataImage, delay: int) -> Proposal:
        decided: dict[Key, int] = {}
        for r in records:
            if r.WhichOneof("record") == "partition_change":
                c = r.partition_change
                topic = image.topics.get(c.topic_id)
                part = None if topic is None else topic.partitions.get(c.partition_id)
                if part is not None:
                    decided.setdefault((c.topic_id, c.partition_id), part.partition_epoch)
        # Raft commits in log order: never before an earlier proposal.
        at = max([self.sim.now + delay] + [p.commit_at for p in self.pending])
        proposal = Proposal(records, at, decided)
        self.pending.append(proposal)
        self._decision_image = None
        self.sim.log(f"controller proposes {fmt_records(records)} commit@{at}")
        return proposal

    def commit_delay(self) -> int:
        if self.sim.rng.random() < self.sim.p.slow_commit:
            return self.sim.rng.randint(ALTER_TIMEOUT_TICKS, 3 * ALTER_TIMEOUT_TICKS)
        return self.sim.rng.randint(0, 3)

    def commit(self, proposal: Proposal) -> None:
        sim = self.sim
        delta = MetadataDelta(self.image)
        for record in proposal.records:
            kind = record.WhichOneof("record")
            if kind == "partition_change":
                c = record.partition_change
                key = (c.topic_id, c.partition_id)
                current = delta.apply().topics.get(c.topic_id)
                part = None if current is None else current.partitions.get(c.partition_id)
                decided = proposal.decided_on.get(key)
                if part is not None and decided is not None and decided != part.partition_epoch:
                    sim.fail(
                        f"partition change decided on the wrong partition epoch: {fmt_records([record])} was decided "
                        f"on partition epoch {decided} but applies to epoch {part.partition_epoch}"
                    )
                if part is not None and c.HasField("leader") and c.leader != NO_LEADER \
                        and c.leader not in part.isr:
                    sim.unclean_topics.add(c.topic_id)
                    sim.stats["unclean"] += 1
                    sim.log(f"UNCLEAN election of {c.leader} for {key}")
            if kind == "partition_change" and record.partition_change.HasField("isr"):
                sim.stats["isr_changes"] += 1
            self.committed.append(record)
            delta.replay(record, len(self.committed), 1)
            self.images.append(delta.apply())
            if kind == "partition_change":
                # One decision may change a partition twice (a restarted broker is
                # fenced out of the ISR, then leaves the ELR): the next record of the
                # same decision is decided on the epoch this one produced.
                c = record.partition_change
                after = self.images[-1].topics.get(c.topic_id)
                part_after = None if after is None else after.partitions.get(c.partition_id)
                if part_after is not None and (c.topic_id, c.partition_id) in proposal.decided_on:
                    proposal.decided_on[(c.topic_id, c.partition_id)] = part_after.partition_epoch
        self._decision_image = None
        sim.log(f"controller commits {fmt_records(proposal.records)} -> offset {len(self.committed)}")
        for broker, req_id, deadline in proposal.waiters:
            if sim.now <= deadline:
                self.answer_alter(broker, req_id, None)

    def answer_alter(self, broker: int, req_id: int, error: ErrorCode | None) -> None:
        pe = -1
        # The real controller answers from its image after the decision (partition epoch).
        item = self.sim.alter_keys.get(req_id)
        if item is not None:
            topic = self.image.topics.get(item[0])
            part = None if topic is None else topic.partitions.get(item[1])
            pe = -1 if part is None else part.partition_epoch
        self.sim.send(AlterResponse(CONTROLLER, broker, req_id, error, pe))

    def tick(self) -> None:
        sim, rng = self.sim, self.sim.rng
        if self.pending and rng.random() < sim.p.failover:
            keep = rng.randint(0, len(self.pending))
            sim.log(f"CONTROLLER FAILOVER: {keep} of {len(self.pending)} uncommitted proposals survive")
            sim.stats["failovers"] += 1
            survivors = [self.pending.popleft() for _ in range(keep)]
            lost, self.pending = list(self.pending), deque()
            self._decision_image = None
            for proposal in survivors:
                self.commit(proposal)
            for proposal in lost:
                for broker, req_id, deadline in proposal.waiters:
                    if sim.now <= deadline:
                        self.answer_alter(broker, req_id, ErrorCode.NOT_CONTROLLER)
        if rng.random() < sim.p.move_leader:
            self.move_leader()
        while self.pending and self.pending[0].commit_at <= sim.now:
            self.commit(self.pending.popleft())
        for proposal in self.pending:
            for broker, req_id, deadline in proposal.waiters:
                if deadline == sim.now:  # timed out; the proposal may still commit
                    sim.stats["alter_timed_out"] += 1
                    self.answer_alter(broker, req_id, ErrorCode.REQUEST_TIMED_OUT)
        self.sessions()

    def move_leader(self) -> None:
        """A clean election without fencing (Kafka's preferred-leader election or
        controlled shutdown): leadership moves to another live ISR member, and the
        old leader stays in the ISR."""
        image = self.decision_image()
        live = set(image.live_brokers())
        choices = [(topic.topic_id, pid, part) for topic in image.topics.values()
                   for pid, part in sorted(topic.partitions.items())
                   if part.leader != NO_LEADER and any(b != part.leader and b in live for b in part.isr)]
        if not choices:
            return
        topic_id, pid, part = self.sim.rng.choice(choices)
        new = self.sim.rng.choice([b for b in part.isr if b != part.leader and b in live])
        change = metadata_pb2.PartitionChangeRecord(topic_id=topic_id, partition_id=pid, leader=new)
        self.sim.log(f"MOVE leader of {pid} from {part.leader} to {new}")
        self.sim.stats["leader_moves"] += 1
        self.propose([Record(partition_change=change)], image, self.commit_delay())

    def sessions(self) -> None:
        """Registration, heartbeats, fencing and unfencing of brokers."""
        sim = self.sim
        for b in sim.brokers.values():
            if b.up and not sim.cut(b.id, CONTROLLER):
                self.last_heartbeat[b.id] = sim.now
            image = self.decision_image()
            reg = image.brokers.get(b.id)
            if b.up and not sim.cut(b.id, CONTROLLER):
                if reg is None or reg.incarnation_id != b.incarnation:
                    req = controller_pb2.RegisterBrokerRequest(
                        cluster_id="sim", broker_id=b.id, incarnation_id=b.incarnation,
                        endpoints=[metadata_pb2.Endpoint(name="INTERNAL", host=f"b{b.id}", port=9000 + b.id)],
                    )
                    records = decisions.register_broker(image, req)
                    if records:
                        self.propose(records, image, self.commit_delay())
                elif reg.fenced and b.image.offset >= reg.broker_epoch:
                    records = decisions.unfence_broker(image, b.id)
                    if records:
                        self.propose(records, image, self.commit_delay())
            elif reg is not None and not reg.fenced and sim.now - self.last_heartbeat.get(b.id, 0) > SESSION_TICKS:
                records = decisions.fence_broker(image, b.id)
                if records:
                    self.propose(records, image, self.commit_delay())

    def on_alter(self, m: AlterRequest) -> None:
        image = self.decision_image()
        try:
            records = decisions.alter_partition(image, m.src, m.broker_epoch, m.key[0], m.key[1],
                                                m.leader_epoch, m.partition_epoch, list(m.new_isr))
        except KafkaError as exc:
            self.sim.log(f"controller refuses AlterPartition #{m.req_id}: {exc.code.name}")
            self.sim.stats[f"alter_refused_{exc.code.name}"] += 1
            self.answer_alter(m.src, m.req_id, exc.code)
            return
        if not records:
            self.answer_alter(m.src, m.req_id, None)
            return
        proposal = self.propose(records, image, self.commit_delay())
        proposal.waiters.append((m.src, m.req_id, self.sim.now + ALTER_TIMEOUT_TICKS))

    def create_topic(self, image: MetadataImage) -> list[Record]:
        sim = self.sim
        topic_id = base64.urlsafe_b64encode(sim.rng.randbytes(16)).rstrip(b"=").decode()
        records = [Record(topic=metadata_pb2.TopicRecord(name=TOPIC, topic_id=topic_id))]
        ids = sorted(sim.brokers)
        for pid in range(sim.p.partitions):
            replicas = sim.rng.sample(ids, sim.p.replication)
            records.append(Record(partition=metadata_pb2.PartitionRecord(
                topic_id=topic_id, partition_id=pid, replicas=replicas, isr=replicas, leader=replicas[0],
                leader_epoch=0, partition_epoch=0)))
        configs = {"min.insync.replicas": str(sim.p.min_isr),
                   "unclean.leader.election.enable": "true" if sim.p.unclean else "false",
                   "retention.bytes": str(sim.p.retention_bytes)}
        for name, value in configs.items():
            records.append(Record(config=metadata_pb2.ConfigRecord(resource_name=TOPIC, name=name, value=value)))
        return records


# ----------------------------------------------------------------- brokers
@dataclass
class Follow:
    """One follower replica's fetch loop (the fetcher's ``FetchState``): the pure
    ``FollowerFetchState`` decisions plus the RPC in flight."""

    partition: Partition
    state: FollowerFetchState
    inflight_until: int = -1
    next_at: int = 0
    call: int = 0

    @property
    def current(self) -> bool:
        p = self.partition
        return p.role is Role.FOLLOWER and p.follower_generation == self.state.generation and not p.removed


@dataclass
class PendingProduce:
    partition: Partition
    leader_epoch: int
    required_hw: int
    base_offset: int
    request: ProduceRequest
    deadline: int
    min_isr: int


class Broker:
    def __init__(self, sim: Sim, broker_id: int) -> None:
        self.sim = sim
        self.id = broker_id
        self.db = FakeDB()
        self.committer = SyncCommitter(self.db, sim.loop)
        self.up = True
        self.registered = False
        self.incarnation = ""
        self.generation = 0
        self.down_until = 0
        self.image = MetadataImage()
        self.partitions: dict[Key, Partition] = {}
        self.follows: dict[Key, Follow] = {}
        self.alter_inflight: dict[int, tuple[int, list[tuple[Partition, PendingIsrChange]]]] = {}
        self.produces: list[PendingProduce] = []
        self.config = BrokerConfig(replica_lag_time_max_ms=REPLICA_LAG_MS, replica_fetch_backoff_ms=50)
        self.start()

    def start(self) -> None:
        self.up = True
        self.generation += 1
        self.incarnation = str(uuid.UUID(int=self.sim.rng.getrandbits(128), version=4))
        self.partitions, self.follows, self.alter_inflight, self.produces = {}, {}, {}, []
        # As node/app.py: replicas see metadata only once this incarnation's registration
        # is committed (and then an image at least that recent), never the stale local one.
        self.registered = False

    def crash(self) -> None:
        self.sim.log(f"CRASH broker {self.id}")
        self.sim.stats["crashes"] += 1
        self.up = False
        self.partitions, self.follows, self.alter_inflight, self.produces = {}, {}, {}, []
        self.down_until = self.sim.now + self.sim.rng.randint(1, self.sim.p.downtime)

    def broker_epoch(self) -> int:
        reg = self.image.brokers.get(self.id)
        return reg.broker_epoch if reg is not None else -1

    def open_log(self, key: Key) -> KafkaErrorsLog:
        # Wrapped as the replica manager wraps it: the broker sees Kafka errors.
        return KafkaErrorsLog(PartitionLog.open(self.db, key[0], key[1], committer=self.committer))  # type: ignore[arg-type]

    def log_end(self, key: Key) -> int:
        """The durable log end of this broker's replica, up or down."""
        p = self.partitions.get(key)
        if p is not None and not p.removed:
            return p.log_end_offset
        return self.open_log(key).log_end_offset

    # -- metadata (ReplicaManager._apply_image) ---------------------------------
    def on_metadata(self, image: MetadataImage) -> None:
        sim = self.sim
        self.image = image
        live = {b.broker_id: b.broker_epoch for b in image.brokers.values() if not b.fenced}
        seen: set[Key] = set()
        for topic in image.topics.values():
            config = TopicConfig.of(image.configs.get(topic.name, {}))
            for pid, reg in sorted(topic.partitions.items()):
                if self.id not in reg.replicas:
                    continue
                key = (topic.topic_id, pid)
                seen.add(key)
                p = self.partitions.get(key)
                if p is None:
                    p = Partition(self.id, topic.name, topic.topic_id, pid, self.open_log(key),
                                  replica_lag_time_max_ms=REPLICA_LAG_MS, clock=sim.clock)
                    p.logger = p.state.logger = QUIET_LOGGER
                    self.partitions[key] = p
                transition = p.apply_metadata(reg, config, live, f"b{reg.leader}")
                if transition is not Transition.NONE:
                    sim.log(f"broker {self.id} {key[1]}: {transition.value} epoch={p.leader_epoch} "
                            f"pe={p.partition_epoch} isr={list(p.isr)} leo={p.log_end_offset} hw={p.high_watermark}")
                if transition is Transition.BECAME_LEADER:
                    self.follows.pop(key, None)
                    run_sync(p.ensure_leader_ready())
                    sim.stats["leaders"] += 1
                    sim.check_acked(self, p)
                elif transition is Transition.BECAME_FOLLOWER:
                    self.follows[key] = Follow(p, FollowerFetchState(p.follower_generation))
                elif transition is Transition.BECAME_OFFLINE:
                    self.follows.pop(key, None)
        for key in [k for k in self.partitions if k not in seen]:
            p = self.partitions.pop(key)
            self.follows.pop(key, None)
            sim.log(f"broker {self.id} removes {key}")
            p.mark_removed()
            run_sync(p.log.delete())

    # -- ISR maintenance (ReplicaManager.maintain_isr) ----------------------------
    def maintain_isr(self) -> None:
        for key, p in sorted(self.partitions.items()):
            if not p.is_leader:
                continue
            change = p.resend_candidate() or p.prepare_isr_shrink() or p.prepare_isr_expansion()
            if change is not None:
                self.send_alter(p, change)

    def send_alter(self, p: Partition, change: PendingIsrChange) -> None:
        sim = self.sim
        sim.req_ids += 1
        req_id = sim.req_ids
        key = (p.topic_id, p.partition)
        sim.alter_keys[req_id] = key
        self.alter_inflight[req_id] = (sim.now + ALTER_TIMEOUT_TICKS + 2, [(p, change)])
        m = AlterRequest(self.id, CONTROLLER, req_id, max(0, self.broker_epoch()), key, change.leader_epoch,
                         change.partition_epoch, change.new_isr)
        sim.log(f"broker {self.id} AlterPartition #{req_id} {key[1]} pe={change.partition_epoch} "
                f"isr={list(p.isr)} -> {list(change.new_isr)}")
        sim.send(m)
        if sim.rng.random() < sim.p.dup_alter:
            sim.stats["alter_duplicated"] += 1
            sim.send(m)  # a transport-level retry: the controller sees the request twice

    def on_alter_response(self, m: AlterResponse) -> None:
        entry = self.alter_inflight.pop(m.req_id, None)
        if entry is None:
            return  # answered already (a duplicate request's answer, or timed out)
        unknown = m.error in UNKNOWN_OUTCOME
        for p, change in entry[1]:
            p.on_alter_partition_result(change, None if unknown else m.error, m.partition_epoch,
                                        transport_failed=unknown)

    # -- follower side (ReplicaFetcher, with the pure FollowerFetchState decisions) --
    def fetch_step(self, key: Key, f: Follow) -> None:
        sim = self.sim
        state, p = f.state, f.partition
        if not f.current or f.inflight_until >= sim.now or f.next_at > sim.now:
            return
        f.inflight_until = -1
        if state.needs_truncation:
            latest = state.epoch_to_query(p.log)
            if latest is None:
                action = state.truncation_without_epochs(p.log, p.high_watermark)
                if action is not None:
                    run_sync(p.truncate_to(action.offset, state.generation))
                sim.after_truncation(self, p)
                return
            f.inflight_until = sim.now + FETCH_TIMEOUT_TICKS
            f.call += 1
            sim.send(EpochRequest(self.id, p.leader_id, key, state.generation, f.call, p.leader_epoch, latest))
            return
        f.inflight_until = sim.now + FETCH_TIMEOUT_TICKS
        f.call += 1
        sim.send(FetchRequest(self.id, p.leader_id, key, state.generation, f.call, state.fetch_offset(p.log),
                              p.leader_epoch, max(0, self.broker_epoch()), sim.p.fetch_max_bytes,
                              state.last_fetched_epoch(p.log)))

    def _follow_for(self, key: Key, generation: int, call: int) -> Follow | None:
        f = self.follows.get(key)
        if f is None or f.state.generation != generation or not f.current or f.call != call or f.inflight_until < 0:
            return None
        return f

    def _backoff(self, f: Follow, before: float) -> None:
        if f.state.delayed_until_ms != before:
            f.next_at = self.sim.now + int(self.config.replica_fetch_backoff_ms // TICK_MS)

    def on_epoch_response(self, m: EpochResponse) -> None:
        f = self._follow_for(m.key, m.generation, m.call)
        if f is None:
            return
        f.inflight_until = -1
        state, p = f.state, f.partition
        before = state.delayed_until_ms
        if m.error:
            state.on_partition_error(m.error, self.sim.clock(), self.config.replica_fetch_backoff_ms)
        else:
            leo, latest = p.log_end_offset, p.log.latest_epoch()
            step = state.on_epoch_end(p.log, p.high_watermark, m.leader_epoch, m.end_offset)
            if run_sync(p.truncate_to(step.offset, state.generation)):
                state.after_truncation(step, leo, latest, p.log)
            self.sim.log(f"broker {self.id} {m.key[1]}: epoch check asked={m.asked} -> ({m.leader_epoch}, "
                         f"{m.end_offset}) cut {step.offset} leo {leo}->{p.log_end_offset} "
                         f"again={state.needs_truncation}")
            if not state.needs_truncation:
                self.sim.after_truncation(self, p)
        self._backoff(f, before)

    def on_fetch_response(self, m: FetchResponse) -> None:
        f = self._follow_for(m.key, m.generation, m.call)
        if f is None:
            return
        f.inflight_until = -1
        state, p = f.state, f.partition
        before, leo = state.delayed_until_ms, p.log_end_offset
        backoff = self.config.replica_fetch_backoff_ms
        if m.error == ErrorCode.OFFSET_OUT_OF_RANGE:
            action = state.on_out_of_range(m.fetch_offset, m.log_start_offset, m.high_watermark,
                                           self.sim.clock(), backoff)
            if isinstance(action, TruncateFullyAndStartAt):
                self.sim.stats["truncate_fully"] += 1
                run_sync(p.truncate_fully_and_start_at(action.offset, state.generation))
            elif action is not None:
                run_sync(p.truncate_to(action.offset, state.generation))
            if action is not None:
                self.sim.after_truncation(self, p)
        elif m.error:
            state.on_partition_error(m.error, self.sim.clock(), backoff)
        elif m.diverging is not None:
            latest = p.log.latest_epoch()
            step = state.on_diverging_epoch(p.log, p.high_watermark, *m.diverging)
            if run_sync(p.truncate_to(step.offset, state.generation)):
                if not state.after_truncation(step, leo, latest, p.log):
                    state.on_no_progress(self.sim.clock(), backoff)
            self.sim.stats["diverging_epoch"] += 1
            self.sim.log(f"broker {self.id} {m.key[1]}: fetch@{m.fetch_offset} DIVERGING {m.diverging} cut "
                         f"{step.offset} -> leo={p.log_end_offset} again={state.needs_truncation}")
            if not state.needs_truncation:
                self.sim.after_truncation(self, p)
        else:
            state.on_fetched()
            try:
                run_sync(p.append_as_follower(group_batches(m.records), state.generation, m.high_watermark))
            except KafkaError:
                state.on_append_mismatch()  # the data does not fit the log: find the divergence
        if m.error or p.log_end_offset != leo or state.delayed_until_ms != before:
            self.sim.log(f"broker {self.id} {m.key[1]}: fetch@{m.fetch_offset} "
                         f"{ErrorCode(m.error).name if m.error else 'ok'} -> leo={p.log_end_offset} "
                         f"hw={p.high_watermark} start={p.log_start_offset} truncate={state.needs_truncation}")
        self._backoff(f, before)

    # -- leader side (ReplicaManager.replica_fetch: the pure on_follower_fetch) ------
    def _leader_for(self, replica: int, key: Key, current_leader_epoch: int) -> Partition:
        p = self.partitions.get(key)
        if p is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"broker {self.id} has no {key}")
        p.require_leader(current_leader_epoch)
        if replica not in p.replicas or replica == self.id:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{replica} is not a follower")
        return p

    def on_fetch(self, m: FetchRequest) -> None:
        hw = start = -1
        records = b""
        try:
            p = self._leader_for(m.src, m.key, m.current_leader_epoch)
            start, hw = p.log_start_offset, p.high_watermark
            seen = p.on_follower_fetch(m.src, m.fetch_offset, m.last_fetched_epoch, m.broker_epoch)
            if seen.diverging_epoch is not None:
                # Not a log end it shares with the leader: counts toward neither HW nor ISR.
                self.sim.send(FetchResponse(self.id, m.src, m.key, m.generation, m.call, m.fetch_offset, 0, "", hw,
                                            start, b"", seen.diverging_epoch))
                return
            if seen.isr_change is not None:
                self.send_alter(p, seen.isr_change)
            hw = p.high_watermark
            records = p.log.read(m.fetch_offset, max(1, m.max_bytes), p.log_end_offset).records
        except KafkaError as exc:
            self.sim.send(FetchResponse(self.id, m.src, m.key, m.generation, m.call, m.fetch_offset, int(exc.code),
                                        exc.info.message, hw, start, b""))
            return
        self.sim.send(FetchResponse(self.id, m.src, m.key, m.generation, m.call, m.fetch_offset, 0, "", hw, start, records))

    def on_epoch(self, m: EpochRequest) -> None:
        try:
            p = self._leader_for(m.src, m.key, m.current_leader_epoch)
            epoch, end = leader_end_offset_for_epoch(p.log, p.leader_epoch, m.leader_epoch)
        except KafkaError as exc:
            self.sim.send(EpochResponse(self.id, m.src, m.key, m.generation, m.call, m.leader_epoch, int(exc.code),
                                        exc.info.message, -1, -1))
            return
        self.sim.send(EpochResponse(self.id, m.src, m.key, m.generation, m.call, m.leader_epoch, 0, "", epoch, end))

    # -- produce (ReplicaManager.produce, acks=all) ---------------------------------
    def on_produce(self, m: ProduceRequest) -> None:
        key = (m.topic_id, m.partition)
        p = self.partitions.get(key)
        try:
            if p is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no {key} on broker {self.id}")
            p.require_leader()
            batches = validate_produce(m.records, p.config.max_message_bytes)
            result = run_sync(p.append_as_leader(batches, -1))
        except KafkaError as exc:
            self.sim.send(ProduceResponse(self.id, m.src, m.req_id, exc.code, -1, -1))
            return
        self.sim.log(f"broker {self.id} {key[1]}: appended producer {-m.src} at {result.base_offset} "
                     f"(ack at hw>={result.required_hw}) leo={p.log_end_offset}")
        self.produces.append(PendingProduce(p, p.leader_epoch, result.required_hw, result.base_offset, m,
                                            self.sim.now + PRODUCE_TIMEOUT_TICKS, p.config.min_insync_replicas))

    def complete_produces(self) -> None:
        """Partition._complete_produce_waiters / wait_for_hw, answered over the network."""
        keep: list[PendingProduce] = []
        for w in self.produces:
            p, m = w.partition, w.request
            error: ErrorCode | None
            if p.removed or p.role is not Role.LEADER or p.leader_epoch != w.leader_epoch:
                error = ErrorCode.NOT_LEADER_OR_FOLLOWER
            elif p.high_watermark >= w.required_hw:
                error = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND if len(p.isr) < w.min_isr else None
            elif self.sim.now >= w.deadline:
                error = ErrorCode.REQUEST_TIMED_OUT
            else:
                keep.append(w)
                continue
            self.sim.send(ProduceResponse(self.id, m.src, m.req_id, error, w.base_offset, w.leader_epoch))
        self.produces = keep


# ----------------------------------------------------------------- producers
@dataclass
class Producer:
    """An idempotent producer with one request in flight (max.in.flight = 1)."""

    pid: int
    epoch: int = 0
    seqs: dict[int, int] = field(default_factory=dict)
    """Next sequence per partition (Kafka's sequences are per producer and partition)."""
    seq: int = 0
    """The in-flight batch's base sequence."""
    partition: int = 0
    topic_id: str = ""
    records: bytes = b""
    count: int = 0
    req_id: int = -1
    deadline: int = 0
    retry_at: int = 0


# ----------------------------------------------------------------- the simulation
@dataclass
class Ack:
    producer: int
    producer_epoch: int
    sequence: int
    leader_epoch: int


class Sim:
    def __init__(self, seed: int, verbose: bool = False, controller_bug: bool = False,
                 skip: frozenset[str] = frozenset()) -> None:
        self.seed = seed
        self.skip = skip
        """Names of checks not to run (to show that another check bites on its own)."""
        self.verbose = verbose
        self.controller_bug = controller_bug
        self.rng = random.Random(f"isrsim-{seed}")
        self.p = Params.draw(self.rng)
        self.loop = asyncio.new_event_loop()
        self.now = 0
        self.seq = 0
        self.req_ids = 0
        self.trace: deque[str] = deque(maxlen=80)
        self.inflight: list[tuple[int, int, Message]] = []
        self.group: dict[int, int] = {}
        self.unclean_topics: set[str] = set()
        self.acked: dict[tuple[str, int, int], Ack] = {}  # (topic id, partition, base offset)
        self.committed: dict[Key, dict[int, bytes]] = {}
        """Batches a leader has had below its HW (what consumers may have read), by offset."""
        self.hw_seen: dict[tuple[int, int, Key, int], int] = {}
        self.alter_keys: dict[int, Key] = {}
        self.recreated = False
        self.healing = False
        self.stats: collections.Counter[str] = collections.Counter()
        """What happened in this run: shows which faults and paths a seed exercised."""
        self.controller = Controller(self, controller_bug)
        self.brokers = {i: Broker(self, i) for i in range(1, self.p.brokers + 1)}
        self.group = {i: 0 for i in [CONTROLLER, *self.brokers]}
        self.producers = [Producer(pid=1000 + i) for i in range(self.p.producers)]
        # Bootstrap: register and unfence every broker, create the topic.
        c = self.controller
        c.sessions()
        for _ in range(3):
            while c.pending:
                c.commit(c.pending.popleft())
            for b in self.brokers.values():
                b.registered = True
                b.on_metadata(c.image)
            c.sessions()
        c.propose(c.create_topic(c.image), c.image, 0)
        c.commit(c.pending.popleft())
        for b in self.brokers.values():
            b.on_metadata(c.image)

    # ------------------------------------------------------------- plumbing
    def clock(self) -> float:
        return float(self.now * TICK_MS)

    def log(self, text: str) -> None:
        line = f"[t={self.now}] {text}"
        self.trace.append(line)
        if self.verbose:
            print(line)

    def fail(self, what: str) -> None:
        logger.info("ISR simulation seed %s failed at tick %s: %s", self.seed, self.now, what)
        tail = "\n".join(self.trace) if not self.verbose else ""
        states = []
        for b in self.brokers.values():
            if not b.up:
                states.append(f"  broker {b.id}: down")
                continue
            for key, p in sorted(b.partitions.items()):
                states.append(
                    f"  broker {b.id} {key[1]}: {p.role.value} epoch={p.leader_epoch} pe={p.partition_epoch} "
                    f"isr={list(p.isr)} leo={p.log_end_offset} hw={p.high_watermark} start={p.log_start_offset} "
                    f"epochs={[(e.epoch, e.start_offset) for e in p.log.epochs()]}"
                )
        raise SimulationFailure(
            f"{what} (seed={self.seed}, tick={self.now})\n"
            f"brokers:\n" + "\n".join(states) + f"\nlast events:\n{tail}\n"
            f"replay: python -m tests.isr_sim.sim --seed {self.seed} -v"
            + (" --controller-bug" if self.controller_bug else "")
            + "".join(f" --skip-check {c}" for c in sorted(self.skip))
        )

    def cut(self, a: int, b: int) -> bool:
        return self.group.get(a, 0) != self.group.get(b, 0)

    def send(self, m: Message) -> None:
        src = m.src if m.src >= 0 else None
        dst = m.dst if m.dst >= 0 else None
        if src is not None and dst is not None and self.cut(src, dst):
            return
        if not self.healing and self.rng.random() < self.p.drop:
            return
        delay = self.rng.randint(1, self.p.max_delay) if self.rng.random() < self.p.delay else 0
        self.seq += 1
        self.inflight.append((self.now + delay, self.seq, m))

    def deliver(self, m: Message) -> None:
        if m.dst < 0:
            self.on_producer_response(m)  # type: ignore[arg-type]
            return
        if m.dst == CONTROLLER:
            if self.cut(m.src, CONTROLLER):
                return
            assert isinstance(m, AlterRequest)
            self.controller.on_alter(m)
            return
        b = self.brokers[m.dst]
        if not b.up or (m.src >= 0 and self.cut(m.src, m.dst)):
            return
        if isinstance(m, FetchRequest):
            b.on_fetch(m)
        elif isinstance(m, FetchResponse):
            b.on_fetch_response(m)
        elif isinstance(m, EpochRequest):
            b.on_epoch(m)
        elif isinstance(m, EpochResponse):
            b.on_epoch_response(m)
        elif isinstance(m, AlterResponse):
            b.on_alter_response(m)
        elif isinstance(m, ProduceRequest):
            b.on_produce(m)
        b.complete_produces()

    # ------------------------------------------------------------- producers
    def topic_id(self) -> str | None:
        return self.controller.image.topic_ids.get(TOPIC)

    def producer_actions(self) -> None:
        rng = self.rng
        for pr in self.producers:
            if pr.req_id >= 0 and self.now < pr.deadline:
                continue
            if pr.req_id >= 0:
                self.log(f"producer {pr.pid} request #{pr.req_id} timed out; retrying")
                self.stats["produce_retries"] += 1
                pr.req_id = -1
                pr.retry_at = self.now
            if self.now < pr.retry_at:
                continue
            if not pr.records:
                if self.healing or rng.random() >= self.p.produce:
                    continue
                pr.partition = rng.randrange(self.p.partitions)
                pr.seq = pr.seqs.get(pr.partition, 0)
                pr.count = rng.randint(1, 3)
                pr.records = build_batch(
                    [(None, f"p{pr.pid}e{pr.epoch}s{pr.seq + i}".encode(), 1_000 + self.now) for i in range(pr.count)],
                    producer_id=pr.pid, producer_epoch=pr.epoch, base_sequence=pr.seq,
                )
            self.send_produce(pr)

    def send_produce(self, pr: Producer) -> None:
        topic_id = self.topic_id()
        if topic_id is None:
            return
        # The producer's metadata: usually current, sometimes a random broker's view.
        image = self.controller.image
        if self.rng.random() < 0.2:
            image = self.brokers[self.rng.choice(sorted(self.brokers))].image
        topic = image.topics.get(topic_id)
        reg = None if topic is None else topic.partitions.get(pr.partition)
        if reg is None or reg.leader == NO_LEADER:
            pr.retry_at = self.now + 2
            return
        self.req_ids += 1
        pr.req_id = self.req_ids
        pr.topic_id = topic_id
        pr.deadline = self.now + PRODUCE_TIMEOUT_TICKS + 5
        self.send(ProduceRequest(-pr.pid, reg.leader, pr.req_id, topic_id, pr.partition, pr.records))

    def on_producer_response(self, m: ProduceResponse) -> None:
        pr = next(x for x in self.producers if x.pid == -m.dst)
        if m.req_id != pr.req_id:
            return
        pr.req_id = -1
        if m.error is None:
            topic_id = pr.topic_id  # the topic incarnation the request went to
            key = (topic_id, pr.partition, m.base_offset)
            ack = Ack(pr.pid, pr.epoch, pr.seq, m.leader_epoch)
            prior = self.acked.get(key)
            if prior is not None and prior != ack and topic_id not in self.unclean_topics:
                self.fail(f"offset {m.base_offset} of partition {pr.partition} acknowledged twice: {prior} and {ack}")
            self.acked[key] = ack
            self.stats["acks"] += 1
            self.log(f"producer {pr.pid} ACK seq {pr.seq} at {m.base_offset} (leader epoch {m.leader_epoch})")
            pr.seqs[pr.partition] = pr.seq + pr.count
            pr.records = b""
            return
        self.log(f"producer {pr.pid} error {m.error.name}")
        self.stats[f"produce_{m.error.name}"] += 1
        if m.error in (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, ErrorCode.INVALID_PRODUCER_EPOCH):
            pr.epoch += 1  # start over with a bumped epoch, as Kafka's producer does
            pr.seqs = {}
            pr.records = b""
        pr.retry_at = self.now + 2

    # ------------------------------------------------------------- chaos
    def chaos(self) -> None:
        p, rng = self.p, self.rng
        for b in self.brokers.values():
            if not b.up and self.now >= b.down_until:
                self.log(f"RESTART broker {b.id}")
                b.start()
            elif b.up and rng.random() < p.crash:
                b.crash()
        if all(g == 0 for g in self.group.values()):
            if rng.random() < p.cut:
                victim = rng.choice(sorted(self.brokers))
                if rng.random() < 0.5:
                    self.group = {i: (1 if i == victim else 0) for i in self.group}
                    self.log(f"CUT broker {victim} off from everyone")
                else:
                    self.group = {i: (1 if i == CONTROLLER else 0) for i in self.group}
                    self.group[victim] = 1
                    self.log(f"CUT controller+{victim} from the other brokers")
        elif rng.random() < p.heal:
            self.group = {i: 0 for i in self.group}
            self.log("HEAL")
        if not self.recreated and rng.random() < p.recreate and any(not b.up for b in self.brokers.values()):
            self.recreate_topic()

    def recreate_topic(self) -> None:
        c = self.controller
        image = c.decision_image()
        old = image.topic_ids.get(TOPIC)
        if old is None:
            return
        self.recreated = True
        self.stats["recreated"] += 1
        self.log(f"DELETE and re-create topic {TOPIC} (old id {old})")
        records = [Record(remove_topic=metadata_pb2.RemoveTopicRecord(topic_id=old))] + c.create_topic(image)
        c.propose(records, image, c.commit_delay())

    def metadata(self) -> None:
        """Each broker's metadata: late, batched, or skipping images."""
        latest = len(self.controller.committed)
        for b in self.brokers.values():
            if not b.up or self.cut(b.id, CONTROLLER):
                continue
            if not b.registered:
                reg = self.controller.image.brokers.get(b.id)
                if reg is None or reg.incarnation_id != b.incarnation:
                    continue
                b.registered = True
                target = self.rng.randint(max(b.image.offset, reg.broker_epoch), latest)
                self.log(f"broker {b.id} registered; loads metadata at offset {target}")
                b.on_metadata(self.controller.images[target])
                self.check_step()
                continue
            if b.image.offset >= latest:
                continue
            if not self.healing and self.rng.random() < self.p.meta_lag:
                continue
            target = b.image.offset + 1
            if self.healing or self.rng.random() < self.p.meta_skip:
                target = self.rng.randint(target, latest) if not self.healing else latest
                self.stats["metadata_jumps"] += target > b.image.offset + 1
            b.on_metadata(self.controller.images[target])
            b.complete_produces()
            self.check_step()

    def tick(self) -> None:
        self.now += 1
        self.controller.tick()
        self.check_step()
        self.metadata()
        for b in self.brokers.values():
            if not b.up:
                continue
            for f in list(b.follows.values()):
                if self.now > f.inflight_until >= 0:
                    f.inflight_until = -1  # the RPC timed out: the fetcher tries again
            for req_id, (deadline, changes) in list(b.alter_inflight.items()):
                if self.now >= deadline:
                    del b.alter_inflight[req_id]
                    for p, change in changes:
                        p.on_alter_partition_result(change, None, -1, transport_failed=True)
            if (self.now + b.id) % (REPLICA_LAG_MS // TICK_MS // 2) == 0:
                b.maintain_isr()
            if self.now % self.p.ckpt_every == 0:
                for p in b.partitions.values():
                    run_sync(p.checkpoint_hw())
            if self.p.retention_bytes >= 0 and self.now % self.p.retention_every == 0:
                for p in b.partitions.values():
                    if run_sync(p.apply_retention(10_000_000)) > 0:
                        self.stats["retention"] += 1
            for key, f in sorted(b.follows.items()):
                b.fetch_step(key, f)
            b.complete_produces()
            self.check_step()
        self.producer_actions()
        self.settle()

    def settle(self) -> None:
        """Deliver every message due now, in random order (new ones due now too)."""
        for _ in range(100_000):
            due = [i for i, (at, _, _) in enumerate(self.inflight) if at <= self.now]
            if not due:
                return
            k = due[self.rng.randrange(len(due))]
            _, _, m = self.inflight[k]
            self.inflight[k] = self.inflight[-1]
            self.inflight.pop()
            self.deliver(m)
            self.check_step()
        self.fail("settle did not converge")

    # ------------------------------------------------------------- checks
    def check_step(self) -> None:
        """Cheap invariants, after every step."""
        image = self.controller.image
        for b in self.brokers.values():
            if not b.up:
                continue
            for key, p in b.partitions.items():
                if p.role is not Role.LEADER or p.removed:
                    continue
                # The HW never decreases within a leader epoch (of one broker incarnation).
                seen_key = (b.id, b.generation, key, p.leader_epoch)
                prev = self.hw_seen.get(seen_key, -1)
                if p.high_watermark < prev:
                    self.fail(f"broker {b.id} partition {key[1]}: HW moved back from {prev} to "
                              f"{p.high_watermark} in leader epoch {p.leader_epoch}")
                self.hw_seen[seen_key] = p.high_watermark
                # HW <= log end of every member of the controller's committed ISR.
                if "hw-isr" in self.skip:
                    continue
                topic = image.topics.get(key[0])
                reg = None if topic is None else topic.partitions.get(key[1])
                if reg is None or reg.leader != b.id or reg.leader_epoch != p.leader_epoch:
                    continue
                for member in reg.isr:
                    if member == b.id:
                        continue
                    leo = self.brokers[member].log_end(key)
                    if p.high_watermark > leo:
                        self.fail(
                            f"leader {b.id} of partition {key[1]} (epoch {p.leader_epoch}) has HW "
                            f"{p.high_watermark} above the log end {leo} of broker {member}, which the "
                            f"controller's committed ISR {list(reg.isr)} (partition epoch "
                            f"{reg.partition_epoch}) counts in sync; the leader's ISR is {list(p.isr)}, "
                            f"pending {p.pending_isr}"
                        )

    def batches(self, p: Partition) -> Iterator[tuple[int, bytes]]:
        """(base offset, bytes) of every stored batch of ``p``'s log."""
        log = p.log.storage  # type: ignore[attr-defined]
        prefix = log._prefix  # type: ignore[attr-defined]
        db = log._db  # type: ignore[attr-defined]
        for k, v in db.partition_batches.items(prefix, log._prefix_end):  # type: ignore[attr-defined]
            yield int.from_bytes(k[len(prefix):], "big"), v

    def check_acked(self, b: Broker, p: Partition) -> None:
        """Every acks=all record of this topic is at its offset in a leader of a later epoch."""
        if p.topic_id in self.unclean_topics or p.role is not Role.LEADER or "acked" in self.skip:
            return
        stored = None
        for (topic_id, pid, offset), ack in self.acked.items():
            if topic_id != p.topic_id or pid != p.partition or ack.leader_epoch > p.leader_epoch:
                continue
            if offset < p.log_start_offset:
                continue
            if stored is None:
                stored = dict(self.batches(p))
            value = stored.get(offset)
            h = None if value is None else read_header(value)
            if h is None or (h.producer_id, h.producer_epoch, h.base_sequence) != (
                    ack.producer, ack.producer_epoch, ack.sequence):
                self.fail(
                    f"acknowledged record lost: producer {ack.producer} seq {ack.sequence} acked at offset "
                    f"{offset} of partition {p.partition} in leader epoch {ack.leader_epoch}, but leader "
                    f"{b.id} of epoch {p.leader_epoch} has "
                    + ("nothing there" if h is None else
                       f"producer {h.producer_id} seq {h.base_sequence} (epoch {h.partition_leader_epoch})")
                )

    def check_committed(self, b: Broker, p: Partition) -> None:
        """What a leader has had below its HW (consumers may have read it) never changes
        under a later leader, unless an unclean election gave it up."""
        if p.topic_id in self.unclean_topics or "committed" in self.skip:
            return
        seen = self.committed.setdefault((p.topic_id, p.partition), {})
        for offset, value in self.batches(p):
            if read_header(value).next_offset > p.high_watermark:
                break
            prior = seen.setdefault(offset, value)
            if prior != value:
                self.fail(
                    f"committed data changed: leader {b.id} of partition {p.partition} (epoch {p.leader_epoch}) "
                    f"has a batch of epoch {read_header(value).partition_leader_epoch} at offset {offset} below "
                    f"its HW {p.high_watermark}; an earlier leader had one of epoch "
                    f"{read_header(prior).partition_leader_epoch} there below its HW"
                )

    def after_truncation(self, b: Broker, p: Partition) -> None:
        """A follower that finished truncating holds a prefix of its leader's log."""
        self.stats["truncations"] += 1
        leader = self.brokers.get(p.leader_id)
        if leader is None or not leader.up:
            return
        lp = leader.partitions.get((p.topic_id, p.partition))
        if lp is None or lp.role is not Role.LEADER or lp.leader_epoch != p.leader_epoch:
            return
        self.check_prefix(b, p, leader, lp)

    def check_prefix(self, b: Broker, p: Partition, leader: Broker, lp: Partition) -> None:
        if "prefix" in self.skip:
            return
        mine = dict(self.batches(p))
        theirs = dict(self.batches(lp))
        start = max(p.log_start_offset, lp.log_start_offset)
        for offset, value in sorted(mine.items()):
            if read_header(value).next_offset <= start:
                continue
            if theirs.get(offset) != value and offset >= lp.log_start_offset:
                other = theirs.get(offset)
                self.fail(
                    f"follower {b.id} of partition {p.partition} (epoch {p.leader_epoch}) finished truncating "
                    f"but its log is not a prefix of leader {leader.id}'s: at offset {offset} it has epoch "
                    f"{read_header(value).partition_leader_epoch}, the leader "
                    + ("nothing" if other is None else f"epoch {read_header(other).partition_leader_epoch}")
                    + f" (follower leo {p.log_end_offset} epochs {[(e.epoch, e.start_offset) for e in p.log.epochs()]},"
                    f" leader leo {lp.log_end_offset} epochs {[(e.epoch, e.start_offset) for e in lp.log.epochs()]})"
                )

    def check_epoch_cache(self, b: Broker, p: Partition) -> None:
        derived: list[tuple[int, int]] = []
        for offset, value in self.batches(p):
            e = read_header(value).partition_leader_epoch
            if not derived or e != derived[-1][0]:
                if derived and e < derived[-1][0]:
                    self.fail(f"broker {b.id} partition {p.partition}: batch epochs go back from "
                              f"{derived[-1][0]} to {e} at offset {offset}")
                derived.append((e, max(offset, p.log_start_offset)))
        cache = [(e.epoch, e.start_offset) for e in p.log.epochs()]
        # A leader assigns its epoch before its first append: a last entry at the log end.
        if cache and cache[-1][1] == p.log_end_offset and (not derived or cache[-1][0] > derived[-1][0]):
            cache = cache[:-1]
        if derived and cache and cache[0][1] == p.log_start_offset and derived[0][1] == p.log_start_offset:
            pass
        if cache != derived:
            self.fail(f"broker {b.id} partition {p.partition}: epoch cache {[(e.epoch, e.start_offset) for e in p.log.epochs()]} "
                      f"does not match the batches' epochs {derived} (log [{p.log_start_offset}, {p.log_end_offset}])")

    def check_sequences(self, b: Broker, p: Partition) -> None:
        last: dict[tuple[int, int], int] = {}
        clean = p.topic_id not in self.unclean_topics
        for offset, value in self.batches(p):
            h = read_header(value)
            if h.producer_id < 0:
                continue
            k = (h.producer_id, h.producer_epoch)
            prev = last.get(k)
            if prev is not None and (h.base_sequence <= prev or (clean and h.base_sequence != prev + 1)):
                self.fail(f"leader {b.id} partition {p.partition}: producer {h.producer_id} epoch "
                          f"{h.producer_epoch} sequence {h.base_sequence} at offset {offset} follows {prev} "
                          f"(duplicate or reordered)")
            last[k] = h.last_sequence

    def full_check(self) -> None:
        up = [b for b in self.brokers.values() if b.up]
        for b in up:
            for key, p in b.partitions.items():
                if p.removed:
                    continue
                if "epoch-cache" not in self.skip:
                    self.check_epoch_cache(b, p)
                if p.role is Role.LEADER:
                    self.check_sequences(b, p)
                    self.check_acked(b, p)
                    self.check_committed(b, p)
                f = b.follows.get(key)
                if p.role is Role.FOLLOWER and f is not None and f.current and not f.state.needs_truncation:
                    leader = self.brokers.get(p.leader_id)
                    lp = None if leader is None or not leader.up else leader.partitions.get(key)
                    if leader is not None and lp is not None and lp.role is Role.LEADER \
                            and lp.leader_epoch == p.leader_epoch:
                        self.check_prefix(b, p, leader, lp)
        # Replicas agree below their HWs (not after an unclean election, which may lose data).
        for i, a in enumerate(up):
            for c in up[i + 1:]:
                for key, pa in a.partitions.items():
                    pc = c.partitions.get(key)
                    if pc is None or key[0] in self.unclean_topics or pa.removed or pc.removed:
                        continue
                    below = min(pa.high_watermark, pc.high_watermark)
                    start = max(pa.log_start_offset, pc.log_start_offset)
                    ba, bc = dict(self.batches(pa)), dict(self.batches(pc))
                    for offset, value in ba.items():
                        h = read_header(value)
                        if h.next_offset <= start or h.next_offset > below or offset < start:
                            continue
                        if bc.get(offset) != value:
                            self.fail(f"brokers {a.id} and {c.id} differ below their HWs ({pa.high_watermark}, "
                                      f"{pc.high_watermark}) at offset {offset} of partition {key[1]}")

    # ------------------------------------------------------------- driver
    def run(self) -> collections.Counter[str]:
        self.log(f"params {self.p}" + (" CONTROLLER BUG: decisions on the committed image" if self.controller_bug
                                        else ""))
        try:
            for _ in range(CHAOS_TICKS):
                self.chaos()
                self.tick()
                if self.now % FULL_CHECK_EVERY == 0:
                    self.full_check()
            self.check_liveness()
            self.full_check()
        finally:
            self.loop.close()
        return self.stats

    def converged(self) -> str | None:
        """None once every partition has a leader, a full ISR, and HW == every log end."""
        image = self.controller.image
        if self.controller.pending:
            return "controller has uncommitted proposals"
        topic_id = image.topic_ids.get(TOPIC)
        if topic_id is None:
            return "no topic"
        for pid, reg in sorted(image.topics[topic_id].partitions.items()):
            key = (topic_id, pid)
            if reg.leader == NO_LEADER:
                return f"partition {pid} has no leader"
            if sorted(reg.isr) != sorted(reg.replicas):
                lp = self.brokers[reg.leader].partitions.get(key) if reg.leader != NO_LEADER else None
                return (f"partition {pid}: ISR {list(reg.isr)} of replicas {list(reg.replicas)}; leader "
                        f"{reg.leader} has pending ISR change {None if lp is None else lp.pending_isr}")
            leader = self.brokers[reg.leader]
            lp = leader.partitions.get(key)
            if lp is None or lp.role is not Role.LEADER or lp.leader_epoch != reg.leader_epoch:
                return f"partition {pid}: broker {reg.leader} does not lead epoch {reg.leader_epoch} yet"
            if lp.high_watermark != lp.log_end_offset:
                return f"partition {pid}: leader HW {lp.high_watermark} below its log end {lp.log_end_offset}"
            for r in reg.replicas:
                rp = self.brokers[r].partitions.get(key)
                if rp is None or rp.log_end_offset != lp.log_end_offset or rp.high_watermark != lp.high_watermark:
                    return (f"partition {pid}: replica {r} at leo/hw "
                            f"{None if rp is None else (rp.log_end_offset, rp.high_watermark)}, leader at "
                            f"{lp.log_end_offset}")
        return None

    def check_liveness(self) -> None:
        self.log("HEAL ALL: no faults from now on")
        self.healing = True
        p = self.p
        p.drop = p.crash = p.cut = p.failover = p.slow_commit = p.dup_alter = p.recreate = p.move_leader = 0.0
        p.max_delay = 1
        p.fetch_max_bytes = 1 << 20  # catch up in whole responses, not one batch a tick
        self.group = {i: 0 for i in self.group}
        for b in self.brokers.values():
            if not b.up:
                self.log(f"RESTART broker {b.id}")
                b.start()
        start = self.now
        why: str | None = "not started"
        while self.now - start < LIVENESS_TICKS:
            self.tick()
            if self.now % FULL_CHECK_EVERY == 0:
                self.full_check()
            why = self.converged()
            if why is None:
                self.log(f"converged after {self.now - start} ticks")
                # Replicas converge to the leader's log (also after an unclean election).
                image = self.controller.image
                topic_id = image.topic_ids[TOPIC]
                for pid, reg in image.topics[topic_id].partitions.items():
                    lp = self.brokers[reg.leader].partitions[(topic_id, pid)]
                    for r in reg.replicas:
                        if r != reg.leader:
                            self.check_prefix(self.brokers[r], self.brokers[r].partitions[(topic_id, pid)],
                                              self.brokers[reg.leader], lp)
                return
        self.fail(f"liveness: not converged {LIVENESS_TICKS} ticks after healing: {why}")


#: Checks that --skip-check can turn off.
CHECKS = frozenset({"epoch-cache", "hw-isr", "prefix", "acked", "committed"})


def fmt_records(records: list[Record]) -> str:
    out = []
    for r in records:
        kind = r.WhichOneof("record")
        if kind == "partition_change":
            c = r.partition_change
            s = f"change({c.partition_id}"
            if c.HasField("leader"):
                s += f" leader={c.leader}"
            if c.HasField("isr"):
                s += f" isr={list(c.isr.ids)}"
            out.append(s + ")")
        elif kind in ("fence_broker", "unfence_broker"):
            rec = getattr(r, kind)
            out.append(f"{kind.split('_')[0]}({rec.broker_id})")
        elif kind == "register_broker":
            out.append(f"register({r.register_broker.broker_id})")
        elif kind is not None:
            out.append(kind)
    return "[" + ", ".join(out) + "]"


def run(seed: int, verbose: bool = False, controller_bug: bool = False,
        skip: frozenset[str] = frozenset()) -> collections.Counter[str]:
    return Sim(seed, verbose=verbose, controller_bug=controller_bug, skip=skip).run()


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.isr_sim.sim",
                                 description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=1, help="run seeds seed..seed+count-1")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the event trace")
    ap.add_argument("--controller-bug", action="store_true",
                    help="inject bug 2: the controller decides on the committed image only")
    ap.add_argument("--skip-check", action="append", default=[], choices=sorted(CHECKS),
                    help="do not run this check (shows that the others bite on their own)")
    args = ap.parse_args(argv)
    failed = 0
    total: collections.Counter[str] = collections.Counter()
    for seed in range(args.seed, args.seed + args.count):
        try:
            stats = run(seed, verbose=args.verbose, controller_bug=args.controller_bug,
                        skip=frozenset(args.skip_check))
        except SimulationFailure as exc:
            failed += 1
            out(f"FAIL seed {seed}: {exc}")
        else:
            total.update(stats)
            out(f"ok seed {seed}: {dict(sorted(stats.items()))}")
    if args.count > 1:
        out(f"{args.count - failed} of {args.count} seeds passed; together: {dict(sorted(total.items()))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
