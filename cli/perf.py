"""`raftlog perf ...`: measured speed, reported as numbers (never asserted in tests)."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import click
import grpc

from cli.common import bootstrap_option, bootstrap_servers, fail
from cli.local_cluster import LocalCluster, port_is_free, wait_for
from cli.quorum import describe_quorum
from raftlog.errors import KafkaError
from raftlog.status import kafka_error_from_rpc
from raftlog.v1 import metadata_pb2, raft_pb2, raft_pb2_grpc


@click.group()
def perf() -> None:
    """Benchmarks against a running cluster."""


@perf.command()
@bootstrap_option
@click.option("--count", default=10_000, show_default=True, type=click.IntRange(1, 10_000_000),
              help="How many metadata records to commit.")
@click.option("--concurrency", default=64, show_default=True, type=click.IntRange(1, 4096),
              help="Propose calls in flight at once.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1, 10_000),
              help="Records per Propose call.")
@click.option("--timeout-s", default=120.0, show_default=True, help="Give up after this long.")
def metadata(bootstrap_server: str | None, count: int, concurrency: int, batch: int,
             timeout_s: float) -> None:
    """Commit COUNT NoOp metadata records through the leader; print commits/s as JSON."""
    servers = bootstrap_servers(bootstrap_server)
    try:
        view = describe_quorum(servers)
    except KafkaError as err:
        fail(str(err))
        return
    leader = next((v["address"] for v in view["voters"] if v["node_id"] == view["leader_id"]), None)
    if leader is None:
        fail("no leader known; is the quorum up?")
        return
    try:
        result = asyncio.run(_propose_burst(leader, count, concurrency, batch, timeout_s))
    except KafkaError as err:
        fail(str(err))
        return
    click.echo(json.dumps(result))


async def _propose_burst(leader: str, count: int, concurrency: int, batch: int,
                         timeout_s: float) -> dict[str, float | int | str]:
    record = metadata_pb2.MetadataRecord(no_op=metadata_pb2.NoOpRecord()).SerializeToString()
    latencies: list[float] = []
    remaining = count
    deadline = time.monotonic() + timeout_s

    async with grpc.aio.insecure_channel(leader) as channel:
        stub = raft_pb2_grpc.QuorumStub(channel)

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.monotonic() < deadline:
                n = min(batch, remaining)
                remaining -= n
                started = time.perf_counter()
                try:
                    await stub.Propose(raft_pb2.ProposeRequest(records=[record] * n),
                                       timeout=max(0.1, deadline - time.monotonic()))
                except grpc.RpcError as err:  # grpc.aio raises AioRpcError, an RpcError
                    raise kafka_error_from_rpc(err) from None
                latencies.extend([time.perf_counter() - started] * n)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    done = len(latencies)
    latencies.sort()
    return {
        "leader": leader,
        "committed": done,
        "seconds": round(elapsed, 3),
        "commits_per_s": round(done / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        "p99_ms": round(latencies[int(0.99 * (done - 1))] * 1000, 2) if latencies else 0.0,
        "concurrency": concurrency,
        "batch": batch,
    }


@perf.command()
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Leader kills to measure.")
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(3, 9))
@click.option("--base-port", default=9191, show_default=True, type=click.IntRange(1, 65535))
@click.option("--data-dir", default=None, type=click.Path(path_type=Path),
              help="Where the throwaway cluster lives (default: a temporary directory).")
def failover(runs: int, nodes: int, base_port: int, data_dir: Path | None) -> None:
    """Start a throwaway local cluster, SIGKILL its leader RUNS times, and report the
    time until the survivors agree on a new leader (median, max) as JSON."""
    ports = list(range(base_port, base_port + nodes))
    taken = [p for p in ports if not port_is_free("127.0.0.1", p)]
    if taken:
        fail(f"port already in use: {taken} (try --base-port)")
    with tempfile.TemporaryDirectory(prefix="raftlog-failover-") as tmp:
        cluster = LocalCluster.layout(nodes, "127.0.0.1", ports, data_dir or Path(tmp))
        cluster.start()
        try:
            times = [_one_failover(cluster) for _ in range(runs)]
        except (TimeoutError, RuntimeError) as err:
            fail(str(err))
            return
        finally:
            cluster.stop_all()
    click.echo(json.dumps({
        "runs": runs,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "all_ms": [round(t * 1000, 1) for t in times],
    }))


def _one_failover(cluster: LocalCluster) -> float:
    leader, term = cluster.wait_for_leader(timeout_s=30)
    # Every voter caught up first, so each run starts from the same healthy state.
    wait_for(lambda: (v := cluster.describe()) and v["voters"] and v["max_follower_lag"] == 0,
             30, "followers at lag 0")
    survivors = [n.node_id for n in cluster.nodes if n.node_id != leader]
    killed_at = time.monotonic()
    cluster.node(leader).kill()
    wait_for(
        lambda: (agreed := cluster.agreed_leader(survivors)) and agreed[1] > term and agreed,
        30, "survivors to agree on a new leader", interval_s=0.005,
    )
    elapsed = time.monotonic() - killed_at
    cluster.start(leader)
    return elapsed
