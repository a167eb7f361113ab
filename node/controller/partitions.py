"""Controller decisions about partition leadership and ISR (Kafka's rules).

- A fenced broker leaves every ISR (unless it is the last member: an ISR is never
  emptied, so the last in-sync replica stays eligible when it returns) and gives up
  its leaderships to the first live ISR member in replica order.
- With no live ISR member the partition goes offline (leader -1) rather than elect
  an out-of-sync replica, unless the topic enables unclean leader election.
- A leader changes its ISR only through AlterPartition, and only from the partition
  epoch it last saw, so a stale leader's request cannot undo a newer decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from raftlog.node.metadata.image import NO_LEADER, MetadataImage, PartitionRegistration, TopicImage
from raftlog.errors import ErrorCode, KafkaError
from raftlog.topic_config import TopicConfig
from raftlog.v1 import metadata_pb2

Record = metadata_pb2.MetadataRecord


def _partitions(image: MetadataImage) -> Iterator[tuple[TopicImage, int, PartitionRegistration]]:
    for topic in image.topics.values():
        for pid, part in topic.partitions.items():
            yield topic, pid, part


def _change(topic_id: str, pid: int, leader: int | None = None, isr: Sequence[int] | None = None) -> Record:
    change = metadata_pb2.PartitionChangeRecord(topic_id=topic_id, partition_id=pid)
    if leader is not None:
        change.leader = leader
    if isr is not None:
        change.isr.ids.extend(isr)
    return Record(partition_change=change)


def _unclean(image: MetadataImage, topic: TopicImage) -> bool:
    return TopicConfig.of(image.configs.get(topic.name, {})).unclean_leader_election_enable


def elect_leader(
    image: MetadataImage, topic: TopicImage, part: PartitionRegistration, live: set[int]
) -> tuple[int, tuple[int, ...]]:
    """(leader, isr) for a partition given the live brokers: the first live ISR member
    in replica order; else, only with unclean election, the first live replica (whose
    ISR then restarts as just itself)."""
    for broker in part.replicas:
        if broker in part.isr and broker in live:
            return broker, part.isr
    if _unclean(image, topic):
        for broker in part.replicas:
            if broker in live:
                return broker, (broker,)
    return NO_LEADER, part.isr


def fence_broker(image: MetadataImage, broker_id: int) -> list[Record]:
    """Fence a broker (session expired or its process died) and move its duties."""
    broker = image.brokers.get(broker_id)
    if broker is None or broker.fenced:
        return []
    records = [Record(fence_broker=metadata_pb2.FenceBrokerRecord(broker_id=broker_id, broker_epoch=broker.broker_epoch))]
    live = set(image.live_brokers()) - {broker_id}
    for topic, pid, part in _partitions(image):
        if broker_id not in part.isr and part.leader != broker_id:
            continue
        isr = tuple(b for b in part.isr if b != broker_id) or part.isr
        leader = part.leader
        if leader == broker_id or leader == NO_LEADER:
            leader, isr = elect_leader(image, topic, PartitionRegistration(part.replicas, isr, leader, 0, 0), live)
        if (leader, isr) != (part.leader, part.isr):
            records.append(
                _change(topic.topic_id, pid, leader if leader != part.leader else None, isr if isr != part.isr else None)
            )
    return records


def unfence_broker(image: MetadataImage, broker_id: int) -> list[Record]:
    """Unfence a broker that heartbeats again, and give leaderless partitions whose
    ISR it is in (or, unclean, whose replica it is) their leader back."""
    broker = image.brokers.get(broker_id)
    if broker is None or not broker.fenced:
        return []
    records = [
        Record(unfence_broker=metadata_pb2.UnfenceBrokerRecord(broker_id=broker_id, broker_epoch=broker.broker_epoch))
    ]
    live = set(image.live_brokers()) | {broker_id}
    for topic, pid, part in _partitions(image):
        if part.leader == NO_LEADER and broker_id in part.replicas:
            leader, isr = elect_leader(image, topic, part, live)
            if leader != NO_LEADER:
                records.append(_change(topic.topic_id, pid, leader, isr if isr != part.isr else None))
    return records


def alter_partition(
    image: MetadataImage,
    broker_id: int,
    broker_epoch: int,
    topic_id: str,
    partition_id: int,
    leader_epoch: int,
    partition_epoch: int,
    new_isr: Sequence[int],
) -> list[Record]:
    """A partition leader asks to shrink or expand its ISR (Kafka's AlterPartition)."""
    broker = image.brokers.get(broker_id)
    if broker is None or broker.broker_epoch != broker_epoch:
        raise KafkaError(ErrorCode.STALE_BROKER_EPOCH, f"broker {broker_id} epoch {broker_epoch} is not current")
    topic = image.topics.get(topic_id)
    part = None if topic is None else topic.partitions.get(partition_id)
    if topic is None or part is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"no partition {topic_id}/{partition_id}")
    if part.leader != broker_id:
        raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"broker {broker_id} does not lead {topic.name}-{partition_id}")
    if leader_epoch != part.leader_epoch:
        raise KafkaError(
            ErrorCode.FENCED_LEADER_EPOCH, f"leader epoch {leader_epoch} is not the current {part.leader_epoch}"
        )
    if partition_epoch != part.partition_epoch:
        raise KafkaError(
            ErrorCode.INVALID_UPDATE_VERSION,
            f"partition epoch {partition_epoch} is not the current {part.partition_epoch}",
        )
    isr = tuple(new_isr)
    if broker_id not in isr or len(set(isr)) != len(isr) or not set(isr) <= set(part.replicas):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"ISR {list(isr)} must be distinct replicas including the leader")
    live = set(image.live_brokers())
    added = [b for b in isr if b not in part.isr and b not in live]
    if added:
        raise KafkaError(ErrorCode.INELIGIBLE_REPLICA, f"brokers {added} are fenced and cannot join the ISR")
    if isr == part.isr:
        return []
    return [_change(topic_id, partition_id, isr=isr)]
