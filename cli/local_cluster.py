"""Node processes on this machine: what `cluster up`, `perf failover` and the cluster
tests start, kill and restart (only the processes they started, by PID)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from raftlog.cli.quorum import describe_quorum
from raftlog.errors import KafkaError
from raftlog.v1 import admin_pb2, admin_pb2_grpc

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout_s: float, what: str,
             interval_s: float = 0.05) -> T:
    """Poll ``condition`` until it returns a truthy value, or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.1f}s waiting for {what}")
        time.sleep(interval_s)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers use it: connections of a stopped cluster lingering
        # in TIME_WAIT do not count as "in use", a live listener still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(host: str, count: int) -> list[int]:
    """Ports the kernel hands out now (a later bind may still race; tests retry)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class LocalNode:
    node_id: int
    address: str
    data_dir: Path
    log_path: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def command(self, voters: str, log_format: str) -> list[str]:
        return [
            sys.executable, "-m", "raftlog.cli", "node", "start",
            "--node-id", str(self.node_id),
            "--listen", self.address,
            "--voters", voters,
            "--data-dir", str(self.data_dir),
            "--log-format", log_format,
            *self.extra_args,
        ]  # fmt: skip

    def start(self, voters: str, log_format: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # A session of its own: a terminal's Ctrl-C reaches only the parent, which
            # then stops the nodes with SIGTERM (controlled shutdown).
            self.process = subprocess.Popen(
                self.command(voters, log_format),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal(self, signum: int) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM (controlled shutdown) and wait; SIGKILL if it hangs. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def local_view(self, timeout_s: float = 1.0) -> admin_pb2.DescribeQuorumResponse | None:
        """This node's own idea of term, leader and commit; None when it does not answer."""
        with grpc.insecure_channel(self.address) as channel:
            try:
                view: admin_pb2.DescribeQuorumResponse = admin_pb2_grpc.AdminStub(channel).DescribeQuorum(
                    admin_pb2.DescribeQuorumRequest(local_view=True), timeout=timeout_s
                )
                return view
            except grpc.RpcError:
                return None


@dataclass
class LocalCluster:
    nodes: list[LocalNode]
    log_format: str = "json"
    voters: str = field(init=False)

    def __post_init__(self) -> None:
        self.voters = ",".join(f"{n.node_id}@{n.address}" for n in self.nodes)

    @classmethod
    def layout(cls, count: int, host: str, ports: Sequence[int], data_dir: Path,
               extra_args: tuple[str, ...] = (), log_format: str = "json") -> LocalCluster:
        return cls(
            [
                LocalNode(
                    node_id=i,
                    address=f"{host}:{ports[i - 1]}",
                    data_dir=data_dir / f"node-{i}",
                    log_path=data_dir / "logs" / f"node-{i}.log",
                    extra_args=extra_args,
                )
                for i in range(1, count + 1)
            ],
            log_format=log_format,
        )

    def node(self, node_id: int) -> LocalNode:
        return self.nodes[node_id - 1]

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def start(self, node_id: int | None = None) -> None:
        for node in self.nodes if node_id is None else [self.node(node_id)]:
            node.start(self.voters, self.log_format)

    def stop_all(self, timeout_s: float = 15.0) -> dict[int, int | None]:
        for node in self.nodes:
            node.signal(signal.SIGTERM)
        return {node.node_id: node.stop(timeout_s) for node in self.nodes}

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def describe(self, timeout_s: float = 1.0) -> dict[str, Any] | None:
        """The leader's view through any live node, or None."""
        live = [n.address for n in self.nodes if n.alive]
        if not live:
            return None
        try:
            return describe_quorum(live, timeout_s)
        except KafkaError:
            return None

    def agreed_leader(self, among: Sequence[int] | None = None) -> tuple[int, int] | None:
        """(leader id, term) when every live node in ``among`` names the same live leader."""
        ids = list(among) if among is not None else [n.node_id for n in self.nodes if n.alive]
        views = [self.node(i).local_view(0.5) for i in ids]
        if not views or any(v is None or v.leader_id == 0 for v in views):
            return None
        leaders = {(v.leader_id, v.leader_epoch) for v in views if v is not None}
        if len(leaders) != 1:
            return None
        leader, term = leaders.pop()
        return (leader, term) if leader in ids else None

    def wait_for_leader(self, timeout_s: float = 30.0, among: Sequence[int] | None = None) -> tuple[int, int]:
        def check() -> tuple[int, int] | None:
            for node in self.nodes:
                if node.process is not None and node.exit_code() is not None and (
                    among is None or node.node_id in among
                ):
                    raise RuntimeError(f"node {node.node_id} exited with {node.exit_code()}:\n{node.tail()}")
            return self.agreed_leader(among)

        return wait_for(check, timeout_s, "an agreed leader")

    def live_brokers(self) -> int:
        """How many brokers the metadata shows registered and unfenced (0 if unknown)."""
        for node in self.nodes:
            if not node.alive:
                continue
            with grpc.insecure_channel(node.address) as channel:
                try:
                    view = admin_pb2_grpc.AdminStub(channel).DescribeCluster(
                        admin_pb2.DescribeClusterRequest(), timeout=1.0
                    )
                except grpc.RpcError:
                    continue
            return sum(1 for b in view.brokers if not b.fenced)
        return 0

    def wait_for_brokers(self, count: int | None = None, timeout_s: float = 30.0) -> None:
        """Until ``count`` (default: all) brokers are live, so topics can be placed."""
        want = len(self.nodes) if count is None else count
        wait_for(lambda: self.live_brokers() >= want, timeout_s, f"{want} live brokers")
