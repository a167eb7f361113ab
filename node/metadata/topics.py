"""Topics and their partitions: TopicsImage and TopicsDelta (KRaft's names)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from raftlog.node.metadata._maps import FrozenMapping, frozen_map
from raftlog.v1 import metadata_pb2

NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    """One partition as the controller decided it (KRaft's PartitionRegistration)."""

    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    elr: tuple[int, ...] = ()
    """Eligible leader replicas (KIP-966): out of the ISR but holding every record
    below the high watermark, so a clean election may pick one."""

    def merge(self, change: metadata_pb2.PartitionChangeRecord) -> PartitionRegistration:
        """Apply a change record: unset fields stay; the partition epoch always moves on,
        the leader epoch when the leader changes (fencing the old leader's requests)."""
        leader = change.leader if change.HasField("leader") else self.leader
        isr = tuple(change.isr.ids) if change.HasField("isr") else self.isr
        elr = (
            tuple(change.eligible_leader_replicas.ids)
            if change.HasField("eligible_leader_replicas")
            else self.elr
        )
        return PartitionRegistration(
            replicas=self.replicas,
            isr=isr,
            leader=leader,
            leader_epoch=self.leader_epoch + (1 if leader != self.leader else 0),
            partition_epoch=self.partition_epoch + 1,
            elr=elr,
        )


    def to_record(self, topic_id: str, partition_id: int) -> metadata_pb2.PartitionRecord:
        return metadata_pb2.PartitionRecord(
            topic_id=topic_id,
            partition_id=partition_id,
            replicas=self.replicas,
            isr=self.isr,
            leader=self.leader,
            leader_epoch=self.leader_epoch,
            partition_epoch=self.partition_epoch,
            eligible_leader_replicas=self.elr,
        )


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: Mapping[int, PartitionRegistration]


class TopicsImage(FrozenMapping[str, TopicImage]):
    """Topics by topic id, and topic ids by name."""

    __slots__ = ("topic_ids",)

    def __init__(self, topics: Mapping[str, TopicImage] | None = None) -> None:
        super().__init__(topics)
        self.topic_ids: Mapping[str, str] = frozen_map({t.name: t.topic_id for t in self.values()})
        """Topic name -> topic id."""

    def by_name(self, name: str) -> TopicImage | None:
        topic_id = self.topic_ids.get(name)
        return None if topic_id is None else self.get(topic_id)

    def to_records(self) -> list[metadata_pb2.MetadataRecord]:
        records = []
        for topic in sorted(self.values(), key=lambda t: t.name):
            records.append(
                metadata_pb2.MetadataRecord(topic=metadata_pb2.TopicRecord(name=topic.name, topic_id=topic.topic_id))
            )
            for pid in sorted(topic.partitions):
                records.append(
                    metadata_pb2.MetadataRecord(partition=topic.partitions[pid].to_record(topic.topic_id, pid))
                )
        return records


class TopicsDelta:
    """Topic and partition changes over a TopicsImage."""

    def __init__(self, base: TopicsImage) -> None:
        self._base = base
        self._topics: dict[str, TopicImage] | None = None

    def _w(self) -> dict[str, TopicImage]:
        if self._topics is None:
            self._topics = dict(self._base)
        return self._topics

    def replay_topic(self, rec: metadata_pb2.TopicRecord) -> None:
        self._w()[rec.topic_id] = TopicImage(rec.name, rec.topic_id, frozen_map())

    def replay_remove(self, rec: metadata_pb2.RemoveTopicRecord) -> str | None:
        """Remove a topic; returns its name (None if it was not there)."""
        removed = self._w().pop(rec.topic_id, None)
        return None if removed is None else removed.name

    def replay_partition(self, rec: metadata_pb2.PartitionRecord) -> None:
        topics = self._w()
        topic = topics.get(rec.topic_id)
        if topic is None:
            return
        partitions = dict(topic.partitions)
        partitions[rec.partition_id] = PartitionRegistration(
            replicas=tuple(rec.replicas),
            isr=tuple(rec.isr),
            leader=rec.leader,
            leader_epoch=rec.leader_epoch,
            partition_epoch=rec.partition_epoch,
            elr=tuple(rec.eligible_leader_replicas),
        )
        topics[rec.topic_id] = replace(topic, partitions=frozen_map(partitions))

    def replay_change(self, rec: metadata_pb2.PartitionChangeRecord) -> None:
        topics = self._w()
        topic = topics.get(rec.topic_id)
        current = None if topic is None else topic.partitions.get(rec.partition_id)
        if topic is None or current is None:
            return  # the topic was deleted after the change was decided
        partitions = dict(topic.partitions)
        partitions[rec.partition_id] = current.merge(rec)
        topics[rec.topic_id] = replace(topic, partitions=frozen_map(partitions))

    def apply(self) -> TopicsImage:
        return self._base if self._topics is None else TopicsImage(self._topics)
