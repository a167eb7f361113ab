"""`raftlog node start`: run one node (broker + controller voter) in the foreground."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from raftlog.node.config import ConfigError, load_config
from raftlog.node.logging import configure_logging
from raftlog.node.app import EXIT_STARTUP, run_node

_ENV_HELP = "Every option also reads RAFTLOG_<NAME> (e.g. RAFTLOG_NODE_ID); flags win over env, env over --config."


@click.group()
def node() -> None:
    """Run a raftlog node."""


@node.command(epilog=_ENV_HELP)
@click.option("--node-id", type=str, default=None, metavar="N", help="This node's id (one of the voters).")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Address to serve gRPC on. Default: this node's address in --voters.")
@click.option("--advertised", default=None, metavar="HOST:PORT",
              help="Address other nodes and clients use. Default: --listen "
              "(this node's voter address when listening on a wildcard).")
@click.option("--voters", default=None, metavar="ID@HOST:PORT,...",
              help="The controller quorum, e.g. 1@127.0.0.1:9091,2@127.0.0.1:9092,3@127.0.0.1:9093.")
@click.option("--data-dir", default=None, metavar="DIR", help="Where this node keeps its data.")
@click.option("--cluster-id", default=None,
              help="Cluster id. Default: derived from the voter set, so all nodes agree.")
@click.option("--config", "config_file", default=None, metavar="FILE.toml",
              help="TOML file with settings (same names as the options, with underscores).")
@click.option("--log-format", default=None, type=click.Choice(["json", "console"]),
              help="Log lines as JSON (default) or for a terminal.")
@click.option("--log-level", default=None, type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--tick-ms", default=None, type=str, metavar="MS", help="Raft tick length (default 50).")
@click.option("--election-tick", default=None, type=str, metavar="TICKS",
              help="Election timeout in ticks, randomized up to twice that (default 10).")
@click.option("--heartbeat-tick", default=None, type=str, metavar="TICKS", help="Heartbeat period in ticks (default 1).")
@click.option("--snapshot-every", default=None, type=str, metavar="N",
              help="Snapshot the metadata every N applied entries (default 1000).")
@click.option("--sync/--no-sync", default=None, help="fsync partition data before acknowledging it (default: on). The Raft log is always fsynced.")
@click.option("--listeners", default=None, metavar="NAME://HOST:PORT,...",
              help="Named listeners to bind (Kafka's listeners), e.g. "
                   "INTERNAL://0.0.0.0:9091,EXTERNAL://0.0.0.0:19091; instead of --listen.")
@click.option("--advertised-listeners", default=None, metavar="NAME://HOST:PORT,...",
              help="What metadata tells clients for each listener (the one they connected on).")
@click.option("--inter-broker-listener", default=None, metavar="NAME",
              help="The listener peers, the quorum and replication use (default INTERNAL).")
@click.option("--broker-session-timeout-ms", default=None, type=str, metavar="MS",
              help="Fence a broker silent this long (Kafka's broker.session.timeout.ms; default 6000).")
@click.option("--broker-heartbeat-interval-ms", default=None, type=str, metavar="MS",
              help="Heartbeat period to the active controller (default 500).")
@click.option("--replica-lag-time-max-ms", default=None, type=str, metavar="MS",
              help="A follower this far behind leaves the ISR (Kafka's replica.lag.time.max.ms; default 10000).")
def start(config_file: str | None, **flags: str | bool | None) -> None:
    """Start a node and serve until SIGTERM/SIGINT (then shut down in a controlled way)."""
    try:
        config = load_config(flags, env=os.environ, config_file=Path(config_file) if config_file else None)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_STARTUP) from None
    configure_logging(config.log_format, config.log_level)

    def report(message: str) -> None:
        click.echo(f"error: {message}", err=True)

    try:
        code = asyncio.run(run_node(config, report_error=report))
    except KeyboardInterrupt:  # a Ctrl-C before the signal handlers were installed
        code = 130
    raise SystemExit(code)
