"""Real node processes on 127.0.0.1, started through the CLI (`python -m cli node start`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from raftlog.cli.local_cluster import LocalCluster, free_ports
from raftlog.v1 import admin_pb2, admin_pb2_grpc, metadata_pb2

ClusterFactory = Callable[..., LocalCluster]


@pytest.fixture
def make_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ClusterFactory]:
    clusters: list[LocalCluster] = []

    def make(nodes: int = 3, start: bool = True, extra_args: tuple[str, ...] = ()) -> LocalCluster:
        cluster = LocalCluster.layout(
            nodes, "127.0.0.1", free_ports("127.0.0.1", nodes), tmp_path / f"c{len(clusters)}",
            extra_args=extra_args,
        )
        clusters.append(cluster)
        if start:
            cluster.start()
        return cluster

    yield make
    for cluster in clusters:
        cluster.kill_all()  # only the processes this test started, by PID
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            for node in cluster.nodes:
                print(f"--- node {node.node_id} log tail ---\n{node.tail(30)}")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def feature_record(i: int) -> bytes:
    """A distinguishable metadata record: proposal i sets feature test.i to i."""
    return metadata_pb2.MetadataRecord(
        feature_level=metadata_pb2.FeatureLevelRecord(name=f"test.{i}", feature_level=i)
    ).SerializeToString()


def update_feature(address: str, i: int, timeout_s: float = 5.0) -> tuple[int, int]:
    """Set feature test.i to i through one node (a follower forwards to the active
    controller): the record ``feature_record(i)``. Returns (term, index) where it was
    written; raises grpc.RpcError."""
    request = admin_pb2.UpdateFeaturesRequest(
        feature_updates=[admin_pb2.FeatureUpdate(feature=f"test.{i}", max_version_level=i)]
    )
    with grpc.insecure_channel(address) as channel:
        response: admin_pb2.UpdateFeaturesResponse = admin_pb2_grpc.AdminStub(channel).UpdateFeatures(
            request, timeout=timeout_s
        )
    error = response.results[0].error
    assert not response.results[0].HasField("error"), error
    return response.metadata_epoch, response.metadata_offset
