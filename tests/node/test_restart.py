"""Durable restarts on the rocksdict storage: the image comes back from snapshot + log."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from raftlog.cli.main import main
from raftlog.node.controller.quorum_controller import NO_OP as NO_OP_RECORD
from raftlog.node.app import rocksdb_storage
from tests.node.conftest import InProcessCluster, free_ports, poll, run

pytest.importorskip("raftlog.storage.node_db")
pytest.importorskip("raftlog.storage.raft_store")

NO_OP = NO_OP_RECORD.SerializeToString()


def test_restart_restores_image_from_snapshot_and_log(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = InProcessCluster(tmp_path, storage_factory=rocksdb_storage,
                                   snapshot_every=8, snapshot_keep_entries=3)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            await poll(lambda: all(len(n.driver.image.brokers) == 3 for n in cluster.nodes.values()),
                       what="registrations")
            for _ in range(10):
                await cluster.nodes[leader].driver.propose([NO_OP], 5)
            await poll(lambda: len({n.driver.applied for n in cluster.nodes.values()}) == 1,
                       what="all applied alike")
            before = {i: (n.driver.applied, n.driver.term, dict(n.driver.image.brokers))
                      for i, n in cluster.nodes.items()}
            assert all(n.driver.snapshot_index > 0 for n in cluster.nodes.values())
            await cluster.stop(controlled=False)

            for i in (1, 2, 3):
                await cluster.start(i)
                node = cluster.nodes[i]
                applied, term, brokers = before[i]
                # Restored at start (snapshot, then committed entries replayed), before
                # any message could arrive: the image is the one the node had.
                assert node.driver.applied >= applied
                assert node.driver.image.offset == node.driver.applied
                assert node.driver.term >= term
                assert {b: r.incarnation_id for b, r in node.driver.image.brokers.items()} == {
                    b: r.incarnation_id for b, r in brokers.items()
                }
            await cluster.wait_leader()
            # Every node re-registers with a new incarnation after the restart.
            await poll(lambda: all(
                node.driver.image.brokers[i].incarnation_id == node.registration.incarnation_id
                for node in cluster.nodes.values() for i in [node.config.node_id]
            ), what="re-registration")
        finally:
            await cluster.stop()

    run(scenario(), timeout_s=30)


def test_cli_port_in_use_is_one_line_exit_2(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = CliRunner().invoke(main, [
            "node", "start", "--node-id", "1", "--voters", f"1@127.0.0.1:{port}",
            "--data-dir", str(tmp_path / "d"),
        ])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: listen address") and result.stderr.count("\n") == 1
