"""Real three-node clusters for the SDK tests.

``cluster`` is one cluster shared by the tests that do not hurt it (session
scope: started once); ``make_cluster`` starts a fresh one for a test that kills
nodes. Either way only processes the tests started are killed, by PID.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from raftlog.cli.local_cluster import LocalCluster, free_ports, wait_for
from raftlog import AdminClient, KafkaException

ClusterFactory = Callable[[], LocalCluster]
_names = itertools.count()


def start_cluster(data_dir: Path, nodes: int = 3) -> LocalCluster:
    """Start ``nodes`` node processes and wait for an agreed Raft leader."""
    for attempt in range(3):  # free_ports may race with another process binding the port
        cluster = LocalCluster.layout(nodes, "127.0.0.1", free_ports("127.0.0.1", nodes), data_dir / f"try{attempt}")
        cluster.start()
        try:
            cluster.wait_for_leader(30)
            wait_for_brokers(cluster, nodes)
            return cluster
        except (TimeoutError, RuntimeError):
            cluster.kill_all()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def live_brokers(cluster: LocalCluster) -> set[int]:
    """Ids of the registered, unfenced brokers (empty when nobody answers)."""
    try:
        with AdminClient(bootstrap_servers=bootstrap(cluster), request_timeout_ms=2000) as admin:
            return {b.broker_id for b in admin.describe_cluster().brokers if not b.fenced}
    except KafkaException:
        return set()


def wait_for_brokers(cluster: LocalCluster, count: int, timeout_s: float = 30.0) -> None:
    """Wait until ``count`` brokers are registered and unfenced."""
    wait_for(lambda: len(live_brokers(cluster)) >= count, timeout_s, f"{count} live brokers")


def dump_logs(cluster: LocalCluster) -> None:
    for node in cluster.nodes:
        print(f"--- node {node.node_id} log tail ---\n{node.tail(40)}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = start_cluster(tmp_path_factory.mktemp("sdk-cluster"))
    yield started
    started.kill_all()


@pytest.fixture
def make_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ClusterFactory]:
    clusters: list[LocalCluster] = []

    def make() -> LocalCluster:
        started = start_cluster(tmp_path / f"c{len(clusters)}")
        clusters.append(started)
        return started

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for started in clusters:
        started.kill_all()
        if failed:
            dump_logs(started)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def bootstrap(cluster: LocalCluster) -> str:
    """The cluster's addresses as a comma-separated bootstrap string."""
    return ",".join(cluster.addresses)


def new_topic(cluster: LocalCluster, partitions: int = 3, replication: int = 3,
              configs: dict[str, str] | None = None, prefix: str = "t") -> str:
    """Create a topic with a fresh name; returns the name."""
    name = f"{prefix}-{next(_names)}"
    with AdminClient(bootstrap_servers=bootstrap(cluster)) as admin:
        admin.create_topic(name, partitions, replication, configs)
    return name
