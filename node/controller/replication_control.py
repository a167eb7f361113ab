"""ReplicationControlManager: topics, partitions, ISR changes and leader elections
(Kafka's name). Pure: each operation reads a MetadataImage and returns records.

Kafka's rules:

- A fenced broker leaves every ISR (unless it is the last member: an ISR is never
  emptied, so the last in-sync replica stays eligible when it returns) and gives up
  its leaderships to the first live ISR member in replica order.
- With no live ISR member the partition goes offline (leader -1) rather than elect
  an out-of-sync replica, unless the topic enables unclean leader election.
- A leader changes its ISR only through AlterPartition, and only from the partition
  epoch it last saw, so a stale leader's request cannot undo a newer decision.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator, Sequence

from raftlog.node.controller.configuration_control import ConfigurationControlManager
from raftlog.node.controller.result import ControllerResult, Record
from raftlog.node.metadata.image import (
    NO_LEADER,
    MetadataDelta,
    MetadataImage,
    PartitionRegistration,
    TopicImage,
)
from raftlog.errors import ErrorCode, KafkaError
from raftlog.status import error_info_to_pb
from raftlog.topic_config import TopicConfig, effective_configs
from raftlog.v1 import admin_pb2, controller_pb2, metadata_pb2

MAX_TOPIC_NAME = 249  # Kafka's limit (255 minus room for a partition suffix)
_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
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
    if not _LEGAL_NAME.match(name):
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
            )
            for pid, part in sorted(topic.partitions.items())
        ],
    )


def existing_topic(image: MetadataImage, name: str) -> TopicImage:
    topic = image.topic_by_name(name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
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
    topic_id: str, pid: int, leader: int | None = None, isr: Sequence[int] | None = None
) -> Record:
    """A PartitionChangeRecord that says only what changed (``None``: unchanged)."""
    change = metadata_pb2.PartitionChangeRecord(topic_id=topic_id, partition_id=pid)
    if leader is not None:
        change.leader = leader
    if isr is not None:
        change.isr.ids.extend(isr)
    return Record(partition_change=change)


class ReplicationControlManager:
    """Topics, partitions, ISR and leadership decisions."""

    def __init__(self, configs: ConfigurationControlManager | None = None) -> None:
        self.configs = configs if configs is not None else ConfigurationControlManager()

    # ------------------------------------------------------------------ topics
    def create_topic(
        self, image: MetadataImage, request: admin_pb2.CreateTopicRequest, topic_id: str
    ) -> ControllerResult[admin_pb2.CreateTopicResponse]:
        """Create a topic with ``topic_id`` (randomness comes in as an argument, so the
        decision is reproducible). ``validate_only`` writes nothing."""
        name, partitions, rf = request.name, request.partitions, request.replication_factor
        validate_topic_name(name)
        if image.topic_by_name(name) is not None:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
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
        after = _replayed(image, records)
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
        if isr == part.isr:
            return None
        return partition_change(item.topic_id, item.partition, isr=isr)

    # ------------------------------------------------------------------ elections
    def elect_leader(
        self, image: MetadataImage, topic: TopicImage, part: PartitionRegistration, live: set[int]
    ) -> tuple[int, tuple[int, ...]]:
        """(leader, isr) given the live brokers: the first live ISR member in replica
        order; else, only with unclean election, the first live replica (whose ISR
        then restarts as just itself); else no leader."""
        for broker in part.replicas:
            if broker in part.isr and broker in live:
                return broker, part.isr
        if _unclean(image, topic):
            for broker in part.replicas:
                if broker in live:
                    return broker, (broker,)
        return NO_LEADER, part.isr

    def handle_broker_fenced(self, image: MetadataImage, broker_id: int) -> list[Record]:
        """Partition changes once ``broker_id`` is fenced: it leaves every ISR (but never
        empties one) and its leaderships move to live ISR members."""
        live = set(image.live_brokers()) - {broker_id}
        records = []
        for topic, pid, part in _partitions(image):
            if broker_id not in part.isr and part.leader != broker_id:
                continue
            isr = tuple(b for b in part.isr if b != broker_id) or part.isr
            leader = part.leader
            if leader in (broker_id, NO_LEADER):
                leader, isr = self.elect_leader(image, topic, PartitionRegistration(part.replicas, isr, leader, 0, 0), live)
            if (leader, isr) != (part.leader, part.isr):
                records.append(
                    partition_change(
                        topic.topic_id, pid, leader if leader != part.leader else None, isr if isr != part.isr else None
                    )
                )
        return records

    def handle_broker_unfenced(self, image: MetadataImage, broker_id: int) -> list[Record]:
        """Leaderless partitions whose ISR has ``broker_id`` (or, unclean, whose replica
        it is) get their leader back."""
        live = set(image.live_brokers()) | {broker_id}
        records = []
        for topic, pid, part in _partitions(image):
            if part.leader == NO_LEADER and broker_id in part.replicas:
                leader, isr = self.elect_leader(image, topic, part, live)
                if leader != NO_LEADER:
                    records.append(partition_change(topic.topic_id, pid, leader, isr if isr != part.isr else None))
        return records


def leads_anything(image: MetadataImage, broker_id: int) -> bool:
    return any(part.leader == broker_id for _, _, part in _partitions(image))


def _partitions(image: MetadataImage) -> Iterator[tuple[TopicImage, int, PartitionRegistration]]:
    for topic in image.topics.values():
        for pid, part in topic.partitions.items():
            yield topic, pid, part


def _unclean(image: MetadataImage, topic: TopicImage) -> bool:
    return TopicConfig.of(image.configs.get(topic.name, {})).unclean_leader_election_enable


def _replayed(image: MetadataImage, records: Sequence[Record]) -> MetadataImage:
    """``image`` with ``records`` applied (offsets do not matter for what callers read)."""
    delta = MetadataDelta(image)
    for record in records:
        delta.replay(record, offset=image.offset, epoch=image.epoch)
    return delta.apply()


