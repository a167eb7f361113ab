"""Deterministic simulation of 3- and 5-node clusters, one pytest case per seed.

Even seeds run 3 nodes, odd seeds 5. A failure message carries a one-line replay
command. Raise the seed count for a soak with RAFTLOG_SIM_SEEDS (default 500,
about 30 s of CPU).
"""

from __future__ import annotations

import os

import pytest

from tests.raft import sim

SEEDS = int(os.environ.get("RAFTLOG_SIM_SEEDS", "500"))


CASES = [(seed, 3 if seed % 2 == 0 else 5) for seed in range(SEEDS)]


@pytest.mark.parametrize(("seed", "nodes"), CASES, ids=[f"seed{s}-n{n}" for s, n in CASES])
def test_simulation(seed: int, nodes: int) -> None:
    stats = sim.run(seed, nodes)
    assert stats["leaders"] >= 1


def test_replay_command_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(["--seed", "3", "--nodes", "3", "-v"]) == 0
    out = capsys.readouterr().out
    assert "deliver" in out and "liveness reached" in out and "ok seed 3 nodes 3" in out


def test_failure_message_has_a_replay_command() -> None:
    s = sim.Sim(7, 5)
    s.run()
    leader = s.leader()
    assert leader is not None and leader.node is not None
    # Pretend another node led this term: the election-safety check must fire.
    s.leaders[leader.node.term] = 99
    with pytest.raises(sim.SimulationFailure) as ei:
        s.check_node(leader)
    msg = str(ei.value)
    assert "election safety" in msg
    assert "python -m tests.raft.sim --seed 7 --nodes 5 -v" in msg


def test_committed_entry_change_is_detected() -> None:
    s = sim.Sim(11, 3)
    s.run()
    sn = s.nodes[1]
    with pytest.raises(sim.SimulationFailure, match="committed entry changed"):
        s.note_committed(sn, 1, 99, b"forged")


def test_runs_are_deterministic() -> None:
    a = sim.Sim(5, 5)
    b = sim.Sim(5, 5)
    assert a.run() == b.run()
    assert list(a.trace) == list(b.trace)
