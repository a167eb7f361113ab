"""The value types the SDK hands to and gets from applications (Kafka's names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

Headers = list[tuple[str, bytes | None]]


class TopicPartition(NamedTuple):
    """A partition of a topic: ``TopicPartition("orders", 0)``."""

    topic: str
    partition: int


class RecordMetadata(NamedTuple):
    """Where a produced record was written (the result of a send future).

    ``offset`` is -1 with ``acks=0`` (the broker does not say); ``timestamp`` is the
    record's timestamp in ms (the producer's CreateTime).
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    serialized_key_size: int = -1
    serialized_value_size: int = -1

    @property
    def topic_partition(self) -> TopicPartition:
        """The partition as a :class:`TopicPartition`."""
        return TopicPartition(self.topic, self.partition)


class ConsumerRecord(NamedTuple):
    """One record as the consumer returns it, key and value deserialized."""

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    headers: Headers
    timestamp: int
    timestamp_type: int = 0  # 0 CreateTime, 1 LogAppendTime (Kafka's numbering)
    serialized_key_size: int = -1
    serialized_value_size: int = -1

    @property
    def topic_partition(self) -> TopicPartition:
        """The partition as a :class:`TopicPartition`."""
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class NewTopic:
    """A topic to create: name, partitions, replication factor, configs."""

    name: str
    num_partitions: int = 1
    replication_factor: int = 1
    topic_configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """A partition's leader, leader epoch, replicas and in-sync replicas."""

    topic: str
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    partition_epoch: int = -1
    offline_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """A topic as DescribeTopic/CreateTopic answer: id, effective configs, partitions."""

    name: str
    topic_id: str
    partitions: tuple[PartitionInfo, ...]
    configs: dict[str, str]


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """A broker of the cluster (Kafka's Node)."""

    broker_id: int
    host: str
    port: int
    rack: str = ""
    fenced: bool = False
    incarnation_id: str = ""
    broker_epoch: int = -1

    @property
    def address(self) -> str:
        """host:port."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ClusterDescription:
    """Kafka's DescribeCluster: the brokers and the active controller."""

    cluster_id: str
    controller_id: int
    brokers: tuple[BrokerInfo, ...]
    metadata_offset: int = -1
    answered_by: int = -1


@dataclass(frozen=True, slots=True)
class VoterInfo:
    """One controller voter of the metadata quorum (kafka-metadata-quorum's replica status)."""

    node_id: int
    address: str
    log_end_offset: int
    lag: int
    last_fetch_ms_ago: int
    status: str


@dataclass(frozen=True, slots=True)
class QuorumDescription:
    """The metadata quorum as its leader sees it (kafka-metadata-quorum describe)."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[VoterInfo, ...]
    answered_by: int
    cluster_id: str


class OffsetAndTimestamp(NamedTuple):
    """An offset and the timestamp of the record there (``offsets_for_times``)."""

    offset: int
    timestamp: int
