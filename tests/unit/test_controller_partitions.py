"""Fencing, leader election from the ISR only, and AlterPartition's epoch checks."""

from __future__ import annotations

import pytest

from raftlog.node.metadata.image import NO_LEADER
from raftlog.node.controller.replication_control import new_topic_id
from tests.unit.controller_ops import alter_configs, alter_partition, create_topic, fence_broker, unfence_broker
from raftlog.errors import ErrorCode, KafkaError
from tests.unit.test_controller_topics import Cluster


def one_partition(cluster: Cluster, rf: int = 3) -> str:
    topic_id = new_topic_id()
    cluster.commit(create_topic(cluster.image, "t", 1, rf, {}, topic_id))
    return topic_id


def test_fencing_the_leader_elects_from_isr_and_shrinks_isr() -> None:
    cluster = Cluster()
    topic_id = one_partition(cluster)
    before = cluster.image.topics[topic_id].partitions[0]
    image = cluster.commit(fence_broker(cluster.image, before.leader))
    after = image.topics[topic_id].partitions[0]
    assert image.brokers[before.leader].fenced
    assert after.leader != before.leader and after.leader in before.isr
    assert before.leader not in after.isr
    assert after.leader_epoch == before.leader_epoch + 1 and after.partition_epoch > before.partition_epoch
    assert fence_broker(image, before.leader) == []  # already fenced: nothing to do


def test_last_isr_member_stays_and_partition_goes_offline_then_returns() -> None:
    cluster = Cluster()
    topic_id = one_partition(cluster)
    part = cluster.image.topics[topic_id].partitions[0]
    for broker in part.replicas:
        cluster.commit(fence_broker(cluster.image, broker))
    offline = cluster.image.topics[topic_id].partitions[0]
    assert offline.leader == NO_LEADER and len(offline.isr) == 1
    last = offline.isr[0]
    # An out-of-sync replica coming back does not lead (unclean election is off)...
    other = next(b for b in part.replicas if b != last)
    assert cluster.commit(unfence_broker(cluster.image, other)).topics[topic_id].partitions[0].leader == NO_LEADER
    # ...the last in-sync one does.
    assert cluster.commit(unfence_broker(cluster.image, last)).topics[topic_id].partitions[0].leader == last


def test_unclean_election_when_enabled() -> None:
    cluster = Cluster()
    topic_id = one_partition(cluster)
    cluster.commit(alter_configs(cluster.image, "t", {"unclean.leader.election.enable": "true"}, []))
    part = cluster.image.topics[topic_id].partitions[0]
    for broker in part.replicas:
        cluster.commit(fence_broker(cluster.image, broker))
    last = cluster.image.topics[topic_id].partitions[0].isr[0]
    other = next(b for b in part.replicas if b != last)
    after = cluster.commit(unfence_broker(cluster.image, other)).topics[topic_id].partitions[0]
    assert after.leader == other and after.isr == (other,)


def test_alter_partition_checks_epochs_and_membership() -> None:
    cluster = Cluster()
    topic_id = one_partition(cluster)
    part = cluster.image.topics[topic_id].partitions[0]
    leader = part.leader
    epoch = cluster.image.brokers[leader].broker_epoch
    follower = next(b for b in part.replicas if b != leader)
    shrunk = tuple(b for b in part.isr if b != follower)
    image = cluster.commit(alter_partition(cluster.image, leader, epoch, topic_id, 0, part.leader_epoch, part.partition_epoch, shrunk))
    assert image.topics[topic_id].partitions[0].isr == shrunk

    def code(**changes: object) -> ErrorCode:
        args: dict[str, object] = dict(
            broker_id=leader, broker_epoch=epoch, topic_id=topic_id, partition_id=0,
            leader_epoch=part.leader_epoch, partition_epoch=image.topics[topic_id].partitions[0].partition_epoch,
            new_isr=part.isr,
        )
        args.update(changes)
        with pytest.raises(KafkaError) as info:
            alter_partition(image, **args)  # type: ignore[arg-type]
        return info.value.code

    assert code(partition_epoch=part.partition_epoch) == ErrorCode.INVALID_UPDATE_VERSION  # stale
    assert code(leader_epoch=part.leader_epoch - 1) == ErrorCode.FENCED_LEADER_EPOCH
    assert code(broker_id=follower, broker_epoch=image.brokers[follower].broker_epoch) == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert code(broker_epoch=epoch + 100) == ErrorCode.STALE_BROKER_EPOCH
    assert code(new_isr=(follower,)) == ErrorCode.INVALID_REQUEST
    assert code(topic_id="nope") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    fenced = cluster.commit(fence_broker(image, follower))
    with pytest.raises(KafkaError) as info:
        alter_partition(fenced, leader, epoch, topic_id, 0, part.leader_epoch,
                        fenced.topics[topic_id].partitions[0].partition_epoch, part.isr)
    assert info.value.code == ErrorCode.INELIGIBLE_REPLICA
