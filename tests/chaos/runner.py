"""One chaos run: cluster up, topic, workload + nemesis for ``duration``, heal, check.

    python -m tests.chaos --seed 1 --duration 600            # the soak
    python -m tests.chaos --seed 7 --duration 60 --faults kill-leader,pause

Prints progress on stderr, ONE summary line on stdout, writes the full result (counts,
examples of every anomaly with offsets and nodes, failover samples, the fault log) to
``--json``, and exits 0 when clean, 1 on any anomaly, 2 when the run itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import read_records, split_batches
from raftlog.v1 import admin_pb2, broker_pb2
from tests.chaos.checker import CheckResult, check, controller_failover, leader_failover, summary_line
from tests.chaos.drivers import FAULTS, Driver, ProcessDriver
from tests.chaos.nemesis import Nemesis
from tests.chaos.workload import Rpc, Workload

TOPIC = "chaos"
UNSAFE_ACKS_ENV = "RAFTLOG_DEBUG_UNSAFE_ACKS"


@dataclass
class RunConfig:
    seed: int = 1
    duration_s: float = 60.0
    faults: list[str] = field(default_factory=lambda: list(FAULTS))
    mode: str = "processes"
    nodes: int = 3
    partitions: int = 6
    producers: int = 3
    consumers: int = 2
    rate: float = 20.0
    session_timeout_ms: int = 3000
    gap_s: tuple[float, float] = (2.0, 6.0)
    give_up_s: float = 30.0
    snapshot_every: int = 10_000_000
    data_dir: Path | None = None
    keep_data: bool = False
    json_path: Path | None = None
    unsafe_acks: bool = False
    quiet: bool = False


@dataclass
class RunReport:
    config: dict[str, Any]
    result: CheckResult
    summary: str
    leader_failover: dict[str, Any]
    controller_failover: dict[str, Any]
    faults: list[dict[str, Any]]
    producer_errors: dict[str, int]
    consumer_errors: dict[str, int]
    notes: list[str]
    data_dir: str
    wall_s: float

    @property
    def ok(self) -> bool:
        return self.result.ok

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["result"] = {**asdict(self.result), "anomalies": self.result.anomalies, "ok": self.result.ok}
        return out


def make_driver(cfg: RunConfig, data_dir: Path) -> Driver:
    node_args = ("--broker-session-timeout-ms", str(cfg.session_timeout_ms),
                 "--snapshot-every", str(cfg.snapshot_every))
    env = {UNSAFE_ACKS_ENV: "1"} if cfg.unsafe_acks else None
    if cfg.mode == "processes":
        return ProcessDriver(cfg.nodes, data_dir, node_args, env=env, want_partition="partition" in cfg.faults)
    if cfg.mode == "containers":
        from tests.chaos.containers import ContainerDriver

        return ContainerDriver(cfg.nodes, data_dir, node_args, env=env)
    raise ValueError(f"unknown mode {cfg.mode!r}")


def run(cfg: RunConfig) -> RunReport:
    """The whole run; the driver's nodes are always cleaned up (killed by PID /
    removed by name) before this returns."""
    owns_dir = cfg.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix=f"raftlog-chaos-{cfg.seed}-")) if owns_dir else cfg.data_dir
    assert data_dir is not None
    data_dir.mkdir(parents=True, exist_ok=True)
    driver = make_driver(cfg, data_dir)
    unsupported = {f: why for f, why in driver.supported_faults().items() if f in cfg.faults and why}
    if unsupported:
        raise SystemExit(f"faults not supported in {cfg.mode} mode here: {unsupported}")
    try:
        report = asyncio.run(_run(cfg, driver, data_dir))
    finally:
        driver.cleanup()
    if cfg.json_path is not None:
        cfg.json_path.parent.mkdir(parents=True, exist_ok=True)
        cfg.json_path.write_text(json.dumps(report.to_json(), indent=1, default=str))
    if report.ok and owns_dir and not cfg.keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)
        report.data_dir = f"{data_dir} (removed: clean run)"
    return report


async def _run(cfg: RunConfig, driver: Driver, data_dir: Path) -> RunReport:
    t0 = time.monotonic()
    notes: list[str] = []

    def log(text: str) -> None:
        if not cfg.quiet:
            print(text, file=sys.stderr, flush=True)

    log(f"[chaos] seed={cfg.seed} mode={cfg.mode} nodes={cfg.nodes} faults={','.join(cfg.faults)}"
        f" duration={cfg.duration_s:.0f}s data={data_dir}")
    await asyncio.to_thread(driver.start)
    workload = Workload(driver.addresses, TOPIC, cfg.partitions, cfg.producers, cfg.consumers, cfg.seed,
                        rate=cfg.rate, give_up_s=cfg.give_up_s)
    rpc = workload.rpc
    nemesis = Nemesis(driver, rpc, TOPIC, cfg.faults, random.Random(cfg.seed), workload.history,
                      cfg.session_timeout_ms / 1000, gap_s=cfg.gap_s, log=log, t0=t0)
    try:
        await create_topic(rpc, cfg.partitions, min(3, cfg.nodes))
        why = await nemesis.wait_healthy(60)
        if why is not None:
            raise RuntimeError(f"the new cluster never became whole: {why}")
        await workload.start()
        warm = time.monotonic() + 30
        while workload.acknowledged() == 0:
            if time.monotonic() > warm:
                raise RuntimeError("no write was acknowledged within 30 s of starting")
            await asyncio.sleep(0.05)
        log(f"[chaos +{time.monotonic() - t0:7.2f}s] workload running; nemesis starts")
        await nemesis.run(time.monotonic() + cfg.duration_s, abort=workload.crashed)
        if (crash := workload.crashed()) is not None:
            raise RuntimeError(f"workload broke: {crash}")

        log(f"[chaos +{time.monotonic() - t0:7.2f}s] healing: resume, reconnect, restart everything")
        await nemesis.heal_all()
        unhealthy = await nemesis.wait_healthy(90) or ""
        if unhealthy:
            unhealthy = f"not whole 90 s after healing: {unhealthy}"
        await workload.stop_producers(cfg.give_up_s + 15)
        # Read once the cluster is whole before and after the read: with full ISRs and
        # every leader's HW at its log end, every replica holds everything read.
        for _ in range(10):
            final, hws, why = await read_everything(rpc, cfg.partitions)
            after = await nemesis.healthy()
            if why or after is None:
                break
            await nemesis.wait_healthy(30)
        else:
            why = f"the cluster did not stay whole around the final read: {after}"
        if why and not unhealthy:
            unhealthy = why
        # Consumers had their chance to read everything; now stop them.
        catch_up = time.monotonic() + 30
        while any(workload.positions[p] < hws.get(p, 0) for p in range(cfg.partitions)):
            if time.monotonic() > catch_up:
                notes.append(f"consumers did not reach the HW: {workload.positions} < {hws}")
                break
            await asyncio.sleep(0.1)
        await workload.stop_consumers()
        desc = await rpc.any_node("DescribeTopic", admin_pb2.DescribeTopicRequest(name=TOPIC), 2.0, admin=True)
        topic_id = desc.topic_id
        replica_sets = {p.partition: list(p.replicas) for p in desc.partitions}
    finally:
        await workload.close()

    log(f"[chaos +{time.monotonic() - t0:7.2f}s] stopping the nodes to compare their stores")
    codes = await asyncio.to_thread(driver.stop_all)
    bad_exits = {n: c for n, c in codes.items() if c not in (0, None)}
    if bad_exits:
        notes.append(f"nodes exited non-zero on controlled shutdown: {bad_exits}")
    replicas = await asyncio.to_thread(read_replicas, driver, topic_id, replica_sets, hws)
    images, image_note = await asyncio.to_thread(read_images, driver)
    if image_note:
        notes.append(image_note)

    history = workload.history
    result = check(history.ops, final, history.consumed, replicas, images, unhealthy=unhealthy)
    lf = leader_failover(history.ops, history.faults)
    cf = controller_failover(history.faults)
    return RunReport(
        config={**asdict(cfg), "data_dir": str(data_dir), "json_path": str(cfg.json_path)},
        result=result, summary=summary_line(result, lf, cf),
        leader_failover={**lf.stats(), "samples_ms": [round(s, 1) for s in lf.samples_ms]},
        controller_failover={**cf.stats(), "samples_ms": [round(s, 1) for s in cf.samples_ms]},
        faults=history.faults_json(), producer_errors=history.producer_errors,
        consumer_errors=history.consumer_errors, notes=notes, data_dir=str(data_dir),
        wall_s=round(time.monotonic() - t0, 1),
    )


async def create_topic(rpc: Rpc, partitions: int, rf: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    request = admin_pb2.CreateTopicRequest(name=TOPIC, partitions=partitions, replication_factor=rf,
                                           configs={"min.insync.replicas": "2"})
    while True:
        try:
            await rpc.any_node("CreateTopic", request, 5.0, admin=True)
            return
        except KafkaError as err:
            if err.code == ErrorCode.TOPIC_ALREADY_EXISTS:
                return
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def read_everything(rpc: Rpc, partitions: int, timeout_s: float = 60
                          ) -> tuple[dict[int, list[tuple[int, bytes]]], dict[int, int], str]:
    """Once the leaders' HW equals their log end (nothing in flight), every partition
    from offset 0 up to the HW, from its leader."""
    final: dict[int, list[tuple[int, bytes]]] = {}
    hws: dict[int, int] = {}
    deadline = time.monotonic() + timeout_s
    for partition in range(partitions):
        while True:
            try:
                records, hw = await _read_partition(rpc, partition)
                final[partition], hws[partition] = records, hw
                break
            except (KafkaError, _NotSettled) as err:
                rpc.forget(partition, None)
                if time.monotonic() > deadline:
                    return final, hws, f"could not read partition {partition} to its end: {err}"
                await asyncio.sleep(0.2)
    return final, hws, ""


class _NotSettled(Exception):
    pass


async def _read_partition(rpc: Rpc, partition: int) -> tuple[list[tuple[int, bytes]], int]:
    address = await rpc.leader(partition)
    if address is None:
        raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, f"partition {partition} has no leader")
    records: list[tuple[int, bytes]] = []
    offset, hw = 0, -1
    while True:
        resp = await rpc.call(address, "Fetch", broker_pb2.FetchRequest(
            topic=TOPIC, partition=partition, offset=offset, max_bytes=1 << 20, max_wait_ms=0, min_bytes=1,
            current_leader_epoch=-1), 5.0)
        if hw < 0:
            if resp.high_watermark != resp.log_end_offset:
                raise _NotSettled(f"HW {resp.high_watermark} < log end {resp.log_end_offset}")
            hw = resp.high_watermark
        got = [(r.offset, r.value or b"") for _, b in split_batches(resp.records)
               for r in read_records(b) if r.offset >= offset]
        if not got:
            break
        records.extend(got)
        offset = got[-1][0] + 1
        if offset >= hw:
            break
    return [(o, v) for o, v in records if o < hw], hw


def read_replicas(driver: Driver, topic_id: str, replica_sets: dict[int, list[int]],
                  hws: dict[int, int]) -> dict[int, dict[int, bytes]]:
    from tests.cluster.dataplane import replica_bytes

    return {p: {node: replica_bytes(driver.data_dir(node), topic_id, p, hws.get(p, 0)) for node in nodes}
            for p, nodes in replica_sets.items()}


def read_images(driver: Driver) -> tuple[dict[int, Any], str]:
    """Every node's MetadataImage rebuilt from its stored Raft log at one common offset."""
    from tests.cluster.committed import committed_state

    commits = {n: committed_state(driver.data_dir(n)).commit for n in driver.node_ids}
    common = min(commits.values())
    images: dict[int, Any] = {}
    skipped = []
    for n in driver.node_ids:
        try:
            images[n] = committed_state(driver.data_dir(n), upto=common).image
        except ValueError as exc:  # a snapshot past the common offset: cannot rebuild there
            skipped.append(f"node {n}: {exc}")
    note = f"images compared at metadata offset {common} (commits {commits})"
    if skipped:
        note += "; not comparable: " + "; ".join(skipped)
    return images, note


# ---------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None = None) -> RunConfig:
    fault_help = "\n".join(f"  {name:<16} {text}" for name, text in FAULTS.items())
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Jepsen-style chaos run against a raftlog cluster: idempotent acks=all producers and"
                    " consumers on a topic with replication factor 3 and min.insync.replicas=2, a seeded"
                    " nemesis, then a checker. Prints one summary line; exit 0 clean, 1 anomalies, 2 error.",
        epilog="faults:\n" + fault_help + "\n\nAt most one node is down, paused or cut off at a time; before"
               " each fault the cluster is made whole again (restart, full ISRs).\n\nsoak: python -m"
               " tests.chaos --duration 600 --seed 1",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the nemesis schedule and the workload")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of faults (healing and"
                        " checking come after)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help="comma-separated fault names (default: all; see below)")
    parser.add_argument("--mode", choices=("processes", "containers"), default="processes")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="batches/s per producer (1-3 records each)")
    parser.add_argument("--session-timeout-ms", type=int, default=3000,
                        help="the nodes' broker.session.timeout.ms (pauses and partitions last past it)")
    parser.add_argument("--gap", default="2,6", help="seconds between faults: MIN,MAX (seeded uniform)")
    parser.add_argument("--give-up", type=float, default=30.0,
                        help="seconds a producer resends one batch before giving up on it")
    parser.add_argument("--snapshot-every", type=int, default=10_000_000,
                        help="the nodes' --snapshot-every (default: none, so images compare at one offset)")
    parser.add_argument("--data-dir", type=Path, help="keep node data and logs here (default: a temp dir,"
                        " removed after a clean run)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temp data dir even when clean")
    parser.add_argument("--json", type=Path, dest="json_path", help="write the full result here")
    parser.add_argument("--debug-unsafe-acks", action="store_true",
                        help=f"TEST ONLY: start nodes with {UNSAFE_ACKS_ENV}=1 (acks=all answered before the"
                             " HW passes): the checker must then report loss")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        parser.error(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    lo, _, hi = args.gap.partition(",")
    return RunConfig(
        seed=args.seed, duration_s=args.duration, faults=faults, mode=args.mode, nodes=args.nodes,
        partitions=args.partitions, producers=args.producers, consumers=args.consumers, rate=args.rate,
        session_timeout_ms=args.session_timeout_ms, gap_s=(float(lo), float(hi or lo)), give_up_s=args.give_up,
        snapshot_every=args.snapshot_every, data_dir=args.data_dir, keep_data=args.keep_data,
        json_path=args.json_path, unsafe_acks=args.debug_unsafe_acks, quiet=args.quiet,
    )


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through run()'s cleanup: our nodes die with us


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        report = run(cfg)
    except (RuntimeError, TimeoutError, KafkaError, OSError) as exc:
        print(f"chaos ERROR: the run itself failed: {exc}", flush=True)
        return 2
    print(report.summary, flush=True)
    if not report.ok:
        for kind, examples in report.result.examples.items():
            for text in examples[:5]:
                print(f"  {kind}: {text}", file=sys.stderr)
        print(f"  evidence kept in {report.data_dir}", file=sys.stderr)
    for note in report.notes:
        print(f"  note: {note}", file=sys.stderr)
    return 0 if report.ok else 1
