"""`raftlog perf ...`: measured speed, reported as numbers (never asserted in tests)."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import click
import grpc

from raftlog.cli.common import bootstrap_option, bootstrap_servers, call_any, fail
from raftlog.cli.local_cluster import LocalCluster, port_is_free, wait_for
from raftlog.cli.quorum import describe_quorum
from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import build_batch
from raftlog.status import kafka_error_from_rpc
from raftlog.v1 import admin_pb2, admin_pb2_grpc, broker_pb2, broker_pb2_grpc


@click.group()
def perf() -> None:
    """Benchmarks against a running cluster."""


@perf.command()
@bootstrap_option
@click.option("--count", default=10_000, show_default=True, type=click.IntRange(1, 10_000_000),
              help="How many metadata records to commit.")
@click.option("--concurrency", default=64, show_default=True, type=click.IntRange(1, 4096),
              help="UpdateFeatures calls in flight at once.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1, 10_000),
              help="Feature updates (records) per UpdateFeatures call.")
@click.option("--timeout-s", default=120.0, show_default=True, help="Give up after this long.")
def metadata(bootstrap_server: str | None, count: int, concurrency: int, batch: int,
             timeout_s: float) -> None:
    """Commit COUNT metadata records through the active controller; print commits/s as JSON.

    Each call is an Admin.UpdateFeatures of BATCH features (perf.0, perf.1, ...):
    a real controller operation, so this measures the whole write path of the
    controller runtime (validation, one decision at a time, append, replication,
    commit, answer), not a bare Raft append."""
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
    latencies: list[float] = []
    remaining = count
    calls = 0
    deadline = time.monotonic() + timeout_s

    async with grpc.aio.insecure_channel(leader) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)

        async def worker() -> None:
            nonlocal remaining, calls
            while remaining > 0 and time.monotonic() < deadline:
                n = min(batch, remaining)
                remaining -= n
                calls += 1
                level = calls % 32768  # a new level each call, so every record is a change
                request = admin_pb2.UpdateFeaturesRequest(feature_updates=[
                    admin_pb2.FeatureUpdate(feature=f"perf.{j}", max_version_level=level) for j in range(n)
                ])
                started = time.perf_counter()
                try:
                    response = await stub.UpdateFeatures(
                        request, timeout=max(0.1, deadline - time.monotonic()))
                except grpc.RpcError as err:  # grpc.aio raises AioRpcError, an RpcError
                    raise kafka_error_from_rpc(err) from None
                failed = next((r.error for r in response.results if r.HasField("error")), None)
                if failed is not None:
                    raise KafkaError(ErrorCode(failed.error_code), failed.message)
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
@click.option("--target", default="controller", show_default=True,
              type=click.Choice(["controller", "partition-leader", "both"]),
              help="controller: time until the survivors agree on a new Raft leader; "
                   "partition-leader: time until the next acknowledged acks=all write; "
                   "both: the killed node leads the partition and is the active controller "
                   "(a fresh cluster per run).")
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(3, 9))
@click.option("--base-port", default=9191, show_default=True, type=click.IntRange(1, 65535))
@click.option("--data-dir", default=None, type=click.Path(path_type=Path),
              help="Where the throwaway cluster lives (default: a temporary directory).")
def failover(runs: int, target: str, nodes: int, base_port: int, data_dir: Path | None) -> None:
    """Start a throwaway local cluster, SIGKILL a leader RUNS times (restarting it in
    between), and report the failover times as JSON (median, max)."""
    ports = list(range(base_port, base_port + nodes))
    taken = [p for p in ports if not port_is_free("127.0.0.1", p)]
    if taken:
        fail(f"port already in use: {taken} (try --base-port)")
    details: list[dict[str, object]] = []
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="raftlog-failover-") as tmp:
        root = data_dir or Path(tmp)
        try:
            if target == "both":
                for run in range(runs):
                    # A fresh cluster per run: its first topic's partitions are spread so
                    # that the active controller leads one of them.
                    fresh = LocalCluster.layout(nodes, "127.0.0.1", ports, root / f"run-{run}")
                    fresh.start()
                    try:
                        fresh.wait_for_brokers(timeout_s=60)
                        _ensure_topic(fresh.addresses, "failover", nodes, 3)
                        elapsed, detail = _one_partition_failover(fresh, victim_is_controller=True)
                    finally:
                        fresh.stop_all()
                    times.append(elapsed)
                    details.append(detail)
            else:
                cluster = LocalCluster.layout(nodes, "127.0.0.1", ports, root)
                cluster.start()
                try:
                    if target == "controller":
                        times = [_one_controller_failover(cluster) for _ in range(runs)]
                    else:
                        cluster.wait_for_brokers(timeout_s=60)
                        _ensure_topic(cluster.addresses, "failover", 1, 3)
                        for _ in range(runs):
                            elapsed, detail = _one_partition_failover(cluster)
                            times.append(elapsed)
                            details.append(detail)
                finally:
                    cluster.stop_all()
        except (TimeoutError, RuntimeError, KafkaError) as err:
            fail(str(err))
            return
    result: dict[str, object] = {
        "target": target,
        "runs": runs,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "all_ms": [round(t * 1000, 1) for t in times],
    }
    if details:
        result["runs_detail"] = details
    click.echo(json.dumps(result))


def _one_controller_failover(cluster: LocalCluster) -> float:
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


def _partition_state(cluster: LocalCluster, partition: int = 0) -> broker_pb2.PartitionMetadata | None:
    for node in cluster.nodes:
        if not node.alive:
            continue
        with grpc.insecure_channel(node.address) as channel:
            try:
                md = broker_pb2_grpc.BrokerStub(channel).Metadata(broker_pb2.MetadataRequest(topics=["failover"]),
                                                                   timeout=2)
            except grpc.RpcError:
                continue
        for topic in md.topics:
            for part in topic.partitions:
                if part.partition == partition:
                    found: broker_pb2.PartitionMetadata = part
                    return found
    return None


def _one_partition_failover(
    cluster: LocalCluster, victim_is_controller: bool = False
) -> tuple[float, dict[str, object]]:
    """Kill a partition's leader while a writer sends acks=all records to it one at a
    time; the failover time is from the kill to the first acknowledgement after it.
    With ``victim_is_controller``, the partition is the one the active controller leads."""
    controller, _ = cluster.wait_for_leader(timeout_s=30)

    def healthy() -> broker_pb2.PartitionMetadata | None:
        for partition in range(len(cluster.nodes)):
            part = _partition_state(cluster, partition)
            if part is None or part.leader <= 0 or len(part.isr) != 3:
                return None
            if not victim_is_controller or part.leader == controller:
                return part
        return None

    part = wait_for(healthy, 60, "a partition with a full ISR")
    partition = part.partition
    victim = part.leader
    batch = build_batch([(None, b"x" * 100)])
    acked_at: list[tuple[float, float]] = []  # (sent, acknowledged)
    stop = threading.Event()

    def writer() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            state = _partition_state(cluster, partition)
            if state is None or state.leader <= 0:
                continue
            address = cluster.node(state.leader).address
            with grpc.insecure_channel(address) as channel:
                stub = broker_pb2_grpc.BrokerStub(channel)
                while not stop.is_set() and time.monotonic() < deadline:
                    sent = time.monotonic()
                    try:
                        stub.Produce(broker_pb2.ProduceRequest(topic="failover", partition=partition, records=batch,
                                                               acks=-1, timeout_ms=2000), timeout=3)
                    except grpc.RpcError:
                        break  # leader moved or died: look it up again
                    acked_at.append((sent, time.monotonic()))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(acked_at) >= 20, 30, "writes acknowledged before the kill")
        killed_at = time.monotonic()
        cluster.node(victim).kill()
        # The first write *sent* after the kill: one answered just before it is not a failover.
        after = wait_for(lambda: next((acked for sent, acked in acked_at if sent > killed_at), None), 60,
                         "an acknowledged write after the kill", interval_s=0.002)
    finally:
        stop.set()
        thread.join(timeout=10)
    cluster.start(victim)
    return after - killed_at, {"victim": victim, "victim_was_controller": victim == controller}


@perf.command()
@bootstrap_option
@click.option("--topic", default="perf", show_default=True, help="Created when missing.")
@click.option("--partitions", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--replication-factor", default=3, show_default=True, type=click.IntRange(1, 9))
@click.option("--records", default=100_000, show_default=True, type=click.IntRange(1, 100_000_000))
@click.option("--record-size", default=1024, show_default=True, type=click.IntRange(0, 1 << 20))
@click.option("--batch-records", default=100, show_default=True, type=click.IntRange(1, 100_000),
              help="Records per RecordBatch (one Produce call each).")
@click.option("--in-flight", default=4, show_default=True, type=click.IntRange(1, 1024),
              help="Produce calls in flight per partition.")
@click.option("--acks", default="all", show_default=True, type=click.Choice(["all", "1", "0"]))
@click.option("--timeout-s", default=300.0, show_default=True)
def produce(bootstrap_server: str | None, topic: str, partitions: int, replication_factor: int, records: int,
            record_size: int, batch_records: int, in_flight: int, acks: str, timeout_s: float) -> None:
    """Raw broker throughput: pipelined Produce calls straight to partition leaders
    (no client library), reported as JSON: records/s, MB/s, p50/p99 batch latency."""
    servers = bootstrap_servers(bootstrap_server)
    try:
        leaders = _ensure_topic(servers, topic, partitions, replication_factor)
        result = asyncio.run(_produce_burst(leaders, topic, records, record_size, batch_records, in_flight,
                                            {"all": -1, "1": 1, "0": 0}[acks], timeout_s))
    except KafkaError as err:
        fail(str(err))
        return
    click.echo(json.dumps(result))


def _ensure_topic(servers: list[str], topic: str, partitions: int, rf: int) -> dict[int, str]:
    """Create the topic if needed; wait until every partition has a serving leader."""
    request = admin_pb2.CreateTopicRequest(name=topic, partitions=partitions, replication_factor=rf)

    def create(channel: grpc.Channel) -> None:
        admin_pb2_grpc.AdminStub(channel).CreateTopic(request, timeout=10)

    try:
        call_any(servers, create)
    except KafkaError as err:
        if err.code != ErrorCode.TOPIC_ALREADY_EXISTS:
            raise

    def leaders() -> dict[int, str] | None:
        def ask(channel: grpc.Channel) -> broker_pb2.MetadataResponse:
            response: broker_pb2.MetadataResponse = broker_pb2_grpc.BrokerStub(channel).Metadata(
                broker_pb2.MetadataRequest(topics=[topic]), timeout=5)
            return response

        md = call_any(servers, ask)
        hosts = {b.broker_id: f"{b.host}:{b.port}" for b in md.brokers}
        found = {p.partition: hosts.get(p.leader, "") for t in md.topics for p in t.partitions}
        if len(found) < 1 or not all(found.values()):
            return None
        for partition, address in found.items():
            with grpc.insecure_channel(address) as channel:
                try:
                    broker_pb2_grpc.BrokerStub(channel).ListOffsets(
                        broker_pb2.ListOffsetsRequest(topic=topic, partition=partition, timestamp=-1), timeout=5)
                except grpc.RpcError:
                    return None
        return found

    return wait_for(leaders, 60, f"leaders of {topic}", interval_s=0.1)


async def _produce_burst(leaders: dict[int, str], topic: str, records: int, record_size: int, batch_records: int,
                         in_flight: int, acks: int, timeout_s: float) -> dict[str, float | int | str]:
    value = b"x" * record_size
    batch = build_batch([(None, value)] * batch_records)  # identical bytes: building is not what we measure
    batches = (records + batch_records - 1) // batch_records
    latencies: list[float] = []
    next_batch = 0
    deadline = time.monotonic() + timeout_s
    channels = {address: grpc.aio.insecure_channel(address) for address in set(leaders.values())}
    try:
        async def worker(partition: int) -> None:
            nonlocal next_batch
            stub = broker_pb2_grpc.BrokerStub(channels[leaders[partition]])
            while next_batch < batches and time.monotonic() < deadline:
                next_batch += 1
                started = time.perf_counter()
                try:
                    await stub.Produce(broker_pb2.ProduceRequest(topic=topic, partition=partition, records=batch,
                                                                 acks=acks, timeout_ms=30000), timeout=35)
                except grpc.RpcError as err:
                    raise kafka_error_from_rpc(err) from None
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(p) for p in leaders for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    finally:
        for channel in channels.values():
            await channel.close()
    sent = len(latencies) * batch_records
    latencies.sort()
    return {
        "records": sent,
        "record_size": record_size,
        "seconds": round(elapsed, 3),
        "records_per_s": round(sent / elapsed, 1),
        "mb_per_s": round(sent * record_size / elapsed / 1e6, 2),
        "batch_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "batch_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
        "acks": "all" if acks == -1 else str(acks),
        "partitions": len(leaders),
        "in_flight_per_partition": in_flight,
        "batch_records": batch_records,
    }
