"""MetadataImage: the immutable view of cluster metadata every node applies.

KRaft's idea: committed records are replayed into a ``MetadataDelta`` over the
current image, and ``apply()`` yields the next image. This is the only way
metadata changes — on the leader, on followers, and when a snapshot loads — so
readers always see one consistent image and no second code path can drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

from raftlog.v1 import metadata_pb2


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    broker_id: int
    incarnation_id: str
    broker_epoch: int
    """The metadata offset of this registration: a restart gets a larger one."""
    endpoints: tuple[Endpoint, ...]
    rack: str = ""
    fenced: bool = False

    @property
    def address(self) -> str:
        """The inter-broker address (the first endpoint registered)."""
        return self.endpoints[0].address if self.endpoints else ""

    def endpoint_for(self, listener: str | None) -> Endpoint | None:
        """The endpoint of the named listener; the inter-broker one when it has none."""
        for endpoint in self.endpoints:
            if endpoint.name == listener:
                return endpoint
        return self.endpoints[0] if self.endpoints else None


K = TypeVar("K")
V = TypeVar("V")


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


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: Mapping[int, PartitionRegistration]


def _frozen_map(items: Mapping[K, V] | None = None) -> Mapping[K, V]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True, slots=True)
class MetadataImage:
    offset: int = 0
    """Raft index of the last record applied (KRaft's metadata offset)."""
    epoch: int = 0
    """Raft term of that record."""
    brokers: Mapping[int, BrokerRegistration] = field(default_factory=_frozen_map)
    features: Mapping[str, int] = field(default_factory=_frozen_map)
    topics: Mapping[str, TopicImage] = field(default_factory=_frozen_map)
    """By topic id."""
    topic_ids: Mapping[str, str] = field(default_factory=_frozen_map)
    """Topic name -> topic id."""
    configs: Mapping[str, Mapping[str, str]] = field(default_factory=_frozen_map)
    """Topic name -> the configs set on it (defaults are not stored)."""
    next_producer_id: int = 0

    def topic_by_name(self, name: str) -> TopicImage | None:
        topic_id = self.topic_ids.get(name)
        return None if topic_id is None else self.topics.get(topic_id)

    def live_brokers(self) -> list[int]:
        """Registered, unfenced broker ids, sorted."""
        return sorted(b.broker_id for b in self.brokers.values() if not b.fenced)

    def to_snapshot(self) -> metadata_pb2.MetadataSnapshot:
        """The records that rebuild this image (KRaft snapshots are records too)."""
        snap = metadata_pb2.MetadataSnapshot(offset=self.offset, epoch=self.epoch)
        for broker in sorted(self.brokers.values(), key=lambda b: b.broker_id):
            snap.records.append(
                metadata_pb2.MetadataRecord(register_broker=registration_record(broker))
            )
            snap.broker_epochs.append(
                metadata_pb2.BrokerEpoch(broker_id=broker.broker_id, broker_epoch=broker.broker_epoch)
            )
        for name in sorted(self.features):
            snap.records.append(
                metadata_pb2.MetadataRecord(
                    feature_level=metadata_pb2.FeatureLevelRecord(
                        name=name, feature_level=self.features[name]
                    )
                )
            )
        for topic in sorted(self.topics.values(), key=lambda t: t.name):
            snap.records.append(
                metadata_pb2.MetadataRecord(
                    topic=metadata_pb2.TopicRecord(name=topic.name, topic_id=topic.topic_id)
                )
            )
            for pid in sorted(topic.partitions):
                part = topic.partitions[pid]
                snap.records.append(
                    metadata_pb2.MetadataRecord(
                        partition=metadata_pb2.PartitionRecord(
                            topic_id=topic.topic_id,
                            partition_id=pid,
                            replicas=part.replicas,
                            isr=part.isr,
                            leader=part.leader,
                            leader_epoch=part.leader_epoch,
                            partition_epoch=part.partition_epoch,
                            eligible_leader_replicas=part.elr,
                        )
                    )
                )
        for resource in sorted(self.configs):
            for name in sorted(self.configs[resource]):
                snap.records.append(
                    metadata_pb2.MetadataRecord(
                        config=metadata_pb2.ConfigRecord(
                            resource_name=resource, name=name, value=self.configs[resource][name]
                        )
                    )
                )
        if self.next_producer_id:
            snap.records.append(
                metadata_pb2.MetadataRecord(
                    producer_ids=metadata_pb2.ProducerIdsRecord(next_producer_id=self.next_producer_id)
                )
            )
        return snap

    @classmethod
    def from_snapshot(cls, snap: metadata_pb2.MetadataSnapshot) -> MetadataImage:
        epochs = {b.broker_id: b.broker_epoch for b in snap.broker_epochs}
        delta = MetadataDelta(cls())
        for record in snap.records:
            delta.replay(record, offset=snap.offset, epoch=snap.epoch)
        image = delta.apply()
        brokers = {
            bid: replace(b, broker_epoch=epochs.get(bid, b.broker_epoch))
            for bid, b in image.brokers.items()
        }
        return replace(image, brokers=_frozen_map(brokers))


def registration_record(broker: BrokerRegistration) -> metadata_pb2.RegisterBrokerRecord:
    return metadata_pb2.RegisterBrokerRecord(
        broker_id=broker.broker_id,
        incarnation_id=broker.incarnation_id,
        endpoints=[
            metadata_pb2.Endpoint(name=e.name, host=e.host, port=e.port) for e in broker.endpoints
        ],
        rack=broker.rack,
        fenced=broker.fenced,
    )


class MetadataDelta:
    """Changes accumulated over a base image; ``apply()`` makes the next image."""

    def __init__(self, base: MetadataImage) -> None:
        self._base = base
        self._offset = base.offset
        self._epoch = base.epoch
        self._brokers: dict[int, BrokerRegistration] | None = None
        self._features: dict[str, int] | None = None
        self._topics: dict[str, TopicImage] | None = None
        self._topic_ids: dict[str, str] | None = None
        self._configs: dict[str, Mapping[str, str]] | None = None
        self._next_producer_id = base.next_producer_id

    # Copy-on-write: an image's maps are shared until a record changes them.
    def _brokers_w(self) -> dict[int, BrokerRegistration]:
        if self._brokers is None:
            self._brokers = dict(self._base.brokers)
        return self._brokers

    def _topics_w(self) -> tuple[dict[str, TopicImage], dict[str, str]]:
        if self._topics is None or self._topic_ids is None:
            self._topics = dict(self._base.topics)
            self._topic_ids = dict(self._base.topic_ids)
        return self._topics, self._topic_ids

    def _configs_w(self) -> dict[str, Mapping[str, str]]:
        if self._configs is None:
            self._configs = dict(self._base.configs)
        return self._configs

    def advance(self, offset: int, epoch: int) -> None:
        """Move the offset past an entry that carries no record (a Raft no-op)."""
        self._offset = max(self._offset, offset)
        self._epoch = max(self._epoch, epoch)

    def replay(self, record: metadata_pb2.MetadataRecord, offset: int, epoch: int) -> None:
        self.advance(offset, epoch)
        kind = record.WhichOneof("record")
        if kind == "register_broker":
            self._replay_register(record.register_broker, offset)
        elif kind == "feature_level":
            if self._features is None:
                self._features = dict(self._base.features)
            self._features[record.feature_level.name] = record.feature_level.feature_level
        elif kind in ("fence_broker", "unfence_broker"):
            rec = record.fence_broker if kind == "fence_broker" else record.unfence_broker
            brokers = self._brokers_w()
            current = brokers.get(rec.broker_id)
            # A record for an older incarnation is stale: the broker re-registered since.
            if current is not None and current.broker_epoch == rec.broker_epoch:
                brokers[rec.broker_id] = replace(current, fenced=kind == "fence_broker")
        elif kind == "topic":
            topics, ids = self._topics_w()
            topics[record.topic.topic_id] = TopicImage(record.topic.name, record.topic.topic_id, _frozen_map())
            ids[record.topic.name] = record.topic.topic_id
        elif kind == "remove_topic":
            topics, ids = self._topics_w()
            removed = topics.pop(record.remove_topic.topic_id, None)
            if removed is not None:
                ids.pop(removed.name, None)
                self._configs_w().pop(removed.name, None)
        elif kind == "partition":
            self._replay_partition(record.partition)
        elif kind == "partition_change":
            self._replay_partition_change(record.partition_change)
        elif kind == "config":
            self._replay_config(record.config)
        elif kind == "producer_ids":
            self._next_producer_id = max(self._next_producer_id, record.producer_ids.next_producer_id)
        # no_op and unset records change nothing but the offset (KIP-835).

    def _replay_partition(self, rec: metadata_pb2.PartitionRecord) -> None:
        topics, _ = self._topics_w()
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
        topics[rec.topic_id] = replace(topic, partitions=_frozen_map(partitions))

    def _replay_partition_change(self, rec: metadata_pb2.PartitionChangeRecord) -> None:
        topics, _ = self._topics_w()
        topic = topics.get(rec.topic_id)
        current = None if topic is None else topic.partitions.get(rec.partition_id)
        if topic is None or current is None:
            return  # the topic was deleted after the change was decided
        partitions = dict(topic.partitions)
        partitions[rec.partition_id] = current.merge(rec)
        topics[rec.topic_id] = replace(topic, partitions=_frozen_map(partitions))

    def _replay_config(self, rec: metadata_pb2.ConfigRecord) -> None:
        configs = self._configs_w()
        values = dict(configs.get(rec.resource_name, {}))
        if rec.delete:
            values.pop(rec.name, None)
        else:
            values[rec.name] = rec.value
        if values:
            configs[rec.resource_name] = _frozen_map(values)
        else:
            configs.pop(rec.resource_name, None)

    def _replay_register(self, rec: metadata_pb2.RegisterBrokerRecord, offset: int) -> None:
        self._brokers_w()[rec.broker_id] = BrokerRegistration(
            broker_id=rec.broker_id,
            incarnation_id=rec.incarnation_id,
            broker_epoch=offset,
            endpoints=tuple(Endpoint(e.name, e.host, e.port) for e in rec.endpoints),
            rack=rec.rack,
            fenced=rec.fenced,
        )

    def apply(self) -> MetadataImage:
        return MetadataImage(
            offset=self._offset,
            epoch=self._epoch,
            brokers=self._base.brokers if self._brokers is None else _frozen_map(self._brokers),
            features=self._base.features if self._features is None else _frozen_map(self._features),
            topics=self._base.topics if self._topics is None else _frozen_map(self._topics),
            topic_ids=self._base.topic_ids if self._topic_ids is None else _frozen_map(self._topic_ids),
            configs=self._base.configs if self._configs is None else _frozen_map(self._configs),
            next_producer_id=self._next_producer_id,
        )
