"""A short chaos run against node processes for each of a fixed list of seeds, with
every fault processes support here (``partition`` needs root: cgroup-scoped iptables
rules), and a clean summary expected. The soak is one command and not part of the
suite: ``python -m tests.chaos --duration 600 --seed 1``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.drivers import FAULTS
from tests.chaos.netfilter import CgroupFirewall
from tests.chaos.runner import RunConfig, run

pytestmark = [pytest.mark.cluster, pytest.mark.chaos]

# Seeds whose first six steps between them draw every fault (the schedule is seeded;
# only how many steps fit in the duration depends on timing).
SEEDS = [22, 2]


def supported_faults() -> list[str]:
    faults = list(FAULTS)
    if CgroupFirewall.unavailable_reason() is not None:
        faults.remove("partition")
    return faults


@pytest.mark.parametrize("seed", SEEDS)
def test_short_chaos_run_is_clean(seed: int, tmp_path: Path) -> None:
    cfg = RunConfig(seed=seed, duration_s=45, faults=supported_faults(), data_dir=tmp_path / "run",
                    json_path=tmp_path / "result.json", quiet=True)
    report = run(cfg)
    print(report.summary)
    for note in report.notes:
        print("note:", note)
    assert report.ok, (report.summary, report.result.examples, f"evidence in {report.data_dir}")
    injected = [f for f in report.faults if f["action"] in ("kill", "pause", "isolate")]
    assert len(injected) >= 4, report.faults
    assert report.result.acknowledged > 500
    assert report.result.read >= report.result.acknowledged
