"""`raftlog perf ...`: measured speed, reported as numbers (never asserted in tests)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import click
import grpc

from cli.common import bootstrap_option, bootstrap_servers, fail
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
