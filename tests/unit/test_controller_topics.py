"""Controller topic decisions: validation, placement, and replay into the image."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from raftlog.node.controller.replication_control import new_topic_id, place_replicas
from raftlog.node.metadata.image import MetadataImage
from raftlog.node.metadata.loader import MetadataLoader
from tests.unit.controller_ops import alter_configs, create_topic, delete_topic, register_broker, unfence_broker
from raftlog.errors import ErrorCode, KafkaError
from raftlog.raft.types import Entry
from raftlog.topic_config import TopicConfig, effective_configs
from raftlog.v1 import controller_pb2, metadata_pb2


class Cluster:
    """A loader fed with records as if each batch were committed."""

    def __init__(self, brokers: int = 3) -> None:
        self.loader = MetadataLoader(node_id=1)
        self.next_index = 1
        for broker_id in range(1, brokers + 1):
            self.commit(
                register_broker(
                    self.image,
                    controller_pb2.RegisterBrokerRequest(
                        broker_id=broker_id,
                        incarnation_id=str(uuid.uuid4()),
                        endpoints=[metadata_pb2.Endpoint(name="I", host="127.0.0.1", port=9090 + broker_id)],
                    ),
                )
            )
            broker = self.image.brokers[broker_id]
            self.commit(unfence_broker(self.image, broker.broker_id))

    @property
    def image(self) -> MetadataImage:
        return self.loader.image

    def commit(self, records: list[metadata_pb2.MetadataRecord]) -> MetadataImage:
        entries = [Entry(term=1, index=self.next_index + i, data=r.SerializeToString()) for i, r in enumerate(records)]
        self.next_index += len(records)
        return self.loader.apply_entries(entries)


def test_create_topic_places_evenly_and_replays() -> None:
    cluster = Cluster(brokers=3)
    image = cluster.commit(create_topic(cluster.image, "orders", 6, 3, {"min.insync.replicas": "2"}, new_topic_id()))
    topic = image.topic_by_name("orders")
    assert topic is not None and len(topic.partitions) == 6
    for part in topic.partitions.values():
        assert len(set(part.replicas)) == 3 and part.isr == part.replicas and part.leader == part.replicas[0]
    assert Counter(p.leader for p in topic.partitions.values()) == {1: 2, 2: 2, 3: 2}
    assert TopicConfig.of(image.configs["orders"]).min_insync_replicas == 2
    assert effective_configs(image.configs["orders"])["retention.ms"] == "604800000"


def test_leaders_stay_even_across_topics() -> None:
    cluster = Cluster(brokers=3)
    for name in ("a", "b", "c"):
        cluster.commit(create_topic(cluster.image, name, 1, 2, {}, new_topic_id()))
    leaders = [cluster.image.topic_by_name(n).partitions[0].leader for n in ("a", "b", "c")]  # type: ignore[union-attr]
    assert sorted(leaders) == [1, 2, 3]


@pytest.mark.parametrize("n,rf,partitions", [(1, 1, 3), (2, 2, 5), (3, 3, 7), (5, 3, 20), (5, 5, 11)])
def test_placement_never_repeats_a_broker(n: int, rf: int, partitions: int) -> None:
    live = list(range(1, n + 1))
    for replicas in place_replicas(MetadataImage(), live, partitions, rf):
        assert len(set(replicas)) == rf


@pytest.mark.parametrize(
    ("name", "partitions", "rf", "configs", "code"),
    [
        ("", 1, 1, {}, ErrorCode.INVALID_TOPIC),
        (".", 1, 1, {}, ErrorCode.INVALID_TOPIC),
        ("..", 1, 1, {}, ErrorCode.INVALID_TOPIC),
        ("a" * 250, 1, 1, {}, ErrorCode.INVALID_TOPIC),
        ("bad name!", 1, 1, {}, ErrorCode.INVALID_TOPIC),
        ("ok", 0, 1, {}, ErrorCode.INVALID_PARTITIONS),
        ("ok", 1, 0, {}, ErrorCode.INVALID_REPLICATION_FACTOR),
        ("ok", 1, 4, {}, ErrorCode.INVALID_REPLICATION_FACTOR),
        ("ok", 1, 1, {"no.such": "1"}, ErrorCode.INVALID_CONFIG),
        ("ok", 1, 1, {"retention.ms": "soon"}, ErrorCode.INVALID_CONFIG),
        ("ok", 1, 1, {"cleanup.policy": "compact"}, ErrorCode.INVALID_CONFIG),
        ("ok", 1, 2, {"min.insync.replicas": "3"}, ErrorCode.INVALID_CONFIG),
    ],
)
def test_bad_topic_creations_are_refused(name: str, partitions: int, rf: int, configs: dict[str, str], code: ErrorCode) -> None:
    cluster = Cluster(brokers=3)
    with pytest.raises(KafkaError) as info:
        create_topic(cluster.image, name, partitions, rf, configs, new_topic_id())
    assert info.value.code == code


def test_duplicate_topic_and_delete() -> None:
    cluster = Cluster()
    cluster.commit(create_topic(cluster.image, "t", 2, 2, {"retention.ms": "1000"}, new_topic_id()))
    with pytest.raises(KafkaError) as info:
        create_topic(cluster.image, "t", 1, 1, {}, new_topic_id())
    assert info.value.code == ErrorCode.TOPIC_ALREADY_EXISTS
    image = cluster.commit(delete_topic(cluster.image, "t"))
    assert image.topic_by_name("t") is None and "t" not in image.configs and not image.topics
    with pytest.raises(KafkaError) as info:
        delete_topic(image, "t")
    assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_alter_configs_sets_and_resets() -> None:
    cluster = Cluster()
    cluster.commit(create_topic(cluster.image, "t", 1, 3, {"retention.ms": "1000"}, new_topic_id()))
    image = cluster.commit(alter_configs(cluster.image, "t", {"min.insync.replicas": "2"}, ["retention.ms"]))
    assert dict(image.configs["t"]) == {"min.insync.replicas": "2"}
    with pytest.raises(KafkaError):
        alter_configs(image, "t", {"min.insync.replicas": "4"}, [])


def test_topics_survive_a_snapshot() -> None:
    cluster = Cluster()
    cluster.commit(create_topic(cluster.image, "t", 3, 2, {"retention.bytes": "10"}, new_topic_id()))
    restored = MetadataLoader(node_id=2).load_snapshot(cluster.loader.snapshot_data())
    assert restored == cluster.image
