"""Controller decisions about topics, partitions and brokers' fencing.

Each function takes the current MetadataImage and returns the records that carry
the decision out; it raises KafkaError for a request it refuses. Randomness (topic
ids) and time come in as arguments, so every decision is reproducible in tests.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping, Sequence

from raftlog.node.metadata.image import MetadataImage, TopicImage
from raftlog.errors import ErrorCode, KafkaError
from raftlog.topic_config import CONFIG_DEFS, TopicConfig, validate_configs
from raftlog.v1 import metadata_pb2

MAX_TOPIC_NAME = 249  # Kafka's limit (255 minus room for a partition suffix)
_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_PARTITIONS = 10_000

Record = metadata_pb2.MetadataRecord


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


def create_topic(
    image: MetadataImage,
    name: str,
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, str],
    topic_id: str,
) -> list[Record]:
    validate_topic_name(name)
    if image.topic_by_name(name) is not None:
        raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"partitions must be 1..{MAX_PARTITIONS}, got {partitions}")
    live = image.live_brokers()
    if replication_factor < 1 or replication_factor > len(live):
        raise KafkaError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"replication factor {replication_factor} must be between 1 and the {len(live)} live brokers",
        )
    checked = validate_configs(configs)
    if TopicConfig.of(checked).min_insync_replicas > replication_factor:
        raise KafkaError(
            ErrorCode.INVALID_CONFIG,
            f"min.insync.replicas={checked['min.insync.replicas']} is above the replication factor {replication_factor}",
        )
    records = [Record(topic=metadata_pb2.TopicRecord(name=name, topic_id=topic_id))]
    for pid, replicas in enumerate(place_replicas(image, live, partitions, replication_factor)):
        records.append(
            Record(
                partition=metadata_pb2.PartitionRecord(
                    topic_id=topic_id, partition_id=pid, replicas=replicas, isr=replicas,
                    leader=replicas[0], leader_epoch=0, partition_epoch=0,
                )
            )
        )
    for key in sorted(checked):
        records.append(Record(config=metadata_pb2.ConfigRecord(resource_name=name, name=key, value=checked[key])))
    return records


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


def delete_topic(image: MetadataImage, name: str) -> list[Record]:
    topic = _topic(image, name)
    return [Record(remove_topic=metadata_pb2.RemoveTopicRecord(topic_id=topic.topic_id))]


def alter_configs(
    image: MetadataImage, name: str, set_configs: Mapping[str, str], delete: Sequence[str]
) -> list[Record]:
    """Set some configs and reset others to their defaults (Kafka's incremental alter)."""
    topic = _topic(image, name)
    checked = validate_configs(set_configs)
    validate_configs({key: CONFIG_DEFS[key].default for key in delete if key in CONFIG_DEFS})
    unknown = [key for key in delete if key not in CONFIG_DEFS]
    if unknown:
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"unknown topic config {unknown[0]!r}")
    merged = {**image.configs.get(name, {}), **checked}
    for key in delete:
        merged.pop(key, None)
    rf = min((len(p.replicas) for p in topic.partitions.values()), default=1)
    if TopicConfig.of(merged).min_insync_replicas > rf:
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"min.insync.replicas is above the replication factor {rf}")
    return [
        Record(config=metadata_pb2.ConfigRecord(resource_name=name, name=k, value=v))
        for k, v in sorted(checked.items())
    ] + [
        Record(config=metadata_pb2.ConfigRecord(resource_name=name, name=k, delete=True))
        for k in sorted(delete)
    ]


def _topic(image: MetadataImage, name: str) -> TopicImage:
    topic = image.topic_by_name(name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    return topic
