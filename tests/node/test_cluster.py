"""Three in-process nodes over real gRPC on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import grpc

from raftlog.errors import ErrorCode
from raftlog.v1 import admin_pb2, admin_pb2_grpc, metadata_pb2
from tests.node.conftest import InProcessCluster, poll, run


def test_three_nodes_elect_register_and_describe(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = InProcessCluster(tmp_path)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            assert cluster.leaders() == [leader]

            # Every node registered itself; every image has all three brokers.
            await poll(
                lambda: all(len(n.driver.image.brokers) == 3 for n in cluster.nodes.values()),
                what="three brokers registered in every image",
            )
            follower = next(i for i in cluster.nodes if i != leader)
            async with grpc.aio.insecure_channel(cluster.address(follower)) as channel:
                # A controller write through a follower: forwarded to the leader,
                # answered after commit.
                admin = admin_pb2_grpc.AdminStub(channel)
                resp = await admin.UpdateFeatures(admin_pb2.UpdateFeaturesRequest(feature_updates=[
                    admin_pb2.FeatureUpdate(feature="test.a", max_version_level=1),
                    admin_pb2.FeatureUpdate(feature="test.b", max_version_level=2),
                ]), timeout=5)
                assert [r.HasField("error") for r in resp.results] == [False, False]
                await poll(
                    lambda: all(n.driver.applied >= resp.metadata_offset for n in cluster.nodes.values()),
                    what="feature update applied everywhere",
                )
                assert all(n.driver.image.features.get("test.b") == 2 for n in cluster.nodes.values())

                # DescribeQuorum through a follower answers the leader's view.

                async def caught_up() -> bool:
                    view = await admin.DescribeQuorum(admin_pb2.DescribeQuorumRequest(), timeout=5)
                    assert view.leader_id == leader and view.answered_by == leader
                    assert [v.node_id for v in view.voters] == [1, 2, 3]
                    return all(v.lag == 0 for v in view.voters) and all(
                        0 <= v.last_fetch_ms_ago < 2000 for v in view.voters
                    )

                await poll(caught_up, what="all voters with lag 0")
                view = await admin.DescribeQuorum(admin_pb2.DescribeQuorumRequest(), timeout=5)
                statuses = {v.node_id: v.status for v in view.voters}
                assert statuses[leader] == "Leader"
                assert sorted(s for i, s in statuses.items() if i != leader) == ["Follower"] * 2
                assert view.high_watermark >= resp.metadata_offset
                assert view.cluster_id == cluster.nodes[1].config.cluster_id

                local = await admin.DescribeQuorum(
                    admin_pb2.DescribeQuorumRequest(local_view=True), timeout=5
                )
                assert local.answered_by == follower and local.leader_id == leader
                assert not local.voters

                desc = await admin.DescribeCluster(admin_pb2.DescribeClusterRequest(), timeout=5)
                assert desc.controller_id == leader
                assert [b.broker_id for b in desc.brokers] == [1, 2, 3]
                assert desc.brokers[0].address == cluster.address(1)

                # A bad update is refused inside the response, and nothing is written.
                bad = await admin.UpdateFeatures(admin_pb2.UpdateFeaturesRequest(feature_updates=[
                    admin_pb2.FeatureUpdate(feature="bad name!", max_version_level=1)]), timeout=5)
                assert bad.results[0].error.error_code == ErrorCode.INVALID_REQUEST
                assert bad.metadata_offset == 0
        finally:
            await cluster.stop()

    run(scenario(), timeout_s=25)


def test_a_client_cannot_append_metadata_records(tmp_path: Path) -> None:
    """The old Quorum.Propose appended any well-formed MetadataRecord, bypassing the
    controller. Sent the old way now, a PartitionChange, a fence or a topic removal
    is refused (UNIMPLEMENTED) and the metadata is unchanged."""

    async def scenario() -> None:
        cluster = InProcessCluster(tmp_path)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            await poll(
                lambda: len(cluster.nodes[leader].driver.image.live_brokers()) == 3,
                what="three live brokers",
            )
            async with grpc.aio.insecure_channel(cluster.address(leader)) as channel:
                admin = admin_pb2_grpc.AdminStub(channel)
                await admin.CreateTopic(admin_pb2.CreateTopicRequest(name="t", partitions=1, replication_factor=3),
                                        timeout=10)
            image = cluster.nodes[leader].driver.image
            topic_id = image.topic_ids["t"]
            victim = next(b for b in image.brokers.values() if b.broker_id != leader)
            forged = [
                metadata_pb2.MetadataRecord(partition_change=metadata_pb2.PartitionChangeRecord(
                    topic_id=topic_id, partition_id=0, leader=victim.broker_id,
                    isr=metadata_pb2.ReplicaList(ids=[victim.broker_id]))),
                metadata_pb2.MetadataRecord(fence_broker=metadata_pb2.FenceBrokerRecord(
                    broker_id=victim.broker_id, broker_epoch=victim.broker_epoch)),
                metadata_pb2.MetadataRecord(remove_topic=metadata_pb2.RemoveTopicRecord(topic_id=topic_id)),
            ]
            before = image.topics[topic_id].partitions[0]
            for node_id in cluster.nodes:
                async with grpc.aio.insecure_channel(cluster.address(node_id)) as channel:
                    # The old ProposeRequest on the wire: field 1, repeated bytes.
                    propose = channel.unary_unary(
                        "/raftlog.v1.Quorum/Propose",
                        request_serializer=lambda records: b"".join(
                            b"\x0a" + _varint(len(r)) + r for r in records),
                        response_deserializer=lambda data: data,
                    )
                    for record in forged:
                        try:
                            await propose([record.SerializeToString()], timeout=5)
                        except grpc.aio.AioRpcError as err:
                            assert err.code() == grpc.StatusCode.UNIMPLEMENTED, err
                        else:
                            raise AssertionError(f"node {node_id} accepted a client-written {record}")
            for node in cluster.nodes.values():
                assert node.driver.image.topic_ids.get("t") == topic_id
                assert not node.driver.image.brokers[victim.broker_id].fenced
            after = cluster.nodes[leader].driver.image.topics[topic_id].partitions[0]
            assert (after.leader, after.isr) == (before.leader, before.isr)
        finally:
            await cluster.stop()

    run(scenario(), timeout_s=25)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
