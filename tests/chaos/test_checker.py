"""Each check of the chaos checker fires on a synthetic history made to break it, and
stays silent on a clean one."""

from __future__ import annotations

import pytest

from raftlog.records import build_batch, stamp
from tests.chaos.checker import check, controller_failover, decode_log, leader_failover, summary_line
from tests.chaos.history import ACKED, FAILED, UNKNOWN, BatchOp, FaultEvent, encode_value
from tests.chaos.runner import parse_args


def acked(producer: int, partition: int, first_seq: int, count: int, offset: int, t: float = 0.0,
          by: str = "n1") -> BatchOp:
    return BatchOp(producer, partition, first_seq, count, status=ACKED, offset=offset, t_done=t, acked_by=by)


def log_of(*ops: BatchOp) -> list[tuple[int, bytes]]:
    """The log a correct cluster holds for these acknowledged batches."""
    out: list[tuple[int, bytes]] = []
    for op in ops:
        assert op.offset is not None
        out += [(op.offset + i, v) for i, v in enumerate(op.values())]
    return sorted(out)


def clean() -> tuple[list[BatchOp], dict[int, list[tuple[int, bytes]]]]:
    ops = [acked(0, 0, 0, 2, 0), acked(1, 0, 0, 1, 2), acked(0, 0, 2, 3, 3), acked(0, 1, 0, 1, 0)]
    return ops, {0: log_of(*ops[:3]), 1: log_of(ops[3])}


def test_clean_history_has_no_anomaly() -> None:
    ops, final = clean()
    stored = stamp(build_batch([(None, v) for _, v in final[0]]), 0, 1)
    res = check(ops, final, consumed={0: final[0][:2]}, replicas={0: {1: stored, 2: stored}}, images={1: "a", 2: "a"})
    assert res.ok, res.examples
    assert (res.sent, res.acknowledged, res.read, res.consumed) == (7, 7, 7, 2)


def test_lost_acknowledged_record() -> None:
    ops, final = clean()
    final[0] = [r for r in final[0] if r[0] != 4]  # offset 4 = producer 0, seq 3
    res = check(ops, final)
    assert res.lost == 1 and not res.ok
    assert "chaos:0:0:3" in res.examples["lost"][0] and "offset 4" in res.examples["lost"][0]


def test_acknowledged_offset_changed() -> None:
    ops, final = clean()
    final[1] = [(1, final[1][0][1])]  # told offset 0, found at 1
    res = check(ops, final)
    assert res.offset_changed == 1 and res.lost == 0 and not res.ok


def test_record_never_sent() -> None:
    ops, final = clean()
    final[1].append((1, encode_value(7, 1, 0)))  # no producer 7
    final[1].append((2, b"garbage"))
    final[1].append((3, encode_value(0, 0, 0)))  # sent, but to partition 0
    res = check(ops, final)
    assert res.unexpected == 3 and not res.ok


def test_failed_batch_in_the_log_is_unexpected_and_unknown_is_allowed() -> None:
    ops, final = clean()
    ops.append(BatchOp(2, 1, 0, 1, status=FAILED, attempts=3, last_error="LEADER_NOT_AVAILABLE"))
    ops.append(BatchOp(3, 1, 0, 1, status=UNKNOWN))
    ops.append(BatchOp(4, 1, 0, 1, status=UNKNOWN))
    final[1] += [(1, encode_value(3, 1, 0))]  # an unknown-outcome batch that made it: fine
    assert check(ops, final).ok
    final[1] += [(2, encode_value(2, 1, 0))]
    res = check(ops, final)
    assert res.unexpected == 1 and res.failed == 1 and res.unknown == 2 and res.unknown_present == 1


def test_duplicate() -> None:
    ops, final = clean()
    final[1].append((1, final[1][0][1]))
    res = check(ops, final)
    assert res.duplicated == 1 and not res.ok


def test_per_producer_order() -> None:
    ops = [acked(0, 0, 0, 1, 1), acked(0, 0, 1, 1, 0)]  # seq 1 written before seq 0
    final = {0: [(0, encode_value(0, 0, 1)), (1, encode_value(0, 0, 0))]}
    res = check(ops, final)
    assert res.reordered == 1 and res.lost == 0 and not res.ok
    # Other producers interleaving is not reordering.
    ops2, final2 = clean()
    assert check(ops2, final2).reordered == 0


def test_offsets_must_strictly_increase() -> None:
    ops = [BatchOp(0, 0, 0, 1, status=UNKNOWN), BatchOp(0, 0, 1, 1, status=UNKNOWN)]
    res = check(ops, {0: [(5, encode_value(0, 0, 0)), (5, encode_value(0, 0, 1))]})
    assert res.nonmonotonic == 1 and not res.ok


def test_consumer_read_later_lost_or_rewritten() -> None:
    ops, final = clean()
    consumed = {0: [(0, final[0][0][1]), (5, encode_value(0, 0, 4)), (9, b"x")]}
    consumed[0][1] = (5, encode_value(1, 0, 0))  # read one thing at 5, the final log has another
    res = check(ops, final, consumed=consumed)
    assert res.consumed_changed == 2 and not res.ok


def test_divergent_replicas_by_bytes_and_by_content() -> None:
    ops, final = clean()
    batch = stamp(build_batch([(None, v) for _, v in final[1]]), 0, 1)
    assert decode_log(batch) == final[1]
    assert check(ops, final, replicas={1: {1: batch, 2: batch, 3: batch}}).ok
    res = check(ops, final, replicas={1: {1: batch, 2: batch, 3: batch[:-1] + bytes([batch[-1] ^ 1])}})
    assert res.divergent_replicas == 1 and "node 3" in res.examples["divergent_replicas"][0]
    other = stamp(build_batch([(None, b"something else")]), 0, 1)
    res = check(ops, final, replicas={1: {1: other, 2: other, 3: other}})
    assert res.divergent_replicas == 3  # the replicas agree, but not with what the cluster served


def test_divergent_images() -> None:
    ops, final = clean()
    res = check(ops, final, images={1: {"t": 1}, 2: {"t": 1}, 3: {"t": 2}})
    assert res.divergent_images == 1 and "[3]" in res.examples["divergent_images"][0]


def test_unhealthy_cluster_is_an_anomaly() -> None:
    ops, final = clean()
    assert not check(ops, final, unhealthy="partitions [2] lack a leader").ok


def test_failover_times() -> None:
    ops = [acked(0, 0, 0, 1, 0, t=10.001, by="victim"),  # answered by the dying leader: ignored
           acked(0, 0, 1, 1, 1, t=10.5, by="n2"), acked(0, 1, 0, 1, 0, t=10.2, by="n2"),
           acked(0, 0, 2, 1, 2, t=11.0, by="n2")]
    kill = FaultEvent(10.0, "kill-leader", 1, "kill", was_controller=True, led_partitions=[0, 1, 2],
                      controller_failover_s=0.3, address="victim")
    lf = leader_failover(ops, [kill, FaultEvent(10.1, "pause", 2, "pause", led_partitions=[0])])
    assert sorted(round(s) for s in lf.samples_ms) == [200, 500] and lf.never == 1
    st = lf.stats()
    assert st["median_ms"] == 350 and st["max_ms"] == 500 and st["p99_ms"] == 500
    cf = controller_failover([kill])
    assert cf.samples_ms == [300.0]
    line = summary_line(check(ops[1:], {0: [(1, encode_value(0, 0, 1)), (2, encode_value(0, 0, 2))],
                                         1: [(0, encode_value(0, 1, 0))]}), lf, cf)
    assert line.startswith("chaos OK: sent=3 acknowledged=3 failed=0 unknown=0 lost=0 duplicated=0")
    assert "leader_failover[median=350ms p99=500ms max=500ms n=2]" in line
    assert "controller_failover[median=300ms" in line


def test_cli_rejects_unknown_faults(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_args(["--seed", "4", "--faults", "kill-leader,pause", "--gap", "1,2"])
    assert cfg.faults == ["kill-leader", "pause"] and cfg.gap_s == (1.0, 2.0) and cfg.seed == 4
    with pytest.raises(SystemExit):
        parse_args(["--faults", "kill-leader,meteor"])
    assert "meteor" in capsys.readouterr().err
