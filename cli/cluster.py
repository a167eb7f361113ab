"""`raftlog cluster up`: a local cluster of node processes, the embedded default."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click
import grpc

from raftlog.cli.common import bootstrap_option, bootstrap_servers, call_any, fail
from raftlog.cli.local_cluster import LocalCluster, port_is_free
from raftlog.errors import KafkaError
from raftlog.v1 import admin_pb2, admin_pb2_grpc, broker_pb2, broker_pb2_grpc

LEADER_WAIT_S = 30.0
STOP_WAIT_S = 15.0


@click.group()
def cluster() -> None:
    """Run and inspect a cluster."""


@cluster.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 9), help="How many nodes.")
@click.option("--base-port", default=9091, show_default=True, type=click.IntRange(1, 65535),
              help="Node N listens on base-port + N - 1.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--data-dir", default="./data", show_default=True, type=click.Path(path_type=Path),
              help="Node N keeps its data in DATA_DIR/node-N and logs in DATA_DIR/logs.")
@click.option("--log-format", default="json", show_default=True, type=click.Choice(["json", "console"]))
def up(nodes: int, base_port: int, host: str, data_dir: Path, log_format: str) -> None:
    """Start a local cluster of node processes; Ctrl-C stops them all cleanly."""
    if base_port + nodes - 1 > 65535:
        fail(f"ports {base_port}..{base_port + nodes - 1} go past 65535")
    ports = list(range(base_port, base_port + nodes))
    taken = [f"{host}:{p}" for p in ports if not port_is_free(host, p)]
    if taken:
        fail(f"port already in use: {', '.join(taken)} (is another cluster running? try --base-port)")
    local = LocalCluster.layout(nodes, host, ports, data_dir, log_format=log_format)

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    local.start()
    try:
        view = _wait_for_leader(local, lambda: stopping)
        if view is None:
            return
        click.echo(f"raftlog: {nodes}-node cluster up (cluster id {view['cluster_id']})")
        for node in local.nodes:
            role = "leader" if node.node_id == view["leader_id"] else "follower"
            pid = node.process.pid if node.process else 0
            click.echo(f"  node {node.node_id}  {node.address}  {role:<8}  pid {pid}")
        click.echo(f"  logs: {data_dir / 'logs'}/node-N.log")
        click.echo(f"  try:  raftlog quorum describe --bootstrap-server {local.addresses[0]}")
        click.echo("Press Ctrl-C to stop.", nl=True)
        reported: set[int] = set()
        while not stopping:
            for node in local.nodes:
                code = node.exit_code()
                if code is not None and node.node_id not in reported:
                    reported.add(node.node_id)
                    click.echo(f"node {node.node_id} exited with code {code}; see {node.log_path}", err=True)
            time.sleep(0.2)
        click.echo("stopping nodes (controlled shutdown)...")
    finally:
        codes = local.stop_all(STOP_WAIT_S)
    unclean = {i: c for i, c in codes.items() if c not in (0, None)}
    click.echo("all nodes stopped" + (f" (exit codes {unclean})" if unclean else ""))


def _wait_for_leader(local: LocalCluster, stopping: Callable[[], bool]) -> dict[str, Any] | None:
    deadline = time.monotonic() + LEADER_WAIT_S
    while time.monotonic() < deadline:
        if stopping():
            return None
        for node in local.nodes:
            code = node.exit_code()
            if code is not None:
                fail(f"node {node.node_id} exited with code {code} at start:\n{node.tail()}")
        view = local.describe()
        # Up means usable: a leader, and every broker registered and unfenced so a
        # topic with replication factor N can be created right away.
        if view is not None and view["leader_id"] and local.live_brokers() == len(local.nodes):
            return view
        time.sleep(0.2)
    fail(f"no leader elected within {LEADER_WAIT_S:.0f}s; logs in {local.nodes[0].log_path.parent}")
    return None


@cluster.command()
@bootstrap_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(bootstrap_server: str | None, as_json: bool) -> None:
    """Brokers (live or fenced), the active controller, and under-replicated and
    offline partitions."""
    servers = bootstrap_servers(bootstrap_server)

    def ask(channel: grpc.Channel) -> tuple[admin_pb2.DescribeClusterResponse, broker_pb2.MetadataResponse]:
        cluster_view = admin_pb2_grpc.AdminStub(channel).DescribeCluster(admin_pb2.DescribeClusterRequest(), timeout=5)
        metadata = broker_pb2_grpc.BrokerStub(channel).Metadata(broker_pb2.MetadataRequest(), timeout=5)
        return cluster_view, metadata

    try:
        cluster_view, metadata = call_any(servers, ask)
    except KafkaError as err:
        fail(str(err))
        return
    under, offline = [], []
    for topic in metadata.topics:
        for p in topic.partitions:
            entry = {"topic": topic.name, "partition": p.partition, "leader": p.leader,
                     "replicas": list(p.replicas), "isr": list(p.isr)}
            if p.leader < 0:
                offline.append(entry)
            elif len(p.isr) < len(p.replicas):
                under.append(entry)
    brokers = [
        {"broker_id": b.broker_id, "address": b.address, "status": "fenced" if b.fenced else "live",
         "broker_epoch": b.broker_epoch}
        for b in cluster_view.brokers
    ]
    view = {
        "cluster_id": cluster_view.cluster_id,
        "controller_id": cluster_view.controller_id,
        "metadata_offset": cluster_view.metadata_offset,
        "brokers": brokers,
        "topics": len(metadata.topics),
        "partitions": sum(len(t.partitions) for t in metadata.topics),
        "under_replicated_partitions": under,
        "offline_partitions": offline,
    }
    if as_json:
        click.echo(json.dumps(view))
        return
    click.echo(f"ClusterId:          {view['cluster_id']}")
    click.echo(f"ActiveController:   {view['controller_id'] or 'none'}")
    click.echo(f"MetadataOffset:     {view['metadata_offset']}")
    click.echo(f"Topics/Partitions:  {view['topics']}/{view['partitions']}")
    click.echo("Brokers:")
    for b in brokers:
        click.echo(f"  {b['broker_id']:<4} {b['address']:<22} {b['status']:<7} epoch {b['broker_epoch']}")
    click.echo(f"UnderReplicated:    {len(under)}")
    for e in under:
        click.echo(f"  {e['topic']}-{e['partition']}  leader {e['leader']}  replicas {e['replicas']}  isr {e['isr']}")
    click.echo(f"Offline:            {len(offline)}")
    for e in offline:
        click.echo(f"  {e['topic']}-{e['partition']}  replicas {e['replicas']}  isr {e['isr']}")
