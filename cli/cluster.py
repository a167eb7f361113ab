"""`raftlog cluster up`: a local cluster of node processes, the embedded default."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click

from cli.common import fail
from cli.quorum import describe_quorum
from raftlog.errors import KafkaError

LEADER_WAIT_S = 30.0
STOP_WAIT_S = 15.0


@click.group()
def cluster() -> None:
    """Run and inspect a cluster."""


@dataclass
class LocalNode:
    node_id: int
    address: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def command(self, voters: str, log_format: str) -> list[str]:
        return [
            sys.executable, "-m", "cli", "node", "start",
            "--node-id", str(self.node_id),
            "--listen", self.address,
            "--voters", voters,
            "--data-dir", str(self.data_dir),
            "--log-format", log_format,
        ]  # fmt: skip

    def start(self, voters: str, log_format: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # A session of its own: Ctrl-C reaches only `cluster up`, which then
            # stops the nodes in order (controlled shutdown) instead of all at once.
            self.process = subprocess.Popen(
                self.command(voters, log_format),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_all(nodes: list[LocalNode]) -> None:
    """SIGTERM every live node (controlled shutdown), then SIGKILL any that hang."""
    for node in nodes:
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    for node in nodes:
        if node.process is None:
            continue
        try:
            node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            click.echo(f"node {node.node_id} did not stop in {STOP_WAIT_S:.0f}s; killing it", err=True)
            node.process.kill()
            node.process.wait()


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
    local = [
        LocalNode(
            node_id=i,
            address=f"{host}:{base_port + i - 1}",
            data_dir=data_dir / f"node-{i}",
            log_path=data_dir / "logs" / f"node-{i}.log",
        )
        for i in range(1, nodes + 1)
    ]
    taken = [n.address for n in local if not port_is_free(host, int(n.address.rpartition(":")[2]))]
    if taken:
        fail(f"port already in use: {', '.join(taken)} (is another cluster running? try --base-port)")
    voters = ",".join(f"{n.node_id}@{n.address}" for n in local)

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for node in local:
        node.start(voters, log_format)
    try:
        leader = _wait_for_leader(local, lambda: stopping)
        if leader is None:
            return
        click.echo(f"raftlog: {nodes}-node cluster up (cluster id {leader['cluster_id']})")
        for node in local:
            role = "leader" if node.node_id == leader["leader_id"] else "follower"
            pid = node.process.pid if node.process else 0
            click.echo(f"  node {node.node_id}  {node.address}  {role:<8}  pid {pid}")
        click.echo(f"  logs: {data_dir / 'logs'}/node-N.log")
        click.echo(f"  try: raftlog quorum describe --bootstrap-server {local[0].address}")
        click.echo("Press Ctrl-C to stop.")
        reported: set[int] = set()
        while not stopping:
            for node in local:
                code = node.exit_code()
                if code is not None and node.node_id not in reported:
                    reported.add(node.node_id)
                    click.echo(f"node {node.node_id} exited with code {code}; see {node.log_path}", err=True)
            time.sleep(0.2)
        click.echo("stopping nodes (controlled shutdown)...")
    finally:
        stop_all(local)
    click.echo("all nodes stopped")


def _wait_for_leader(local: list[LocalNode], stopping: Callable[[], bool]) -> dict[str, Any] | None:
    servers = [n.address for n in local]
    deadline = time.monotonic() + LEADER_WAIT_S
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if stopping():
            return None
        for node in local:
            code = node.exit_code()
            if code is not None:
                fail(f"node {node.node_id} exited with code {code} at start:\n{tail(node.log_path)}")
        try:
            view = describe_quorum(servers, timeout_s=1.0)
            if view["leader_id"]:
                return view
        except KafkaError as err:
            last_error = str(err)
        time.sleep(0.2)
    fail(f"no leader elected within {LEADER_WAIT_S:.0f}s ({last_error}); logs in {local[0].log_path.parent}")
    return None
