"""Container tests: a cluster of `raftlog:dev` containers (tests/containers/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.containers.harness import ContainerCluster, skip_reason


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "containers: needs Docker and the raftlog:dev image (make image)")


@pytest.fixture(scope="session")
def docker_ready() -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def container_cluster(docker_ready: None, request: pytest.FixtureRequest) -> Iterator[ContainerCluster]:
    """Three nodes with short failure-detection timeouts; removed afterwards, even on failure."""
    cluster = ContainerCluster(
        size=3,
        extra_args=(
            "--broker-session-timeout-ms=3000",
            "--broker-heartbeat-interval-ms=300",
            "--replica-lag-time-max-ms=3000",
        ),
    )
    try:
        cluster.start()
        yield cluster
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(cluster.dump_logs(tail=40))
    finally:
        cluster.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)
