"""How the nemesis reaches nodes: as local processes, or as containers.

A driver knows its nodes by id (1..n) and offers exactly the faults of the nemesis:
SIGKILL, pause/resume, isolate/heal, restart. Everything else (who is the controller,
who leads which partition) goes over gRPC through ``addresses()``, the same for both.
Only what the driver started is ever touched: processes by PID, containers by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from raftlog.cli.local_cluster import LocalCluster, LocalNode, free_ports
from tests.chaos.netfilter import CgroupFirewall

#: Every fault name the runner knows, with what it does (also the --help text).
FAULTS: dict[str, str] = {
    "kill-controller": "SIGKILL the active controller (metadata Raft leader); it stays down until a restart",
    "kill-leader": "SIGKILL the leader of a random partition of the workload topic; down until a restart",
    "kill-random": "SIGKILL a random node; down until a restart",
    "pause": "SIGSTOP (docker pause) a random node past broker.session.timeout.ms, then SIGCONT",
    "partition": "cut a random node off the network past the session timeout, then heal"
                 " (processes: a cgroup-scoped iptables DROP, root only; containers: docker network disconnect)",
    "restart": "restart every node that is down (killed)",
}


class Driver(Protocol):
    mode: str
    node_ids: list[int]

    def supported_faults(self) -> dict[str, str | None]:
        """Fault name -> None when supported, else why not."""

    def start(self) -> None: ...
    def addresses(self) -> list[str]: ...
    def address(self, node_id: int) -> str: ...
    def is_running(self, node_id: int) -> bool: ...
    def kill(self, node_id: int) -> None: ...
    def restart(self, node_id: int) -> None: ...
    def pause(self, node_id: int) -> None: ...
    def resume(self, node_id: int) -> None: ...
    def isolate(self, node_id: int) -> None: ...
    def heal(self) -> None: ...
    def stop_all(self) -> dict[int, int | None]: ...
    def data_dir(self, node_id: int) -> Path: ...
    def log_path(self, node_id: int) -> Path | None: ...
    def log_tail(self, node_id: int, lines: int = 20) -> str: ...
    def cleanup(self) -> None: ...


@dataclass
class ChaosNode(LocalNode):
    """A LocalNode started inside its own cgroup (for isolation) and with extra
    environment (for the bite test's debug switch)."""

    firewall: CgroupFirewall | None = None
    env: dict[str, str] | None = None

    def command(self, voters: str, log_format: str) -> list[str]:
        base = super().command(voters, log_format)
        return self.firewall.wrap(self.node_id, base) if self.firewall is not None else base

    def start(self, voters: str, log_format: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(voters, log_format), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, **(self.env or {})},
            )


class ProcessDriver:
    mode = "processes"

    def __init__(self, nodes: int, data_dir: Path, node_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, want_partition: bool = True) -> None:
        self.firewall: CgroupFirewall | None = None
        self.partition_unavailable: str | None = "not requested"
        if want_partition:
            self.partition_unavailable = CgroupFirewall.unavailable_reason()
            if self.partition_unavailable is None:
                self.firewall = CgroupFirewall()
        template = LocalCluster.layout(nodes, "127.0.0.1", free_ports("127.0.0.1", nodes), data_dir,
                                       extra_args=node_args)
        self.cluster = LocalCluster([
            ChaosNode(node_id=n.node_id, address=n.address, data_dir=n.data_dir, log_path=n.log_path,
                      extra_args=n.extra_args, firewall=self.firewall, env=env)
            for n in template.nodes
        ], log_format=template.log_format)
        self.node_ids = [n.node_id for n in self.cluster.nodes]
        self.paused: set[int] = set()

    def supported_faults(self) -> dict[str, str | None]:
        return {name: (self.partition_unavailable if name == "partition" else None) for name in FAULTS}

    def start(self) -> None:
        if self.firewall is not None:
            self.firewall.setup()
        self.cluster.start()
        self.cluster.wait_for_leader(timeout_s=60)
        self.cluster.wait_for_brokers(timeout_s=60)

    def addresses(self) -> list[str]:
        return self.cluster.addresses

    def address(self, node_id: int) -> str:
        return self.cluster.node(node_id).address

    def is_running(self, node_id: int) -> bool:
        return self.cluster.node(node_id).alive

    def kill(self, node_id: int) -> None:
        self.cluster.node(node_id).kill()
        self.paused.discard(node_id)

    def restart(self, node_id: int) -> None:
        if not self.is_running(node_id):
            self.cluster.start(node_id)

    def pause(self, node_id: int) -> None:
        self.cluster.node(node_id).signal(signal.SIGSTOP)
        self.paused.add(node_id)

    def resume(self, node_id: int) -> None:
        self.cluster.node(node_id).signal(signal.SIGCONT)
        self.paused.discard(node_id)

    def isolate(self, node_id: int) -> None:
        if self.firewall is None:
            raise RuntimeError(f"partition is not available: {self.partition_unavailable}")
        self.firewall.isolate(node_id, self.cluster.node(node_id).port)

    def heal(self) -> None:
        if self.firewall is not None and self.firewall.isolated is not None:
            self.firewall.heal()

    def stop_all(self) -> dict[int, int | None]:
        """Controlled shutdown of every node (so its stores can be opened)."""
        for node_id in list(self.paused):
            self.resume(node_id)
        self.heal()
        return self.cluster.stop_all(timeout_s=30)

    def data_dir(self, node_id: int) -> Path:
        return self.cluster.node(node_id).data_dir

    def log_path(self, node_id: int) -> Path | None:
        return self.cluster.node(node_id).log_path

    def log_tail(self, node_id: int, lines: int = 20) -> str:
        return self.cluster.node(node_id).tail(lines)

    def cleanup(self) -> None:
        for node in self.cluster.nodes:
            if node.alive:
                node.signal(signal.SIGCONT)
        self.cluster.kill_all()  # only our processes, by PID
        if self.firewall is not None:
            self.firewall.teardown()
