"""A raftlog cluster in Docker containers, driven through testcontainers.

Each node runs the ``raftlog:dev`` image (``make image``) on a Docker network this
harness creates (a unique name), with two named listeners:

* ``INTERNAL://0.0.0.0:9091``, advertised as ``nodeN:9091`` (the network alias): the
  quorum, replication and anything inside the network use it;
* ``EXTERNAL://0.0.0.0:19091``, published on the host as ``127.0.0.1:<free port>`` and
  advertised as that address: the test process (and the CLI) use it, and metadata sends
  host clients to the other nodes' published ports.

Faults, each on one node and only on containers this harness created: ``kill``
(SIGKILL), ``stop`` (SIGTERM, controlled shutdown), ``start``/``restart``, ``pause``/
``unpause`` (cgroup freezer), ``disconnect``/``connect`` (off the network and back; a
disconnected node is unreachable from the host too). ``close()`` removes the
containers, their volumes and the network, also after a failure.

The cluster duck-types ``cli.local_cluster.LocalCluster`` where the data-path helpers of
``tests/cluster/dataplane.py`` need it: ``nodes`` with ``address`` and ``alive``.

The testcontainers reaper (Ryuk) is disabled before testcontainers is imported: it
would pull its image, and this machine has no registry.
"""

from __future__ import annotations

import os

os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # before any testcontainers import

import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from raftlog.cli.local_cluster import free_ports, wait_for  # noqa: E402

IMAGE = os.environ.get("RAFTLOG_TEST_IMAGE", "raftlog:dev")
INTERNAL_PORT = 9091
EXTERNAL_PORT = 19091
LABEL = "org.raftlog.test-harness"


def docker_client() -> Any:
    import docker

    return docker.from_env(timeout=30)


def skip_reason(image: str = IMAGE) -> str | None:
    """Why container tests cannot run here (None: they can)."""
    try:
        import docker
        import testcontainers  # noqa: F401
    except ImportError as exc:
        return f"container tests need the docker and testcontainers packages ({exc})"
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable Docker"
        return f"Docker is not available ({type(exc).__name__}: {exc})"
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return f"image {image} is not built: run `make image` (nothing can be pulled here)"
    except Exception as exc:  # noqa: BLE001
        return f"cannot inspect image {image}: {exc}"
    finally:
        client.close()
    return None




def health_status(address: str, timeout_s: float = 1.0) -> str:
    """The node's grpc.health.v1 status ("SERVING", "NOT_SERVING", or the RPC error)."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError as err:
            return err.code().name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@dataclass
class ContainerNode:
    node_id: int
    alias: str  # the INTERNAL host name (network alias), e.g. node1
    host_port: int  # 127.0.0.1:<host_port> -> the container's EXTERNAL listener
    container_name: str
    container: Any = None  # testcontainers DockerContainer once created
    paused: bool = False
    disconnected: bool = False
    killed: bool = False

    @property
    def address(self) -> str:
        """The host-side address (the EXTERNAL listener, as advertised to host clients)."""
        return f"127.0.0.1:{self.host_port}"

    @property
    def internal_address(self) -> str:
        return f"{self.alias}:{INTERNAL_PORT}"

    @property
    def docker(self) -> Any:
        """The docker SDK container object."""
        if self.container is None:
            raise RuntimeError(f"node {self.node_id} has no container")
        return self.container.get_wrapped_container()

    def status(self) -> str:
        """Docker's state: created, running, paused, exited..."""
        c = self.docker
        c.reload()
        return str(c.status)

    @property
    def alive(self) -> bool:
        """Reachable from the host: running, not paused, on the network."""
        return not (self.killed or self.paused or self.disconnected) and self.container is not None


@dataclass
class ContainerCluster:
    """``size`` raftlog nodes in containers on a fresh Docker network."""

    size: int = 3
    image: str = IMAGE
    extra_args: Sequence[str] = ()
    prefix: str = "raftlog-test"
    env: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    nodes: list[ContainerNode] = field(default_factory=list)
    network: Any = None  # testcontainers Network
    _closed: bool = False

    # ------------------------------------------------------------------ layout
    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.run_id}"

    @property
    def voters(self) -> str:
        return ",".join(f"{i}@node{i}:{INTERNAL_PORT}" for i in range(1, self.size + 1))

    def command(self, node: ContainerNode) -> list[str]:
        return [
            "node", "start",
            f"--node-id={node.node_id}",
            f"--voters={self.voters}",
            f"--listeners=INTERNAL://0.0.0.0:{INTERNAL_PORT},EXTERNAL://0.0.0.0:{EXTERNAL_PORT}",
            f"--advertised-listeners=INTERNAL://{node.internal_address},EXTERNAL://{node.address}",
            "--inter-broker-listener=INTERNAL",
            "--data-dir=/data/node",
            *self.extra_args,
        ]

    def bootstrap(self, only_alive: bool = True) -> list[str]:
        """Host-side addresses of the nodes (by default only those reachable now)."""
        return [n.address for n in self.nodes if n.alive or not only_alive]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(self.bootstrap(only_alive=False))

    def node(self, node_id: int) -> ContainerNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(f"no node {node_id}")

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 90.0) -> ContainerCluster:
        from testcontainers.core.network import Network

        try:
            self.network = Network(docker_network_kw={"labels": {LABEL: self.run_id}})
            self.network.name = self.name  # unique and recognisable
            self.network.create()
            ports = free_ports("127.0.0.1", self.size)
            for i in range(1, self.size + 1):
                node = ContainerNode(i, f"node{i}", ports[i - 1], f"{self.name}-node{i}")
                self.nodes.append(node)
                self._create(node)
            self.wait_healthy(timeout_s=timeout_s)
        except BaseException:
            self.close()
            raise
        return self

    def _create(self, node: ContainerNode, attempts: int = 3) -> None:
        from docker.errors import APIError
        from testcontainers.core.container import DockerContainer

        for attempt in range(attempts):
            container = (
                DockerContainer(self.image)
                .with_name(node.container_name)
                .with_command(self.command(node))
                .with_network(self.network)
                .with_network_aliases(node.alias)
                .with_envs(**self.env)
                # The harness polls health from the host; the image's HEALTHCHECK would
                # only spend CPU (a Python process per check) under the faults' timing.
                .with_kwargs(hostname=node.alias, stop_signal="SIGTERM", healthcheck={"test": ["NONE"]})
            )
            # Published on the host's loopback only (docker-py's (ip, port) form).
            container.ports[f"{EXTERNAL_PORT}/tcp"] = ("127.0.0.1", node.host_port)  # type: ignore[assignment]
            node.container = container
            try:
                container.start()
                return
            except APIError as err:
                if "port is already allocated" not in str(err) and "address already in use" not in str(err):
                    raise
                self._remove(node)
                if attempt == attempts - 1:
                    raise
                node.host_port = free_ports("127.0.0.1", 1)[0]

    def wait_healthy(self, node_ids: Iterable[int] | None = None, timeout_s: float = 60.0) -> None:
        """Until each node's health service answers SERVING on its host port."""
        ids = list(node_ids) if node_ids is not None else [n.node_id for n in self.nodes]
        for node_id in ids:
            node = self.node(node_id)

            def ready(node: ContainerNode = node) -> bool:
                if node.status() not in ("running", "restarting"):
                    raise RuntimeError(
                        f"node {node.node_id} is {node.status()}:\n{self.logs(node.node_id, tail=40)}"
                    )
                return health_status(node.address) == "SERVING"

            wait_for(ready, timeout_s, f"node {node_id} healthy", interval_s=0.2)

    def close(self) -> None:
        """Remove every container (and its volume) and the network. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for node in self.nodes:
            self._remove(node)
        if self.network is not None and self.network._network is not None:
            try:
                self.network.remove()
            except Exception:  # noqa: BLE001 - best effort, but say so
                print(f"warning: could not remove network {self.name}")

    @staticmethod
    def _remove(node: ContainerNode) -> None:
        if node.container is None:
            return
        try:
            if node.container._container is not None:
                node.container._container.remove(force=True, v=True)
        except Exception as exc:  # noqa: BLE001 - already gone, or the daemon is gone
            if "No such container" not in str(exc) and "404" not in str(exc):
                print(f"warning: could not remove {node.container_name}: {exc}")
        finally:
            node.container._container = None

    def __enter__(self) -> ContainerCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ faults
    def kill(self, node_id: int, signal: str = "SIGKILL") -> None:
        """``docker kill`` (SIGKILL by default): no controlled shutdown."""
        node = self.node(node_id)
        if node.paused:
            self.unpause(node_id)
        node.docker.kill(signal=signal)
        if signal in ("SIGKILL", "KILL", "9"):
            wait_for(lambda: node.status() == "exited", 30, f"node {node_id} exited")
            node.killed = True

    def stop(self, node_id: int, timeout_s: int = 30) -> int:
        """``docker stop``: SIGTERM (controlled shutdown), SIGKILL after ``timeout_s``.
        Returns the exit code."""
        node = self.node(node_id)
        node.docker.stop(timeout=timeout_s)
        node.killed = True
        node.docker.reload()
        return int(node.docker.attrs["State"]["ExitCode"])

    def start_node(self, node_id: int, wait: bool = True, timeout_s: float = 60.0) -> None:
        """Start a killed/stopped node again (same container, same data volume)."""
        node = self.node(node_id)
        node.docker.start()
        node.killed = False
        if wait and not node.disconnected:
            self.wait_healthy([node_id], timeout_s)

    def restart(self, node_id: int, timeout_s: int = 30, wait: bool = True) -> None:
        """``docker restart``: SIGTERM, then start again."""
        node = self.node(node_id)
        node.docker.restart(timeout=timeout_s)
        node.killed = False
        node.paused = False
        if wait and not node.disconnected:
            self.wait_healthy([node_id])

    def pause(self, node_id: int) -> None:
        """``docker pause``: every process of the node frozen (SIGSTOP-like)."""
        node = self.node(node_id)
        node.docker.pause()
        node.paused = True

    def unpause(self, node_id: int) -> None:
        node = self.node(node_id)
        node.docker.unpause()
        node.paused = False

    def disconnect(self, node_id: int) -> None:
        """``docker network disconnect``: the node can reach no peer and no peer it
        (its published port goes with the network endpoint, so the host loses it too)."""
        node = self.node(node_id)
        self.network._unwrap_network.disconnect(node.docker, force=True)
        node.disconnected = True

    def connect(self, node_id: int) -> None:
        """Back on the network under the same alias."""
        node = self.node(node_id)
        self.network.connect(node.docker.id, network_aliases=[node.alias])
        node.disconnected = False

    def heal(self) -> None:
        """Everything back: unpause, reconnect, start what is down; wait until healthy."""
        for node in self.nodes:
            if node.paused:
                self.unpause(node.node_id)
            if node.disconnected:
                self.connect(node.node_id)
            if node.killed or node.status() == "exited":
                self.start_node(node.node_id, wait=False)
        self.wait_healthy()

    # ------------------------------------------------------------------ observing
    def logs(self, node_id: int, tail: int | None = None) -> str:
        node = self.node(node_id)
        if node.container is None or node.container._container is None:
            return ""
        kwargs: dict[str, Any] = {"stdout": True, "stderr": True}
        if tail is not None:
            kwargs["tail"] = tail
        try:
            return bytes(node.docker.logs(**kwargs)).decode(errors="replace")
        except Exception as exc:  # noqa: BLE001
            return f"(no logs: {exc})"

    def dump_logs(self, tail: int = 40) -> str:
        return "\n".join(f"--- node {n.node_id} ({n.container_name}) ---\n{self.logs(n.node_id, tail)}"
                         for n in self.nodes)

    def describe_quorum(self, timeout_s: float = 2.0) -> dict[str, Any] | None:
        """``raftlog quorum describe --json`` against the reachable nodes (None: none answered)."""
        from raftlog.cli.quorum import describe_quorum
        from raftlog.errors import KafkaError

        servers = self.bootstrap()
        if not servers:
            return None
        try:
            return describe_quorum(servers, timeout_s)
        except KafkaError:
            return None

    def leader_id(self) -> int | None:
        view = self.describe_quorum()
        return int(view["leader_id"]) if view and view["leader_id"] else None

    def wait_for_leader(self, timeout_s: float = 30.0, not_id: int | None = None) -> int:
        """Until the quorum has a leader (other than ``not_id``); returns its id."""
        def check() -> int | None:
            leader = self.leader_id()
            return leader if leader and leader != not_id else None

        return wait_for(check, timeout_s, "a quorum leader" + (f" other than {not_id}" if not_id else ""))
