"""Deterministic simulation of 3- and 5-node clusters, one pytest case per seed.

Even seeds run 3 nodes, odd seeds 5. A failure message carries a one-line replay
command. Raise the seed count for a soak with RAFTLOG_SIM_SEEDS (default 500,
about 15 s of CPU).

Each kind of chaos earns its keep by catching a known bug (tests/raft/mutants.py):
``test_mutant_is_caught`` replays one seed per mutant.
"""

from __future__ import annotations

import os

import pytest

from tests.raft import mutants, sim

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


#: (mutant, nodes, seed that catches it, contract checks, what the failure says).
#: The power-loss mutants run without the persist-contract check (which flags them
#: at once): what catches them then is a Raft invariant the power loss broke.
CAUGHT = [
    ("send-before-sync", 5, 19, False, "leader completeness"),
    ("trust-torn-tail", 3, 16, True, "committed entry changed"),
    ("lease-read", 5, 121, True, "ReadIndex not linearizable"),
    ("silent-overflow", 5, 55, True, "liveness"),
    ("active-on-send", 3, 2, True, "check quorum"),
]


def test_every_mutant_has_a_catching_seed() -> None:
    assert sorted(m for m, *_ in CAUGHT) == sorted(mutants.MUTANTS)


@pytest.mark.parametrize(("mutant", "nodes", "seed", "contract_checks", "says"), CAUGHT, ids=[c[0] for c in CAUGHT])
def test_mutant_is_caught(mutant: str, nodes: int, seed: int, contract_checks: bool, says: str) -> None:
    s = sim.Sim(seed, nodes, contract_checks=contract_checks, mutant=mutant)
    find = f"python -m tests.raft.sim --seed 0 --count 300 --nodes {nodes} --mutant {mutant}"
    if not contract_checks:
        find += " --no-contract-checks"
    try:
        s.run()
    except sim.SimulationFailure as exc:
        text = str(exc)
        assert says in text.splitlines()[0], f"caught, but not as expected:\n{text}"
        assert s.replay_command() in text
    else:
        raise AssertionError(
            f"mutant {mutant} no longer caught on seed {seed} (the simulation changed?): "
            f"find a seed that catches it with `{find}`"
        )
    # The patches are gone afterwards: the same seed passes without the mutant.
    sim.Sim(seed, nodes).run()
