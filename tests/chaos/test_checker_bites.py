"""The checker bites: against nodes that answer acks=all before the high watermark
passes (RAFTLOG_DEBUG_UNSAFE_ACKS=1, a test-only switch in node/broker/partition.py),
SIGKILLing partition leaders under a flood of writes loses acknowledged records, and
the chaos run must say so: lost > 0, a non-clean summary, exit code 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.runner import RunConfig, run

pytestmark = [pytest.mark.cluster, pytest.mark.chaos]


def test_unsafe_acks_are_reported_as_loss(tmp_path: Path) -> None:
    cfg = RunConfig(
        seed=3, duration_s=20, faults=["kill-leader"], gap_s=(2.0, 3.0),
        # As fast as the producers can go: a leader always has a tail its followers
        # have not fetched yet, and with the unsafe switch that tail is acknowledged.
        rate=5000, unsafe_acks=True, data_dir=tmp_path / "bite", json_path=tmp_path / "bite.json", quiet=True,
    )
    report = run(cfg)
    print(report.summary)
    kills = [f for f in report.faults if f["action"] == "kill"]
    assert len(kills) >= 2, report.faults
    assert not report.ok
    assert report.result.lost > 0, report.summary
    assert "chaos ANOMALIES:" in report.summary and f"lost={report.result.lost}" in report.summary
    # The evidence names the records, the offsets they were acknowledged at and by whom.
    assert "acknowledged at partition" in report.result.examples["lost"][0]
    assert (tmp_path / "bite.json").read_text().count('"lost"') >= 1


def test_the_same_run_without_the_switch_is_clean(tmp_path: Path) -> None:
    """The control: the very same schedule and flood with the switch off loses nothing."""
    cfg = RunConfig(seed=3, duration_s=20, faults=["kill-leader"], gap_s=(2.0, 3.0), rate=5000,
                    data_dir=tmp_path / "control", quiet=True)
    report = run(cfg)
    print(report.summary)
    assert report.ok, (report.summary, report.result.examples, report.data_dir)
