"""The metadata quorum with real node processes: leader kills, restarts, majorities."""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from raftlog.cli.local_cluster import LocalCluster, wait_for
from tests.cluster.committed import committed_state
from tests.cluster.conftest import ClusterFactory, feature_record, update_feature

pytestmark = pytest.mark.cluster


def propose_retrying(cluster: LocalCluster, i: int, timeout_s: float = 30.0) -> tuple[int, int]:
    """Write record i (feature test.i = i) through any live node until acknowledged;
    (term, index)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        for node in cluster.nodes:
            if not node.alive:
                continue
            try:
                return update_feature(node.address, i, timeout_s=2.0)
            except grpc.RpcError as err:
                last = err
        time.sleep(0.05)
    raise TimeoutError(f"proposal {i} not acknowledged in {timeout_s}s: {last}")


def wait_caught_up(cluster: LocalCluster, timeout_s: float = 30.0) -> dict[str, object]:
    def check() -> dict[str, object] | None:
        view = cluster.describe()
        if view is None or len(view["voters"]) != len(cluster.nodes):
            return None
        offsets = {v["log_end_offset"] for v in view["voters"]}
        return view if view["max_follower_lag"] == 0 and len(offsets) == 1 else None

    return wait_for(check, timeout_s, "every voter at lag 0")


def assert_nothing_lost(cluster: LocalCluster, acked: dict[int, tuple[int, int]]) -> None:
    """Every node's committed log agrees entry by entry where they overlap, and every
    acknowledged proposal is in every node's metadata image, at its acknowledged index."""
    states = {n.node_id: committed_state(n.data_dir) for n in cluster.nodes}
    for node_id, state in states.items():
        missing = {i for i in acked if state.image.features.get(f"test.{i}") != i}
        assert not missing, f"node {node_id} lost acknowledged proposals {sorted(missing)[:10]}"
        for i, (term, index) in acked.items():
            entry = state.entries.get(index)
            if entry is not None:  # older ones may be in the snapshot only
                assert (entry.term, entry.data) == (term, feature_record(i)), (node_id, i)
    ids = sorted(states)
    for a in ids:
        for b in ids:
            common = states[a].entries.keys() & states[b].entries.keys()
            for index in common:
                assert states[a].entries[index] == states[b].entries[index], (a, b, index)


def test_sigkill_leader_elects_new_leader_and_restart_catches_up(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    leader, term = cluster.wait_for_leader()
    acked = {i: propose_retrying(cluster, i) for i in range(30)}

    cluster.node(leader).kill()
    survivors = [n.node_id for n in cluster.nodes if n.node_id != leader]
    new_leader, new_term = cluster.wait_for_leader(among=survivors)
    assert new_leader != leader and new_term > term
    acked |= {i: propose_retrying(cluster, i) for i in range(30, 60)}

    cluster.start(leader)
    wait_caught_up(cluster)
    acked |= {i: propose_retrying(cluster, i) for i in range(60, 70)}
    wait_caught_up(cluster)
    assert set(cluster.stop_all().values()) == {0}
    assert_nothing_lost(cluster, acked)


def test_two_of_three_keep_committing_one_of_three_does_not(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    leader, _ = cluster.wait_for_leader()
    followers = [n.node_id for n in cluster.nodes if n.node_id != leader]
    acked = {0: propose_retrying(cluster, 0)}

    cluster.node(followers[0]).kill()
    acked[1] = propose_retrying(cluster, 1)  # leader + one follower are a majority

    cluster.node(followers[1]).kill()
    with pytest.raises(grpc.RpcError):
        update_feature(cluster.node(leader).address, 2, timeout_s=2.0)

    cluster.start(followers[0])
    acked[3] = propose_retrying(cluster, 3)
    cluster.start(followers[1])
    wait_caught_up(cluster)
    cluster.stop_all()
    assert_nothing_lost(cluster, acked)


def test_sigterm_on_leader_hands_over_leadership(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    leader, term = cluster.wait_for_leader()
    wait_caught_up(cluster)
    cluster.node(leader).signal(signal.SIGTERM)
    survivors = [n.node_id for n in cluster.nodes if n.node_id != leader]
    # A transfer needs no election timeout: the survivors agree quickly and the old
    # leader exits cleanly.
    new_leader, new_term = cluster.wait_for_leader(among=survivors, timeout_s=10)
    assert new_term > term and new_leader in survivors
    assert cluster.node(leader).stop(timeout_s=15) == 0
    propose_retrying(cluster, 1)
