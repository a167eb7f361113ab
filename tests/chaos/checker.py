"""The checks, Jepsen's way, over a finished history. Pure functions of plain data.

Given what producers were told, what consumers read, what the healed cluster serves
from the beginning of every partition, every replica's stored bytes below the high
watermark and every node's MetadataImage, ``check`` counts:

- lost: an acknowledged record that is nowhere in the log;
- offset_changed: an acknowledged record that is in the log, but not at the offset
  its producer was told (the offset the producer was told must hold that value);
- unexpected: a record in the log that no producer ever sent (or sent to another
  partition, or whose batch provably never reached a broker: status ``failed``);
- duplicated: every extra copy of a value (idempotence is on: one copy at most);
- nonmonotonic: offsets not strictly increasing in what the cluster served;
- reordered: a producer's record that comes after one of its later records in the
  same partition (its per-partition sequence went backwards);
- consumed_changed: a record a consumer read (so below the HW at the time) that the
  final log does not hold at that offset: a committed read later lost or rewritten;
- divergent_replicas: replicas whose stored bytes below the HW differ from the other
  replicas', or decode to something else than the cluster served;
- divergent_images: nodes whose MetadataImage (rebuilt at a common offset) differs
  from the majority's.

Any of these (or ``unhealthy``: the cluster did not come back after healing) is an
anomaly. ``failover`` turns fault events and acknowledgement times into the figures
the summary line reports.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raftlog.records import read_records, split_batches
from tests.chaos.history import ACKED, FAILED, UNKNOWN, BatchOp, FaultEvent, decode_value

ANOMALY_FIELDS = (
    "lost", "offset_changed", "unexpected", "duplicated", "nonmonotonic", "reordered",
    "consumed_changed", "divergent_replicas", "divergent_images",
)
MAX_EXAMPLES = 20


@dataclass
class CheckResult:
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0
    unknown_present: int = 0
    read: int = 0
    consumed: int = 0
    lost: int = 0
    offset_changed: int = 0
    unexpected: int = 0
    duplicated: int = 0
    nonmonotonic: int = 0
    reordered: int = 0
    consumed_changed: int = 0
    divergent_replicas: int = 0
    divergent_images: int = 0
    unhealthy: str = ""
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def anomalies(self) -> int:
        return sum(int(getattr(self, name)) for name in ANOMALY_FIELDS) + (1 if self.unhealthy else 0)

    @property
    def ok(self) -> bool:
        return self.anomalies == 0

    def example(self, kind: str, text: str) -> None:
        bucket = self.examples.setdefault(kind, [])
        if len(bucket) < MAX_EXAMPLES:
            bucket.append(text)


def decode_log(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, value) of every record in concatenated RecordBatch v2 bytes."""
    return [(r.offset, r.value or b"") for _, b in split_batches(data) for r in read_records(b)]


def check(
    ops: Sequence[BatchOp],
    final: Mapping[int, Sequence[tuple[int, bytes]]],
    consumed: Mapping[int, Sequence[tuple[int, bytes]]] | None = None,
    replicas: Mapping[int, Mapping[int, bytes]] | None = None,
    images: Mapping[int, Hashable | Any] | None = None,
    unhealthy: str = "",
) -> CheckResult:
    """``final``: per partition, what the healed cluster serves from offset 0 up to the
    HW. ``replicas``: per partition, node -> stored bytes below that HW. ``images``:
    node -> MetadataImage at one common offset (anything comparable with ==)."""
    res = CheckResult(unhealthy=unhealthy)
    if unhealthy:
        res.example("unhealthy", unhealthy)

    # What was sent: value -> (batch, index in batch).
    sent: dict[bytes, tuple[BatchOp, int]] = {}
    for op in ops:
        for i, value in enumerate(op.values()):
            sent[value] = (op, i)
        res.sent += op.count
        if op.status == ACKED:
            res.acknowledged += op.count
        elif op.status == FAILED:
            res.failed += op.count
        else:
            res.unknown += op.count  # UNKNOWN, or still PENDING when the run ended

    # What is there: value -> [(partition, offset)].
    where: dict[bytes, list[tuple[int, int]]] = {}
    for partition in sorted(final):
        prev = -1
        last_seq: dict[int, int] = {}
        for offset, value in final[partition]:
            res.read += 1
            if offset <= prev:
                res.nonmonotonic += 1
                res.example("nonmonotonic", f"partition {partition}: offset {offset} after {prev}")
            prev = max(prev, offset)
            copies = where.setdefault(value, [])
            copies.append((partition, offset))
            if len(copies) > 1:
                res.duplicated += 1
                res.example("duplicated", f"{value.decode(errors='replace')} at {copies}")
            origin = sent.get(value)
            decoded = decode_value(value)
            if origin is None or decoded is None or origin[0].partition != partition:
                res.unexpected += 1
                res.example("unexpected", f"partition {partition} offset {offset}: {value[:80]!r} was never sent there")
                continue
            op, _ = origin
            if op.status == FAILED:
                res.unexpected += 1
                res.example("unexpected", f"partition {partition} offset {offset}: {value.decode()} belongs to a"
                            f" batch that never reached a broker (attempts {op.attempts}, {op.last_error})")
            if op.status == UNKNOWN and len(copies) == 1:
                res.unknown_present += 1
            producer, _, seq = decoded
            if seq < last_seq.get(producer, -1):
                res.reordered += 1
                res.example("reordered", f"partition {partition} offset {offset}: producer {producer} seq {seq}"
                            f" after seq {last_seq[producer]}")
            else:
                last_seq[producer] = seq

    for value, (op, i) in sent.items():
        if op.status != ACKED:
            continue
        assert op.offset is not None
        told = (op.partition, op.offset + i)
        copies = where.get(value, [])
        if not copies:
            res.lost += 1
            res.example("lost", f"{value.decode()} acknowledged at partition {told[0]} offset {told[1]}"
                        f" by {op.acked_by or '?'} (t={op.t_done:.3f}) is not in the log")
        elif told not in copies:
            res.offset_changed += 1
            res.example("offset_changed", f"{value.decode()} acknowledged at offset {told[1]} is at {copies}")

    # Consumers only ever see records below the HW: each must still be there.
    at: dict[tuple[int, int], bytes] = {(p, o): v for p, log in final.items() for o, v in log}
    for partition, reads in (consumed or {}).items():
        for offset, value in reads:
            res.consumed += 1
            held = at.get((partition, offset))
            if held != value:
                res.consumed_changed += 1
                res.example("consumed_changed", f"partition {partition} offset {offset}: a consumer read"
                            f" {value[:80]!r}, the final log holds {held[:80] if held else None!r}")

    for partition, stored in (replicas or {}).items():
        if not stored:
            continue
        majority, _ = Counter(stored.values()).most_common(1)[0]
        expected = list(final.get(partition, []))
        for node, data in sorted(stored.items()):
            if data != majority:
                res.divergent_replicas += 1
                res.example("divergent_replicas", f"partition {partition}: node {node} holds {len(data)} bytes"
                            f" below the HW, the other replicas {len(majority)} (first difference at byte"
                            f" {_first_difference(data, majority)})")
            else:
                try:
                    decoded_log = decode_log(data)
                except Exception as exc:  # corrupt stored bytes are divergence too
                    decoded_log = [(-1, repr(exc).encode())]
                if decoded_log != expected:
                    res.divergent_replicas += 1
                    res.example("divergent_replicas", f"partition {partition}: node {node}'s stored records"
                                f" ({len(decoded_log)}) differ from what the cluster served ({len(expected)})")

    if images:
        nodes = sorted(images)
        groups: list[list[int]] = []
        for node in nodes:
            for group in groups:
                if images[group[0]] == images[node]:
                    group.append(node)
                    break
            else:
                groups.append([node])
        groups.sort(key=len, reverse=True)
        for group in groups[1:]:
            res.divergent_images += len(group)
            res.example("divergent_images", f"nodes {group} rebuilt another MetadataImage than nodes {groups[0]}")
    return res


def _first_difference(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# ----------------------------------------------------------------------- failover
@dataclass
class Failover:
    samples_ms: list[float] = field(default_factory=list)
    never: int = 0
    """Kills after which a partition the victim led saw no acknowledged write at all."""

    def stats(self) -> dict[str, float | int | None]:
        s = sorted(self.samples_ms)
        if not s:
            return {"n": 0, "median_ms": None, "p99_ms": None, "max_ms": None, "never": self.never}
        p99 = s[min(len(s) - 1, max(0, -(-99 * len(s) // 100) - 1))]  # nearest rank
        return {"n": len(s), "median_ms": round(statistics.median(s), 1), "p99_ms": round(p99, 1),
                "max_ms": round(s[-1], 1), "never": self.never}

    def brief(self) -> str:
        st = self.stats()
        if not st["n"]:
            return "n=0"
        return f"median={st['median_ms']:.0f}ms p99={st['p99_ms']:.0f}ms max={st['max_ms']:.0f}ms n={st['n']}"


def leader_failover(ops: Sequence[BatchOp], faults: Sequence[FaultEvent]) -> Failover:
    """For every SIGKILL of a node that led partitions: per partition it led, the time
    from the kill to the next acknowledgement of a write to that partition."""
    acks: dict[int, list[tuple[float, str]]] = {}
    for op in ops:
        if op.status == ACKED and op.t_done is not None:
            acks.setdefault(op.partition, []).append((op.t_done, op.acked_by))
    for times in acks.values():
        times.sort()
    out = Failover()
    for event in faults:
        if event.action != "kill":
            continue
        for partition in event.led_partitions:
            # An answer the victim sent just before the signal landed is not a failover.
            after = [t for t, by in acks.get(partition, []) if t > event.t and by != event.address]
            if after:
                out.samples_ms.append((after[0] - event.t) * 1000)
            else:
                out.never += 1
    return out


def controller_failover(faults: Sequence[FaultEvent]) -> Failover:
    """SIGKILL of the active controller to the next committed metadata change (the
    new leader's quorum high watermark past the one seen just before the kill)."""
    out = Failover()
    for event in faults:
        if event.action == "kill" and event.was_controller:
            if event.controller_failover_s is None:
                out.never += 1
            else:
                out.samples_ms.append(event.controller_failover_s * 1000)
    return out


def summary_line(res: CheckResult, leader: Failover, controller: Failover) -> str:
    verdict = "OK" if res.ok else "ANOMALIES"
    return (
        f"chaos {verdict}: sent={res.sent} acknowledged={res.acknowledged} failed={res.failed}"
        f" unknown={res.unknown} lost={res.lost} duplicated={res.duplicated} reordered={res.reordered}"
        f" unexpected={res.unexpected} offset_changed={res.offset_changed} nonmonotonic={res.nonmonotonic}"
        f" consumed_changed={res.consumed_changed} divergent_replicas={res.divergent_replicas}"
        f" divergent_images={res.divergent_images}"
        + (f" unhealthy={res.unhealthy!r}" if res.unhealthy else "")
        + f" | leader_failover[{leader.brief()}] controller_failover[{controller.brief()}]"
    )
