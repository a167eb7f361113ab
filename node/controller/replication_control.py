"""ReplicationControlManager: topics, partitions, ISR changes and leader elections
(Kafka's name). Pure: each operation reads a MetadataImage and returns records.

Kafka's rules:

- A fenced broker leaves every ISR (unless it is the last member: an ISR is never
  emptied, so the last in-sync replica stays eligible when it returns) and gives up
  its leaderships to the first live ISR member in replica order.
- With no live ISR member, a live eligible leader replica (KIP-966 ELR) is elected
  (a clean election); with none either the partition goes offline (leader -1)
  rather than elect an out-of-sync replica, unless the topic enables unclean
  leader election.
- ELR: while the ISR is below min.insync.replicas the leader cannot advance the
  high watermark, so every replica that leaves the ISR then still holds every
  record below it. Each change recomputes the ELR as Kafka's
  PartitionChangeBuilder does: empty once the ISR is at min.insync.replicas again;
  otherwise (old ELR + old ISR) minus the new ISR (a member that rejoins the ISR
  leaves the ELR). An unclean election empties it, and a broker that registers a
  new incarnation leaves every ELR (we cannot tell a clean shutdown from a crash
  that lost unsynced records, so a restart counts as unclean).
- A leader changes its ISR only through AlterPartition, and only from the partition
  epoch it last saw, so a stale leader's request cannot undo a newer decision.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from raftlog.node.controller.configuration_control import ConfigurationControlManager
from raftlog.node.controller.result import ControllerResult, Record
from raftlog.node.metadata.image import (
    NO_LEADER,
    MetadataImage,
    PartitionRegistration,
    TopicImage,
    replayed,
)
from raftlog.errors import ErrorCode, KafkaError
from raftlog.status import error_info_to_pb
from raftlog.topic_config import TopicConfig, echo, effective_configs
from raftlog.v1 import admin_pb2, controller_pb2, metadata_pb2

MAX_TOPIC_NAME = 249  # Kafka's limit (255 minus room for a partition suffix)
# fullmatch, not match with "$": "$" also matches before a trailing newline ("t1\n").
_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]+")
MAX_PARTITIONS = 10_000


def new_topic_id() -> str:
    """A random topic id in Kafka's form: 16 random bytes, URL-safe base64, no padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def validate_topic_name(name: str) -> None:
    if not name:
        raise KafkaError(ErrorCode.INVALID_TOPIC, "topic name is empty")
    if name in (".", ".."):
        raise KafkaError(ErrorCode.INVALID_TOPIC, f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME:
        raise KafkaError(ErrorCode.INVALID_TOPIC, f"topic name is {len(name)} characters, over {MAX_TOPIC_NAME}")
    if not _LEGAL_NAME.fullmatch(name):
        raise KafkaError(
            ErrorCode.INVALID_TOPIC, f"topic name {name!r} has characters other than ASCII letters, digits, '.', '_', '-'"
        )


def topic_description(image: MetadataImage, topic: TopicImage) -> admin_pb2.TopicDescription:
    """The admin API's view of one topic."""
    return admin_pb2.TopicDescription(
        name=topic.name,
        topic_id=topic.topic_id,
        configs=effective_configs(image.configs.get(topic.name, {})),
        partitions=[
            admin_pb2.PartitionDescription(
                partition=pid,
                leader=part.leader,
                leader_epoch=part.leader_epoch,
                replicas=part.replicas,
                isr=part.isr,
                partition_epoch=part.partition_epoch,
                eligible_leader_replicas=part.elr,
            )
            for pid, part in sorted(topic.partitions.items())
        ],
    )


def existing_topic(image: MetadataImage, name: str) -> TopicImage:
    topic = image.topic_by_name(name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {echo(name)} does not exist")
    return topic


def place_replicas(image: MetadataImage, live: Sequence[int], partitions: int, rf: int) -> list[list[int]]:
    """Kafka's rack-unaware assignment: leaders round-robin from a start broker, and
    followers at a shift from the leader that grows every ``len(live)`` partitions,
    so replica sets vary and a dead broker's load spreads over all the others.
    The start is the broker leading the fewest partitions, so leaders stay even
    across topics too."""
    leaders: dict[int, int] = {b: 0 for b in live}
    for topic in image.topics.values():
        for part in topic.partitions.values():
            if part.leader in leaders:
                leaders[part.leader] += 1
    n = len(live)
    start = live.index(min(live, key=lambda b: (leaders[b], b)))
    shift = start
    placement = []
    for p in range(partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (start + p) % n
        replicas = [live[first]]
        for j in range(rf - 1):
            # Offsets 1 + (shift + j) % (n - 1) are distinct and never 0: no repeats.
            replicas.append(live[(first + 1 + (shift + j) % (n - 1)) % n])
        placement.append(replicas)
    return placement


def partition_change(
    topic_id: str,
    pid: int,
    leader: int | None = None,
    isr: Sequence[int] | None = None,
    elr: Sequence[int] | None = None,
) -> Record:
    """A PartitionChangeRecord that says only what changed (``None``: unchanged)."""
    change = metadata_pb2.PartitionChangeRecord(topic_id=topic_id, partition_id=pid)
    if leader is not None:
        change.leader = leader
    if isr is not None:
        change.isr.ids.extend(isr)
    if elr is not None:
        change.eligible_leader_replicas.SetInParent()
        change.eligible_leader_replicas.ids.extend(elr)
    return Record(partition_change=change)


def target_elr(
    part: PartitionRegistration, new_isr: Sequence[int], min_isr: int, *, clean: bool = True
) -> tuple[int, ...]:
    """The ELR after the ISR of ``part`` becomes ``new_isr`` (Kafka's
    PartitionChangeBuilder): empty at or above ``min_isr``; else the old ELR and old
    ISR, minus the new ISR; empty after an unclean election."""
    if len(new_isr) >= min_isr or not clean:
        return ()
    keep = (set(part.elr) | set(part.isr)) - set(new_isr)
    return tuple(b for b in part.replicas if b in keep)


@dataclass(frozen=True, slots=True)
class Election:
    """Who leads a partition next, and how the election was made."""

    leader: int
    isr: tuple[int, ...]
    clean: bool = True
    """False for an unclean election (an out-of-sync replica leads)."""


class ReplicationControlManager:
    """Topics, partitions, ISR and leadership decisions."""

    def __init__(self) -> None:
        self.configs = ConfigurationControlManager(min_isr_changed=self.handle_min_isr_changed)

    # ------------------------------------------------------------------ topics
    def create_topic(
        self, image: MetadataImage, request: admin_pb2.CreateTopicRequest, topic_id: str
    ) -> ControllerResult[admin_pb2.CreateTopicResponse]:
        """Create a topic with ``topic_id`` (randomness comes in as an argument, so the
        decision is reproducible). ``validate_only`` writes nothing."""
        name, partitions, rf = request.name, request.partitions, request.replication_factor
        validate_topic_name(name)
        if image.topic_by_name(name) is not None:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {echo(name)} already exists")
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"partitions must be 1..{MAX_PARTITIONS}, got {partitions}")
        live = image.live_brokers()
        if rf < 1 or rf > len(live):
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_FACTOR,
                f"replication factor {rf} must be between 1 and the {len(live)} live brokers",
            )
        config_records = self.configs.create_topic_configs(name, dict(request.configs), rf)
        records = [Record(topic=metadata_pb2.TopicRecord(name=name, topic_id=topic_id))]
        for pid, replicas in enumerate(place_replicas(image, live, partitions, rf)):
            records.append(
                Record(
                    partition=metadata_pb2.PartitionRecord(
                        topic_id=topic_id, partition_id=pid, replicas=replicas, isr=replicas,
                        leader=replicas[0], leader_epoch=0, partition_epoch=0,
                    )
                )
            )
        records += config_records
        if request.validate_only:
            return ControllerResult.of([], admin_pb2.CreateTopicResponse())
        after = replayed(image, records)
        topic = after.topics[topic_id]
        return ControllerResult.of(records, admin_pb2.CreateTopicResponse(topic=topic_description(after, topic)))

    def delete_topic(self, image: MetadataImage, name: str) -> ControllerResult[admin_pb2.DeleteTopicResponse]:
        topic = existing_topic(image, name)
        return ControllerResult.of(
            [Record(remove_topic=metadata_pb2.RemoveTopicRecord(topic_id=topic.topic_id))],
            admin_pb2.DeleteTopicResponse(),
        )

    # ------------------------------------------------------------------ ISR
    def alter_partition(
        self, image: MetadataImage, request: controller_pb2.AlterPartitionRequest
    ) -> ControllerResult[controller_pb2.AlterPartitionResponse]:
        """Partition leaders shrink or expand their ISR (Kafka's AlterPartition). Each
        item is decided on its own: a refused one carries its error in the response
        and does not fail the others."""
        records: list[Record] = []
        response = controller_pb2.AlterPartitionResponse()
        for item in request.partitions:
            result = response.partitions.add(topic_id=item.topic_id, partition=item.partition)
            try:
                change = self._alter_one(image, request.broker_id, request.broker_epoch, item)
            except KafkaError as exc:
                result.error.CopyFrom(error_info_to_pb(exc.info))
                change = None
            topic = image.topics.get(item.topic_id)
            part = None if topic is None else topic.partitions.get(item.partition)
            if part is None:
                continue
            if change is not None:
                records.append(change)
                part = part.merge(change.partition_change)
            result.leader = part.leader
            result.leader_epoch = part.leader_epoch
            result.isr.extend(part.isr)
            result.partition_epoch = part.partition_epoch
        return ControllerResult.of(records, response)

    def _alter_one(
        self, image: MetadataImage, broker_id: int, broker_epoch: int, item: controller_pb2.AlterPartitionItem
    ) -> Record | None:
        broker = image.brokers.get(broker_id)
        if broker is None or broker.broker_epoch != broker_epoch:
            raise KafkaError(ErrorCode.STALE_BROKER_EPOCH, f"broker {broker_id} epoch {broker_epoch} is not current")
        topic = image.topics.get(item.topic_id)
        part = None if topic is None else topic.partitions.get(item.partition)
        if topic is None or part is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no partition {item.topic_id}/{item.partition}")
        if part.leader != broker_id:
            raise KafkaError(
                ErrorCode.NOT_LEADER_OR_FOLLOWER, f"broker {broker_id} does not lead {topic.name}-{item.partition}"
            )
        if item.leader_epoch != part.leader_epoch:
            raise KafkaError(
                ErrorCode.FENCED_LEADER_EPOCH, f"leader epoch {item.leader_epoch} is not the current {part.leader_epoch}"
            )
        if item.partition_epoch != part.partition_epoch:
            raise KafkaError(
                ErrorCode.INVALID_UPDATE_VERSION,
                f"partition epoch {item.partition_epoch} is not the current {part.partition_epoch}",
            )
        isr = tuple(item.new_isr)
        if broker_id not in isr or len(set(isr)) != len(isr) or not set(isr) <= set(part.replicas):
            raise KafkaError(
                ErrorCode.INVALID_REQUEST, f"ISR {list(isr)} must be distinct replicas including the leader"
            )
        live = set(image.live_brokers())
        added = [b for b in isr if b not in part.isr and b not in live]
        if added:
            raise KafkaError(ErrorCode.INELIGIBLE_REPLICA, f"brokers {added} are fenced and cannot join the ISR")
        return self.change(image, topic, item.partition, part, isr=isr)

    # ------------------------------------------------------------------ elections
    def min_isr(self, image: MetadataImage, topic: TopicImage) -> int:
        return TopicConfig.of(image.configs.get(topic.name, {})).min_insync_replicas

    def change(
        self,
        image: MetadataImage,
        topic: TopicImage,
        pid: int,
        part: PartitionRegistration,
        *,
        leader: int | None = None,
        isr: Sequence[int] | None = None,
        clean: bool = True,
    ) -> Record | None:
        """The record that moves ``part`` to ``leader``/``isr`` (``None``: unchanged),
        with its ELR recomputed; ``None`` when nothing changes."""
        new_leader = part.leader if leader is None else leader
        new_isr = part.isr if isr is None else tuple(isr)
        new_elr = target_elr(part, new_isr, self.min_isr(image, topic), clean=clean)
        if (new_leader, new_isr, new_elr) == (part.leader, part.isr, part.elr):
            return None
        return partition_change(
            topic.topic_id,
            pid,
            new_leader if new_leader != part.leader else None,
            new_isr if new_isr != part.isr else None,
            new_elr if new_elr != part.elr else None,
        )

    def elect_leader(
        self, image: MetadataImage, topic: TopicImage, part: PartitionRegistration, live: set[int]
    ) -> Election:
        """The first live ISR member in replica order; else the first live eligible
        leader replica (a clean election: it holds every record below the high
        watermark), whose ISR restarts as just itself; else, only with unclean
        election, the first live replica; else no leader."""
        for broker in part.replicas:
            if broker in part.isr and broker in live:
                return Election(broker, part.isr)
        for broker in part.replicas:
            if broker in part.elr and broker in live:
                return Election(broker, (broker,))
        if _unclean(image, topic):
            for broker in part.replicas:
                if broker in live:
                    return Election(broker, (broker,), clean=False)
        return Election(NO_LEADER, part.isr)

    def handle_broker_fenced(self, image: MetadataImage, broker_id: int) -> list[Record]:
        """Partition changes once ``broker_id`` is fenced: it leaves every ISR (but never
        empties one) and its leaderships move by election."""
        live = set(image.live_brokers()) - {broker_id}
        records = []
        for topic, pid, part in _partitions(image):
            if broker_id not in part.isr and part.leader != broker_id:
                continue
            isr = tuple(b for b in part.isr if b != broker_id) or part.isr
            election = Election(part.leader, isr)
            if part.leader in (broker_id, NO_LEADER):
                shrunk = PartitionRegistration(part.replicas, isr, part.leader, 0, 0, part.elr)
                election = self.elect_leader(image, topic, shrunk, live)
            record = self.change(image, topic, pid, part, leader=election.leader, isr=election.isr,
                                 clean=election.clean)
            if record is not None:
                records.append(record)
        return records

    def handle_broker_unfenced(self, image: MetadataImage, broker_id: int) -> list[Record]:
        """Leaderless partitions whose ISR or ELR has ``broker_id`` (or, unclean, whose
        replica it is) get their leader back."""
        live = set(image.live_brokers()) | {broker_id}
        records = []
        for topic, pid, part in _partitions(image):
            if part.leader == NO_LEADER and broker_id in part.replicas:
                election = self.elect_leader(image, topic, part, live)
                if election.leader != NO_LEADER:
                    record = self.change(image, topic, pid, part, leader=election.leader, isr=election.isr,
                                         clean=election.clean)
                    if record is not None:
                        records.append(record)
        return records

    def handle_broker_restarted(self, image: MetadataImage, broker_id: int) -> list[Record]:
        """A new incarnation of ``broker_id`` registers: it leaves every ELR (its log
        may have lost records it had not synced before it stopped)."""
        records = []
        for topic, pid, part in _partitions(image):
            if broker_id in part.elr:
                elr = tuple(b for b in part.elr if b != broker_id)
                records.append(partition_change(topic.topic_id, pid, elr=elr))
        return records

    def handle_min_isr_changed(self, image: MetadataImage, topic_name: str) -> list[Record]:
        """After min.insync.replicas changed: an ISR now at or above it lets the high
        watermark advance again, so the ELR members are no longer provably caught up."""
        topic = image.topic_by_name(topic_name)
        if topic is None:
            return []
        min_isr = self.min_isr(image, topic)
        return [
            partition_change(topic.topic_id, pid, elr=())
            for pid, part in sorted(topic.partitions.items())
            if part.elr and len(part.isr) >= min_isr
        ]


def leads_anything(image: MetadataImage, broker_id: int) -> bool:
    return any(part.leader == broker_id for _, _, part in _partitions(image))


def _partitions(image: MetadataImage) -> Iterator[tuple[TopicImage, int, PartitionRegistration]]:
    for topic in image.topics.values():
        for pid, part in topic.partitions.items():
            yield topic, pid, part


def _unclean(image: MetadataImage, topic: TopicImage) -> bool:
    return TopicConfig.of(image.configs.get(topic.name, {})).unclean_leader_election_enable
