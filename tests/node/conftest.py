"""In-process nodes on 127.0.0.1 (free ports), driven from one event loop per test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from raftlog.node.config import NodeConfig, load_config
from raftlog.cli import local_cluster
from raftlog.node.app import Node, StorageFactory, memory_storage

T = TypeVar("T")


def free_ports(count: int) -> list[int]:
    """Ports the OS just handed out for port 0 on 127.0.0.1 (closed again before use)."""
    return local_cluster.free_ports("127.0.0.1", count)


def voters_flag(ports: list[int]) -> str:
    return ",".join(f"{i}@127.0.0.1:{port}" for i, port in enumerate(ports, start=1))


def node_config(node_id: int, ports: list[int], base: Path, **overrides: Any) -> NodeConfig:
    flags: dict[str, Any] = {
        "node_id": node_id,
        "voters": voters_flag(ports),
        "data_dir": str(base / f"node-{node_id}"),
        "tick_ms": 20,
        "no_op_interval_ms": 200,
    }
    flags.update(overrides)
    return load_config(flags)


def run(coro: Awaitable[T], timeout_s: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout_s)

    return asyncio.run(bounded())


async def poll(
    condition: Callable[[], Awaitable[bool] | bool], timeout_s: float = 10.0, what: str = "condition"
) -> None:
    """Poll until ``condition()`` is true, failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.02)


class InProcessCluster:
    def __init__(self, base: Path, size: int = 3, storage_factory: StorageFactory | None = None,
                 **overrides: Any) -> None:
        self.ports = free_ports(size)
        self.base = base
        self.overrides = overrides
        self.storage_factory = storage_factory or memory_storage
        self.nodes: dict[int, Node] = {}

    def config(self, node_id: int) -> NodeConfig:
        return node_config(node_id, self.ports, self.base, **self.overrides)

    async def start(self, node_id: int | None = None) -> None:
        ids = [node_id] if node_id is not None else list(range(1, len(self.ports) + 1))
        for i in ids:
            node = Node(self.config(i), storage_factory=self.storage_factory)
            await node.start()
            self.nodes[i] = node

    async def stop(self, node_id: int | None = None, controlled: bool = False) -> None:
        ids = [node_id] if node_id is not None else list(self.nodes)
        await asyncio.gather(*(self.nodes.pop(i).stop(controlled=controlled) for i in ids
                               if i in self.nodes))

    def leaders(self) -> list[int]:
        return [i for i, n in self.nodes.items() if n.driver.is_leader]

    def agreed_leader(self) -> int:
        """The leader every running node names (0 while they disagree)."""
        named = {n.driver.leader_id for n in self.nodes.values()}
        if len(named) == 1:
            (leader,) = named
            if leader in self.nodes and self.nodes[leader].driver.is_leader:
                return leader
        return 0

    async def wait_leader(self, timeout_s: float = 10.0) -> int:
        await poll(lambda: self.agreed_leader() != 0, timeout_s, "an agreed leader")
        return self.agreed_leader()

    def address(self, node_id: int) -> str:
        return f"127.0.0.1:{self.ports[node_id - 1]}"
