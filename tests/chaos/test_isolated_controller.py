"""Regression (found by the chaos soak): with the active controller cut off the
network, the other brokers must move their heartbeat stream to the new controller
and stay live, instead of waiting on the silent old one until the network heals."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from raftlog.cli.local_cluster import wait_for
from raftlog.v1 import admin_pb2, admin_pb2_grpc
from tests.chaos.drivers import ProcessDriver
from tests.chaos.netfilter import CgroupFirewall

pytestmark = pytest.mark.cluster


@pytest.mark.skipif(CgroupFirewall.unavailable_reason() is not None,
                    reason=f"cannot cut a process off the network here: {CgroupFirewall.unavailable_reason()}")
def test_brokers_stay_live_when_the_controller_is_cut_off(tmp_path: Path) -> None:
    driver = ProcessDriver(3, tmp_path, node_args=("--broker-session-timeout-ms", "2000"))
    try:
        driver.start()
        controller, term = driver.cluster.wait_for_leader()
        others = [n for n in (1, 2, 3) if n != controller]
        driver.isolate(controller)
        new_leader, _ = driver.cluster.wait_for_leader(among=others, timeout_s=30)
        assert new_leader in others

        def survivors_live() -> bool:
            with grpc.insecure_channel(driver.address(new_leader)) as channel:
                cluster = admin_pb2_grpc.AdminStub(channel).DescribeCluster(admin_pb2.DescribeClusterRequest(),
                                                                            timeout=2)
            fenced = {b.broker_id for b in cluster.brokers if b.fenced}
            return not (fenced & set(others))

        # A new controller grants fresh sessions, so a stuck survivor is fenced only
        # once its session runs out: require both to stay live well past that.
        wait_for(survivors_live, 15, "both surviving brokers live under the new controller")
        deadline = time.monotonic() + 3 * 2.0
        while time.monotonic() < deadline:
            assert survivors_live(), "a surviving broker was fenced while the old controller was cut off"
    finally:
        driver.heal()
        driver.stop_all()
        driver.cleanup()
