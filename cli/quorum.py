"""`raftlog quorum ...`: the metadata quorum, as kafka-metadata-quorum shows it."""

from __future__ import annotations

import json
from typing import Any

import click
import grpc

from raftlog.cli.common import bootstrap_option, bootstrap_servers, call_any, fail
from raftlog.errors import KafkaError
from raftlog.v1 import admin_pb2, admin_pb2_grpc


@click.group()
def quorum() -> None:
    """Inspect the metadata quorum (the controllers' Raft group)."""


def describe_quorum(servers: list[str], timeout_s: float = 5.0) -> dict[str, Any]:
    """The leader's view of the quorum, as the JSON of `quorum describe --json`."""

    def ask(channel: grpc.Channel) -> admin_pb2.DescribeQuorumResponse:
        stub = admin_pb2_grpc.AdminStub(channel)
        response: admin_pb2.DescribeQuorumResponse = stub.DescribeQuorum(
            admin_pb2.DescribeQuorumRequest(), timeout=timeout_s
        )
        return response

    resp = call_any(servers, ask, timeout_s)
    return {
        "cluster_id": resp.cluster_id,
        "leader_id": resp.leader_id,
        "leader_epoch": resp.leader_epoch,
        "high_watermark": resp.high_watermark,
        "max_follower_lag": max((v.lag for v in resp.voters), default=0),
        "voters": [
            {
                "node_id": v.node_id,
                "address": v.address,
                "log_end_offset": v.log_end_offset,
                "lag": v.lag,
                "last_fetch_ms_ago": v.last_fetch_ms_ago,
                "status": v.status,
            }
            for v in resp.voters
        ],
    }


@quorum.command()
@bootstrap_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
@click.option("--timeout-ms", default=5000, show_default=True, help="Per-node request timeout.")
def describe(bootstrap_server: str | None, as_json: bool, timeout_ms: int) -> None:
    """Leader, epoch, high watermark and each voter's replication state."""
    try:
        view = describe_quorum(bootstrap_servers(bootstrap_server), timeout_ms / 1000)
    except KafkaError as err:
        fail(str(err))
        return
    if as_json:
        click.echo(json.dumps(view))
        return
    click.echo(f"ClusterId:       {view['cluster_id']}")
    click.echo(f"LeaderId:        {view['leader_id'] or 'none'}")
    click.echo(f"LeaderEpoch:     {view['leader_epoch']}")
    click.echo(f"HighWatermark:   {view['high_watermark']}")
    click.echo(f"MaxFollowerLag:  {view['max_follower_lag']}")
    click.echo(f"CurrentVoters:   {[v['node_id'] for v in view['voters']]}")
    click.echo("")
    header = f"{'NodeId':<8}{'Address':<22}{'LogEndOffset':>14}{'Lag':>8}{'LastFetch(ms ago)':>19}  Status"
    click.echo(header)
    for v in view["voters"]:
        ago = "-" if v["last_fetch_ms_ago"] < 0 else str(v["last_fetch_ms_ago"])
        click.echo(
            f"{v['node_id']:<8}{v['address']:<22}{v['log_end_offset']:>14}{v['lag']:>8}{ago:>19}  {v['status']}"
        )
