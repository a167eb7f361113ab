"""The container run `make test` does when Docker is here: node containers from
raftlog:dev, a fixed seed, the active controller and a partition leader SIGKILLed
(docker kill) and a node disconnected from the network, then the full check."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.runner import RunConfig, run
from tests.containers.harness import skip_reason

pytestmark = [pytest.mark.cluster, pytest.mark.chaos]

FAULTS = ["kill-controller", "kill-leader", "partition", "restart"]


@pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))
def test_container_chaos_run_is_clean(tmp_path: Path) -> None:
    cfg = RunConfig(seed=7, duration_s=60, faults=FAULTS, mode="containers", data_dir=tmp_path / "run",
                    json_path=tmp_path / "result.json", quiet=True)
    report = run(cfg)
    print(report.summary)
    assert report.ok, (report.summary, report.result.examples, f"evidence in {report.data_dir}")
    injected = {f["fault"] for f in report.faults if f["action"] in ("kill", "isolate")}
    assert {"kill-controller", "kill-leader", "partition"} <= injected, report.faults
    assert report.result.acknowledged > 200
