"""Partition replication with real node processes: acks=all through leader kills,
min.insync.replicas, ISR shrink/expand, controller kills during topic churn."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from raftlog.cli.local_cluster import LocalCluster, wait_for
from raftlog.errors import ErrorCode, KafkaError
from tests.cluster.committed import committed_state
from tests.cluster.conftest import ClusterFactory
from tests.cluster.dataplane import (
    create_topic,
    describe,
    fetch_all,
    leader_address,
    list_offsets,
    produce,
    replica_bytes,
    rpc,
)
from raftlog.v1 import admin_pb2, broker_pb2

pytestmark = pytest.mark.cluster


def wait_full_isr(cluster: LocalCluster, topic: str, timeout_s: float = 40) -> None:
    def full() -> bool:
        desc = describe(cluster, topic)
        return all(len(p.isr) == len(p.replicas) and p.leader >= 0 for p in desc.partitions)

    wait_for(full, timeout_s, f"every replica of {topic} in the ISR")


def assert_replicas_identical(cluster: LocalCluster, topic: str) -> None:
    """Stop everything, then every replica's stored bytes agree below the HW."""
    desc = describe(cluster, topic)
    hws = {p.partition: list_offsets(cluster, topic, p.partition, -1) for p in desc.partitions}
    assert set(cluster.stop_all().values()) == {0}
    for p in desc.partitions:
        stored = {b: replica_bytes(cluster.node(b).data_dir, desc.topic_id, p.partition, hws[p.partition])
                  for b in p.replicas}
        assert len(set(stored.values())) == 1, f"replicas of {topic}-{p.partition} differ below the HW"
        assert all(stored.values()) or hws[p.partition] == 0


def test_thousand_records_round_trip_and_every_replica_serves_them(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    cluster.wait_for_leader()
    create_topic(cluster, "orders", 3, 3)
    told: dict[int, list[tuple[int, bytes]]] = {0: [], 1: [], 2: []}
    for i in range(100):  # 100 batches of 10 = 1,000 records, round robin over partitions
        partition = i % 3
        values = [f"r{i}-{j}".encode() for j in range(10)]
        base = produce(cluster, "orders", partition, values, acks=-1, retry_for_s=30)
        told[partition] += [(base + j, v) for j, v in enumerate(values)]

    def check_from_current_leaders() -> None:
        for partition, expected in told.items():
            address = leader_address(cluster, "orders", partition)
            assert address is not None
            assert fetch_all(address, "orders", partition).records == expected

    check_from_current_leaders()
    # Each broker in turn steps down (controlled shutdown), so other replicas lead
    # and serve the same records with the same offsets.
    for node in cluster.nodes:
        node.signal(signal.SIGTERM)
        assert node.stop(timeout_s=20) == 0
        wait_for(lambda: all(leader_address(cluster, "orders", p) for p in told), 30, "new leaders")
        check_from_current_leaders()
        cluster.start(node.node_id)
        wait_full_isr(cluster, "orders")
    assert_replicas_identical(cluster, "orders")


def test_sigkill_leader_under_acks_all_loses_nothing_acknowledged(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    cluster.wait_for_leader()
    create_topic(cluster, "payments", 1, 3, min_insync_replicas="2")
    acked: dict[int, bytes] = {}
    errors: list[str] = []
    stop = threading.Event()

    def producer() -> None:
        i = 0
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and i < 5000:
            value = f"v{i}".encode()
            try:
                acked[produce(cluster, "payments", 0, [value], acks=-1, retry_for_s=20)] = value
            except KafkaError as err:
                errors.append(str(err))
            i += 1

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    wait_for(lambda: len(acked) >= 50, 30, "50 acknowledged writes")
    old_leader = leader_address(cluster, "payments", 0)
    victim = next(n for n in cluster.nodes if n.address == old_leader)
    victim.kill()
    count_at_kill = len(acked)
    wait_for(lambda: len(acked) >= count_at_kill + 50, 30, "writes acknowledged by the new leader")
    cluster.start(victim.node_id)
    wait_full_isr(cluster, "payments")
    wait_for(lambda: len(acked) >= count_at_kill + 100, 30, "more writes with the old leader back")
    stop.set()
    thread.join(timeout=30)

    address = leader_address(cluster, "payments", 0)
    assert address is not None
    stored = dict(fetch_all(address, "payments", 0).records)
    missing = {o: v for o, v in acked.items() if stored.get(o) != v}
    assert not missing, f"acknowledged records lost or changed: {sorted(missing)[:10]}"
    assert_replicas_identical(cluster, "payments")  # the old leader truncated and caught up


def test_min_insync_replicas_refuses_acks_all_until_a_replica_returns(make_cluster: ClusterFactory) -> None:
    # Five voters so that the metadata quorum survives two dead brokers.
    cluster = make_cluster(nodes=5)
    cluster.wait_for_leader()
    create_topic(cluster, "strict", 1, 3, min_insync_replicas="2")
    produce(cluster, "strict", 0, [b"before"], acks=-1, retry_for_s=30)
    part = describe(cluster, "strict").partitions[0]
    followers = [b for b in part.replicas if b != part.leader]
    for b in followers:
        cluster.node(b).kill()
    wait_for(lambda: list(describe(cluster, "strict").partitions[0].isr) == [part.leader], 30, "ISR = leader")
    end_before = list_offsets(cluster, "strict", 0, -1)
    for _ in range(5):
        with pytest.raises(KafkaError) as info:
            produce(cluster, "strict", 0, [b"refused"], acks=-1)
        assert info.value.code == ErrorCode.NOT_ENOUGH_REPLICAS
    assert list_offsets(cluster, "strict", 0, -1) == end_before  # nothing was appended
    cluster.start(followers[0])
    offset = produce(cluster, "strict", 0, [b"after"], acks=-1, retry_for_s=40)
    assert offset == end_before


def test_stalled_follower_leaves_isr_and_returns_hw_never_backwards(make_cluster: ClusterFactory) -> None:
    # A short replica.lag.time.max.ms and a long session, so the ISR shrinks for lag
    # (AlterPartition from the leader), not because the broker is fenced.
    extra = ("--replica-lag-time-max-ms", "1500", "--broker-session-timeout-ms", "30000")
    cluster = make_cluster(extra_args=extra)
    cluster.wait_for_leader()
    create_topic(cluster, "lagging", 1, 3)
    part = describe(cluster, "lagging").partitions[0]
    follower = cluster.node(next(b for b in part.replicas if b != part.leader))
    leader = leader_address(cluster, "lagging", 0)
    assert leader is not None
    hws: list[int] = []

    def write_and_watch(n: int) -> None:
        for i in range(n):
            produce(cluster, "lagging", 0, [f"x{i}".encode()], acks=1, retry_for_s=10)
            hws.append(fetch_all(leader, "lagging", 0, start=max(0, (hws or [0])[-1])).high_watermark)

    follower.signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 30
        while follower.node_id in describe(cluster, "lagging").partitions[0].isr:
            assert time.monotonic() < deadline, "the stalled follower never left the ISR"
            write_and_watch(5)
    finally:
        follower.signal(signal.SIGCONT)
    wait_for(lambda: follower.node_id in describe(cluster, "lagging").partitions[0].isr, 30, "follower back in ISR")
    write_and_watch(5)
    assert hws == sorted(hws), f"high watermark went backwards: {hws}"


def test_killing_the_active_controller_during_topic_churn_loses_no_decision(make_cluster: ClusterFactory) -> None:
    # No metadata snapshots, so every node's state can be rebuilt at one common offset.
    cluster = make_cluster(extra_args=("--snapshot-every", "10000000"))
    created: list[str] = []
    for round_ in range(3):
        controller, _ = cluster.wait_for_leader()
        for i in range(3):
            name = f"churn-{round_}-{i}"
            create_topic(cluster, name, 2, 2)
            created.append(name)
        cluster.node(controller).kill()
        cluster.wait_for_leader(among=[n.node_id for n in cluster.nodes if n.node_id != controller])
        name = f"churn-{round_}-after"
        create_topic(cluster, name, 1, 2)
        created.append(name)
        cluster.start(controller)
        wait_for(lambda: (v := cluster.describe()) and v["max_follower_lag"] == 0, 30, "voters caught up")
    cluster.kill_all()
    commits = [committed_state(n.data_dir).commit for n in cluster.nodes]
    images = {n.node_id: committed_state(n.data_dir, upto=min(commits)).image for n in cluster.nodes}
    first = images[1]
    assert set(created) <= set(first.topic_ids), "an acknowledged topic creation was lost"
    for node_id, image in images.items():
        assert image == first, f"node {node_id} applied a different metadata image"


def test_delete_topic_removes_its_data_on_every_node(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    cluster.wait_for_leader()
    doomed = create_topic(cluster, "doomed", 2, 3)
    create_topic(cluster, "kept", 1, 3)
    for partition in (0, 1):
        produce(cluster, "doomed", partition, [b"a", b"b"], retry_for_s=20)
    produce(cluster, "kept", 0, [b"stays"], retry_for_s=20)
    kept = describe(cluster, "kept")
    hw_kept = list_offsets(cluster, "kept", 0, -1)
    wait_full_isr(cluster, "kept")
    rpc(cluster.node(1).address, "admin", "DeleteTopic", admin_pb2.DeleteTopicRequest(name="doomed"))
    with pytest.raises(AssertionError):
        describe(cluster, "doomed")

    def gone_everywhere() -> bool:
        # Every broker drops its replicas when it applies the removal.
        for node in cluster.nodes:
            for partition in (0, 1):
                try:
                    rpc(node.address, "broker", "ListOffsets",
                        broker_pb2.ListOffsetsRequest(topic="doomed", partition=partition, timestamp=-1))
                    return False
                except KafkaError as err:
                    if err.code != ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                        return False
        return True

    wait_for(gone_everywhere, 30, "doomed unknown to every broker")
    assert set(cluster.stop_all().values()) == {0}
    for node in cluster.nodes:
        for partition in (0, 1):
            assert replica_bytes(node.data_dir, doomed.topic_id, partition, 1 << 62) == b"", node.node_id
        assert replica_bytes(node.data_dir, kept.topic_id, 0, hw_kept) != b"", "the other topic was touched"
