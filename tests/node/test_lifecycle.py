"""Controlled shutdown, failover, snapshots and InstallSnapshot, ReadIndex."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from raftlog.node.controller.quorum_controller import NO_OP as NO_OP_RECORD
from raftlog.node.app import Node, StartupError, memory_storage
from raftlog.errors import ErrorCode
from raftlog.node.controller.errors import controller_error
from raftlog.node.quorum.errors import NotLeaderError
from tests.node.conftest import InProcessCluster, poll, run

NO_OP = NO_OP_RECORD.SerializeToString()


def test_controlled_shutdown_of_the_leader_hands_over_leadership(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = InProcessCluster(tmp_path)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            await poll(lambda: all(len(n.driver.image.brokers) == 3 for n in cluster.nodes.values()),
                       what="registrations")
            old_term = cluster.nodes[leader].driver.term
            started = time.monotonic()
            await cluster.stop(leader, controlled=True)
            took = time.monotonic() - started
            # The transfer finished before the old leader went away: the others
            # already agree on a successor, without waiting for an election timeout.
            new_leader = cluster.agreed_leader()
            assert new_leader not in (0, leader)
            assert cluster.nodes[new_leader].driver.term > old_term
            assert took < 2.5
            result = await cluster.nodes[new_leader].driver.propose([NO_OP], 5)
            assert result.last_index > 0
        finally:
            await cluster.stop()

    run(scenario())


def test_leader_crash_fails_over_and_followers_forward(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = InProcessCluster(tmp_path)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            await cluster.stop(leader, controlled=False)
            new_leader = await cluster.wait_leader(timeout_s=10)
            assert new_leader != leader
            follower = next(i for i in cluster.nodes if i != new_leader)
            # A follower's driver refuses a proposal naming the leader (Raft-level; the
            # controller translates it to NOT_CONTROLLER).
            with pytest.raises(NotLeaderError) as info:
                await cluster.nodes[follower].driver.propose([NO_OP], 1)
            assert controller_error(info.value).code == ErrorCode.NOT_CONTROLLER
            assert info.value.leader_id == new_leader
            assert info.value.leader_address == cluster.address(new_leader)
            # ReadIndex works from a follower and from the leader.
            for i in cluster.nodes:
                index = await cluster.nodes[i].driver.read_index(5)
                assert cluster.nodes[i].driver.applied >= index > 0
        finally:
            await cluster.stop()

    run(scenario())


def test_a_read_index_pending_when_the_leader_dies_fails_fast_with_not_leader(tmp_path: Path) -> None:
    """The core drops an unconfirmed ReadIndex when the leader changes; the driver
    must fail it then (the caller retries on the new leader), not let it wait out
    its whole timeout."""
    async def scenario() -> None:
        cluster = InProcessCluster(tmp_path)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            follower = next(i for i in cluster.nodes if i != leader)
            await cluster.stop(leader, controlled=False)
            started = time.monotonic()
            # The follower still believes in the dead leader: the read is forwarded
            # there and lost; the election that follows must fail it.
            with pytest.raises(NotLeaderError):
                await cluster.nodes[follower].driver.read_index(8)
            assert time.monotonic() - started < 5
        finally:
            await cluster.stop()

    run(scenario())


def test_snapshots_compact_and_a_new_follower_catches_up_by_snapshot(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = InProcessCluster(tmp_path, snapshot_every=5, snapshot_keep_entries=2)
        await cluster.start(1)
        await cluster.start(2)
        try:
            leader = await cluster.wait_leader()
            driver = cluster.nodes[leader].driver
            await poll(lambda: all(len(n.driver.image.brokers) == 2 for n in cluster.nodes.values()),
                       what="two registrations")
            for _ in range(12):
                await driver.propose([NO_OP], 5)
            assert driver.snapshot_index >= 10
            assert driver.storage.first_index() > 1  # compacted
            # Node 3 was never up: the leader no longer has the entries it needs
            # and must send its snapshot (InstallSnapshot).
            await cluster.start(3)
            new = cluster.nodes[3].driver
            await poll(lambda: new.applied >= driver.snapshot_index, what="catch-up by snapshot")
            assert new.storage.snapshot().meta.index > 0
            assert new.storage.first_index() > 1
            await poll(lambda: all(sorted(n.driver.image.brokers) == [1, 2, 3]
                                   for n in cluster.nodes.values()), what="node 3 registered")
        finally:
            await cluster.stop()

    run(scenario())


def test_port_in_use_is_a_startup_error_and_releases_the_data_dir(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = InProcessCluster(tmp_path)
        await cluster.start(1)
        try:
            clash = cluster.config(1)
            other = type(clash)(**{**{f: getattr(clash, f) for f in clash.__dataclass_fields__},
                                   "data_dir": tmp_path / "elsewhere"})
            node = Node(other, storage_factory=memory_storage)
            with pytest.raises(StartupError, match="cannot bind: Address already in use"):
                await node.start()
            # Same data dir as a running node: refused before anything is opened.
            with pytest.raises(StartupError, match="in use"):
                await Node(cluster.config(1), storage_factory=memory_storage).start()
            # The failed start released its data dir: a retry gets past it.
            with pytest.raises(StartupError, match="cannot bind: Address already in use"):
                await Node(other, storage_factory=memory_storage).start()
        finally:
            await cluster.stop()

    run(scenario())
