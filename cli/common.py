"""What every client command shares: the bootstrap list and "ask any live node"."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import click
import grpc

from raftlog.errors import ErrorCode, KafkaError
from raftlog.status import kafka_error_from_rpc

DEFAULT_BOOTSTRAP = "127.0.0.1:9091"
T = TypeVar("T")

bootstrap_option = click.option(
    "--bootstrap-server",
    "bootstrap_server",
    default=None,
    metavar="HOST:PORT[,...]",
    help="Nodes to ask, comma-separated; any live one answers. "
    f"Default: $RAFTLOG_BOOTSTRAP_SERVERS, else {DEFAULT_BOOTSTRAP}.",
)


def bootstrap_servers(flag: str | None) -> list[str]:
    raw = flag or os.environ.get("RAFTLOG_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP
    servers = [s.strip() for s in raw.split(",") if s.strip()]
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise click.UsageError(f"bad bootstrap server {server!r}: expected HOST:PORT")
    if not servers:
        raise click.UsageError("no bootstrap server given")
    return servers


def call_any(servers: list[str], call: Callable[[grpc.Channel], T], timeout_s: float = 5.0) -> T:
    """Run ``call`` against each server in turn until one answers.

    Transport failures move on to the next server; a Kafka error from a live node is
    final (it is the cluster's answer) and is raised as KafkaError.
    """
    failures: list[str] = []
    for server in servers:
        with grpc.insecure_channel(server) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=timeout_s)
            except grpc.FutureTimeoutError:
                failures.append(f"{server}: not reachable")
                continue
            try:
                return call(channel)
            except grpc.RpcError as err:
                error = kafka_error_from_rpc(err)
                if error.code in (ErrorCode.NETWORK_EXCEPTION, ErrorCode.REQUEST_TIMED_OUT):
                    failures.append(f"{server}: {error.info.message}")
                    continue
                raise error from None
    raise KafkaError(ErrorCode.NETWORK_EXCEPTION, "no node answered (" + "; ".join(failures) + ")")


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit non-zero (never a traceback)."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)
