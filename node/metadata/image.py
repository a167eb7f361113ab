"""MetadataImage: the immutable view of cluster metadata every node applies.

KRaft's idea: committed records are replayed into a ``MetadataDelta`` over the
current image, and ``apply()`` yields the next image. This is the only way
metadata changes — on the leader, on followers, and when a snapshot loads — so
readers always see one consistent image and no second code path can drift.

The image is one image per domain, each with its delta (KRaft's layout):
brokers (cluster.py), features (features.py), topics and partitions (topics.py),
configs (configs.py), producer ids (producer_ids.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from raftlog.node.metadata.cluster import BrokerRegistration, ClusterDelta, ClusterImage, Endpoint
from raftlog.node.metadata.configs import ConfigurationsDelta, ConfigurationsImage
from raftlog.node.metadata.features import FeaturesDelta, FeaturesImage
from raftlog.node.metadata.producer_ids import ProducerIdsDelta, ProducerIdsImage
from raftlog.node.metadata.topics import NO_LEADER, PartitionRegistration, TopicImage, TopicsDelta, TopicsImage
from raftlog.v1 import metadata_pb2

__all__ = [
    "NO_LEADER",
    "BrokerRegistration",
    "Endpoint",
    "MetadataDelta",
    "MetadataImage",
    "PartitionRegistration",
    "TopicImage",
    "replayed",
]


@dataclass(frozen=True, slots=True)
class MetadataImage:
    offset: int = 0
    """Raft index of the last record applied (KRaft's metadata offset)."""
    epoch: int = 0
    """Raft term of that record."""
    brokers: ClusterImage = field(default_factory=ClusterImage)
    """Registered brokers by id."""
    features: FeaturesImage = field(default_factory=FeaturesImage)
    topics: TopicsImage = field(default_factory=TopicsImage)
    """Topics by topic id."""
    configs: ConfigurationsImage = field(default_factory=ConfigurationsImage)
    """Topic name -> the configs set on it (defaults are not stored)."""
    producer_ids: ProducerIdsImage = field(default_factory=ProducerIdsImage)

    @property
    def topic_ids(self) -> Mapping[str, str]:
        """Topic name -> topic id."""
        return self.topics.topic_ids

    @property
    def next_producer_id(self) -> int:
        return self.producer_ids.next_producer_id

    def topic_by_name(self, name: str) -> TopicImage | None:
        return self.topics.by_name(name)

    def live_brokers(self) -> list[int]:
        """Registered, unfenced broker ids, sorted."""
        return self.brokers.live_brokers()

    def to_snapshot(self) -> metadata_pb2.MetadataSnapshot:
        """The records that rebuild this image (KRaft snapshots are records too)."""
        snap = metadata_pb2.MetadataSnapshot(offset=self.offset, epoch=self.epoch)
        for domain in (self.brokers, self.features, self.topics, self.configs, self.producer_ids):
            snap.records.extend(domain.to_records())
        for broker in sorted(self.brokers.values(), key=lambda b: b.broker_id):
            snap.broker_epochs.append(
                metadata_pb2.BrokerEpoch(broker_id=broker.broker_id, broker_epoch=broker.broker_epoch)
            )
        return snap

    @classmethod
    def from_snapshot(cls, snap: metadata_pb2.MetadataSnapshot) -> MetadataImage:
        delta = MetadataDelta(cls())
        for record in snap.records:
            delta.replay(record, offset=snap.offset, epoch=snap.epoch)
        for epoch in snap.broker_epochs:
            delta.cluster.set_epoch(epoch.broker_id, epoch.broker_epoch)
        return delta.apply()


class MetadataDelta:
    """Changes accumulated over a base image, one delta per domain; ``apply()`` makes
    the next image (an unchanged domain keeps its image, shared)."""

    def __init__(self, base: MetadataImage) -> None:
        self._base = base
        self._offset = base.offset
        self._epoch = base.epoch
        self.cluster = ClusterDelta(base.brokers)
        self.features = FeaturesDelta(base.features)
        self.topics = TopicsDelta(base.topics)
        self.configs = ConfigurationsDelta(base.configs)
        self.producer_ids = ProducerIdsDelta(base.producer_ids)

    def advance(self, offset: int, epoch: int) -> None:
        """Move the offset past an entry that carries no record (a Raft no-op)."""
        self._offset = max(self._offset, offset)
        self._epoch = max(self._epoch, epoch)

    def replay(self, record: metadata_pb2.MetadataRecord, offset: int, epoch: int) -> None:
        self.advance(offset, epoch)
        kind = record.WhichOneof("record")
        if kind == "register_broker":
            self.cluster.replay_register(record.register_broker, offset)
        elif kind == "fence_broker":
            self.cluster.replay_fencing(record.fence_broker.broker_id, record.fence_broker.broker_epoch, True)
        elif kind == "unfence_broker":
            self.cluster.replay_fencing(record.unfence_broker.broker_id, record.unfence_broker.broker_epoch, False)
        elif kind == "feature_level":
            self.features.replay(record.feature_level)
        elif kind == "topic":
            self.topics.replay_topic(record.topic)
        elif kind == "remove_topic":
            name = self.topics.replay_remove(record.remove_topic)
            if name is not None:
                self.configs.remove_resource(name)
        elif kind == "partition":
            self.topics.replay_partition(record.partition)
        elif kind == "partition_change":
            self.topics.replay_change(record.partition_change)
        elif kind == "config":
            self.configs.replay(record.config)
        elif kind == "producer_ids":
            self.producer_ids.replay(record.producer_ids)
        # no_op and unset records change nothing but the offset (KIP-835).

    def apply(self) -> MetadataImage:
        return MetadataImage(
            offset=self._offset,
            epoch=self._epoch,
            brokers=self.cluster.apply(),
            features=self.features.apply(),
            topics=self.topics.apply(),
            configs=self.configs.apply(),
            producer_ids=self.producer_ids.apply(),
        )


def replayed(image: MetadataImage, records: Sequence[metadata_pb2.MetadataRecord]) -> MetadataImage:
    """``image`` with ``records`` applied at its own offset: what a decision made of
    several steps reads between them (offsets do not matter for that)."""
    delta = MetadataDelta(image)
    for record in records:
        delta.replay(record, offset=image.offset, epoch=image.epoch)
    return delta.apply()
