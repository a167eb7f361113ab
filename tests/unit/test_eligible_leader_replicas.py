"""KIP-966 eligible leader replicas, decided by the pure ReplicationControlManager.

Topic t: one partition, replicas [1, 2, 3], leader 1, min.insync.replicas=2.
"""

from __future__ import annotations

import uuid

from raftlog.node.metadata.image import NO_LEADER, PartitionRegistration
from raftlog.node.metadata.loader import MetadataLoader
from raftlog.v1 import controller_pb2, metadata_pb2
from tests.unit.controller_ops import alter_configs, alter_partition, fence_broker, register_broker, unfence_broker
from tests.unit.test_controller_topics import Cluster

TOPIC_ID = "t-id"


def cluster_with_partition(min_isr: int = 2) -> Cluster:
    cluster = Cluster(brokers=3)
    cluster.commit([
        metadata_pb2.MetadataRecord(topic=metadata_pb2.TopicRecord(name="t", topic_id=TOPIC_ID)),
        metadata_pb2.MetadataRecord(partition=metadata_pb2.PartitionRecord(
            topic_id=TOPIC_ID, partition_id=0, replicas=[1, 2, 3], isr=[1, 2, 3], leader=1)),
        metadata_pb2.MetadataRecord(config=metadata_pb2.ConfigRecord(
            resource_name="t", name="min.insync.replicas", value=str(min_isr))),
    ])
    return cluster


def part(cluster: Cluster) -> PartitionRegistration:
    return cluster.image.topics[TOPIC_ID].partitions[0]


def shrink(cluster: Cluster, isr: list[int]) -> PartitionRegistration:
    p = part(cluster)
    leader = cluster.image.brokers[p.leader]
    cluster.commit(alter_partition(cluster.image, p.leader, leader.broker_epoch, TOPIC_ID, 0,
                                   p.leader_epoch, p.partition_epoch, isr))
    return part(cluster)


def test_replicas_removed_below_min_isr_become_eligible_and_one_is_elected_when_the_isr_dies() -> None:
    cluster = cluster_with_partition()
    assert shrink(cluster, [1, 2]).elr == ()  # still at min.insync.replicas: HW may advance
    # Below min ISR: the HW stops, so 2 holds every record below it. 3 left while the
    # ISR was still at min ISR and the HW could move past it: not eligible.
    after = shrink(cluster, [1])
    assert after.isr == (1,) and after.elr == (2,)

    cluster.commit(fence_broker(cluster.image, 1))  # the last ISR member dies
    elected = part(cluster)
    assert elected.leader == 2 and elected.isr == (2,), "a live ELR member is elected (clean)"
    assert elected.leader_epoch == after.leader_epoch + 1
    assert elected.elr == (1,), "1 led with everything below the HW: eligible in turn"


def test_elr_clears_when_the_isr_is_back_at_min_isr_and_a_rejoining_member_leaves_it() -> None:
    cluster = cluster_with_partition(min_isr=3)
    assert shrink(cluster, [1, 2]).elr == (3,)
    rejoined = shrink(cluster, [1, 2, 3])
    assert rejoined.isr == (1, 2, 3) and rejoined.elr == ()
    cluster = cluster_with_partition(min_isr=3)
    shrink(cluster, [1, 2])
    assert shrink(cluster, [1]).elr == (2, 3)
    assert shrink(cluster, [1, 3]).elr == (2,), "3 rejoined the ISR, so it leaves the ELR"


def test_a_direct_shrink_below_min_isr_makes_every_removed_replica_eligible() -> None:
    cluster = cluster_with_partition()
    assert shrink(cluster, [1]).elr == (2, 3), "the HW covered both when the ISR was {1,2,3}"


def test_a_fenced_elr_member_is_not_elected_until_it_is_unfenced() -> None:
    cluster = cluster_with_partition()
    shrink(cluster, [1, 2])
    shrink(cluster, [1])
    cluster.commit(fence_broker(cluster.image, 2))
    cluster.commit(fence_broker(cluster.image, 3))
    cluster.commit(fence_broker(cluster.image, 1))
    offline = part(cluster)
    assert offline.leader == NO_LEADER and offline.isr == (1,) and offline.elr == (2,)
    cluster.commit(unfence_broker(cluster.image, 3))
    assert part(cluster).leader == NO_LEADER, "3 is neither in the ISR nor eligible"
    cluster.commit(unfence_broker(cluster.image, 2))
    back = part(cluster)
    assert back.leader == 2 and back.isr == (2,) and back.elr == (1,)


def test_a_restarted_broker_leaves_every_elr() -> None:
    cluster = cluster_with_partition()
    shrink(cluster, [1])  # ELR (2, 3)
    old = cluster.image.brokers[2]
    cluster.commit(register_broker(cluster.image, controller_pb2.RegisterBrokerRequest(
        broker_id=2, incarnation_id=str(uuid.uuid4()),
        endpoints=[metadata_pb2.Endpoint(name="I", host="127.0.0.1", port=9092)])))
    assert cluster.image.brokers[2].broker_epoch > old.broker_epoch
    assert part(cluster).elr == (3,)
    cluster.commit(unfence_broker(cluster.image, 2))
    cluster.commit(fence_broker(cluster.image, 1))
    assert part(cluster).leader == 3, "not 2: the restarted replica may have lost records"


def test_unclean_election_and_a_lower_min_isr_clear_the_elr() -> None:
    cluster = cluster_with_partition(min_isr=3)
    assert shrink(cluster, [1, 2]).elr == (3,)
    cluster.commit(alter_configs(cluster.image, "t", {"min.insync.replicas": "2"}, []))
    assert part(cluster).elr == (), "ISR {1,2} is at the new min: the HW advances again"

    cluster = cluster_with_partition()
    cluster.commit(alter_configs(cluster.image, "t", {"unclean.leader.election.enable": "true"}, []))
    shrink(cluster, [1, 2])
    shrink(cluster, [1])  # ELR (2,)
    for broker in (2, 3, 1):
        cluster.commit(fence_broker(cluster.image, broker))
    assert part(cluster).leader == NO_LEADER
    cluster.commit(unfence_broker(cluster.image, 3))
    unclean = part(cluster)
    assert unclean.leader == 3 and unclean.isr == (3,) and unclean.elr == (), "unclean: the ELR is void"


def test_elr_survives_a_snapshot() -> None:
    cluster = cluster_with_partition()
    shrink(cluster, [1])
    restored = MetadataLoader(node_id=2).load_snapshot(cluster.loader.snapshot_data())
    assert restored.topics[TOPIC_ID].partitions[0].elr == (2, 3)
    assert restored == cluster.image
