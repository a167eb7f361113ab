"""The container driver: the same nemesis against ``raftlog:dev`` containers, through
the testcontainers harness of tests/containers/harness.py (which disables the reaper:
nothing can be pulled here). Faults: ``docker kill`` (SIGKILL), ``docker pause``/
``unpause``, ``docker network disconnect``/``connect``, ``docker start``.

Stores after the run: the nodes are stopped (SIGTERM to all at once, then waited for),
and each stopped container's /data/node is copied out with ``docker cp`` (the archive
API, which works on stopped containers) into the run's data dir, where the checker
opens it exactly as it opens a process node's data dir. Logs are saved beside them.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tests.chaos.drivers import FAULTS

CONTAINER_DATA_DIR = "/data/node"


class ContainerDriver:
    mode = "containers"

    def __init__(self, nodes: int, data_dir: Path, node_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        from tests.containers.harness import ContainerCluster, skip_reason

        why = skip_reason()
        if why is not None:
            raise RuntimeError(f"container mode is not available: {why}")
        self.root = data_dir
        self.cluster = ContainerCluster(size=nodes, extra_args=node_args, env=dict(env or {}),
                                        prefix="raftlog-chaos")
        self.node_ids = list(range(1, nodes + 1))
        self._copied: dict[int, Path] = {}

    def supported_faults(self) -> dict[str, str | None]:
        return {name: None for name in FAULTS}

    def start(self) -> None:
        self.cluster.start(timeout_s=120)
        self.cluster.wait_for_leader(timeout_s=60)

    def addresses(self) -> list[str]:
        return self.cluster.bootstrap(only_alive=False)

    def address(self, node_id: int) -> str:
        return str(self.cluster.node(node_id).address)

    def is_running(self, node_id: int) -> bool:
        return not self.cluster.node(node_id).killed

    def kill(self, node_id: int) -> None:
        self.cluster.kill(node_id)

    def restart(self, node_id: int) -> None:
        if self.cluster.node(node_id).killed:
            self.cluster.start_node(node_id, wait=False)

    def pause(self, node_id: int) -> None:
        self.cluster.pause(node_id)

    def resume(self, node_id: int) -> None:
        if self.cluster.node(node_id).paused:
            self.cluster.unpause(node_id)

    def isolate(self, node_id: int) -> None:
        self.cluster.disconnect(node_id)

    def heal(self) -> None:
        for node in self.cluster.nodes:
            if node.disconnected:
                self.cluster.connect(node.node_id)

    def stop_all(self) -> dict[int, int | None]:
        """SIGTERM to every node at once (controlled shutdown), wait, then copy each
        stopped container's data dir out."""
        for node in self.cluster.nodes:
            if node.paused:
                self.cluster.unpause(node.node_id)
        self.heal()
        running = [n for n in self.cluster.nodes if not n.killed]
        for node in running:
            node.docker.kill(signal="SIGTERM")
        codes: dict[int, int | None] = {}
        for node in self.cluster.nodes:
            if node in running:
                try:
                    codes[node.node_id] = int(node.docker.wait(timeout=45)["StatusCode"])
                except Exception:  # noqa: BLE001 - hung: SIGKILL it (still our container)
                    node.docker.kill(signal="SIGKILL")
                    codes[node.node_id] = int(node.docker.wait(timeout=30)["StatusCode"])
                node.killed = True
            else:
                codes[node.node_id] = None
        for node_id in self.node_ids:
            self._copy_out(node_id)
        return codes

    def _copy_out(self, node_id: int) -> None:
        target = self.root / f"node-{node_id}"
        target.mkdir(parents=True, exist_ok=True)
        stream, _ = self.cluster.node(node_id).docker.get_archive(CONTAINER_DATA_DIR)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            tar.extractall(target, filter="data")
        self._copied[node_id] = target / Path(CONTAINER_DATA_DIR).name

    def data_dir(self, node_id: int) -> Path:
        if node_id not in self._copied:
            raise RuntimeError(f"node {node_id}'s data has not been copied out (stop_all first)")
        return self._copied[node_id]

    def log_path(self, node_id: int) -> Path | None:
        return None

    def log_tail(self, node_id: int, lines: int = 20) -> str:
        return str(self.cluster.logs(node_id, tail=lines))

    def cleanup(self) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for node_id in self.node_ids:
            try:
                (logs / f"node-{node_id}.log").write_text(self.cluster.logs(node_id))
            except Exception:  # noqa: BLE001 - evidence is best effort; removal is not
                pass
        self.cluster.close()
