"""Three in-process nodes over real gRPC on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import grpc

from raftlog.node.controller.quorum_controller import NO_OP as NO_OP_RECORD
from raftlog.errors import ErrorCode
from raftlog.status import from_rpc_error
from raftlog.v1 import admin_pb2, admin_pb2_grpc, raft_pb2, raft_pb2_grpc
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
                # Propose through a follower: forwarded to the leader, answered after commit.
                record = NO_OP_RECORD.SerializeToString()
                quorum = raft_pb2_grpc.QuorumStub(channel)
                resp = await quorum.Propose(raft_pb2.ProposeRequest(records=[record, record]), timeout=5)
                assert resp.last_index == resp.first_index + 1
                await poll(
                    lambda: all(n.driver.applied >= resp.last_index for n in cluster.nodes.values()),
                    what="proposal applied everywhere",
                )

                # DescribeQuorum through a follower answers the leader's view.
                admin = admin_pb2_grpc.AdminStub(channel)

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
                assert view.high_watermark >= resp.last_index
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

                # Bad records are refused before they reach the log.
                try:
                    await quorum.Propose(raft_pb2.ProposeRequest(records=[b"\xff\xff"]), timeout=5)
                except grpc.aio.AioRpcError as err:
                    assert from_rpc_error(err).code == ErrorCode.INVALID_RECORD
                else:
                    raise AssertionError("garbage record accepted")
        finally:
            await cluster.stop()

    run(scenario(), timeout_s=25)
