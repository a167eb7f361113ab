"""The nemesis: faults on a seeded schedule, at most one node down at a time.

Every step waits a seeded gap, picks a seeded fault, and first makes sure the cluster
is whole again (restarts a killed node, waits until every broker is live and every
ISR full) so that the metadata quorum and min.insync.replicas stay reachable: a
three-node cluster never has two nodes down, paused or cut off at once. Kills leave
the node down until the next ``restart`` (or until another fault needs the slot).
Pauses and partitions last past ``broker.session.timeout.ms`` and are healed by the
same step. Before each SIGKILL the nemesis notes which partitions the victim led and,
if it was the active controller, times the failover to the next committed metadata
change (the new leader's quorum high watermark past the one seen just before).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Callable

from raftlog.errors import KafkaError
from raftlog.v1 import admin_pb2, broker_pb2
from tests.chaos.drivers import Driver
from tests.chaos.history import FaultEvent, History
from tests.chaos.workload import Rpc


class Nemesis:
    def __init__(self, driver: Driver, rpc: Rpc, topic: str, faults: list[str], rng: random.Random,
                 history: History, session_timeout_s: float, gap_s: tuple[float, float] = (2.0, 6.0),
                 log: Callable[[str], None] | None = None, t0: float | None = None) -> None:
        self.driver = driver
        self.rpc = rpc
        self.topic = topic
        self.faults = faults
        self.rng = rng
        self.history = history
        self.session_timeout_s = session_timeout_s
        self.gap_s = gap_s
        self.t0 = t0 if t0 is not None else time.monotonic()
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._pollers: list[asyncio.Task[None]] = []
        self._restarted: dict[int, str] = {}
        """Restarted node -> the broker incarnation it had before: until metadata shows
        a new one, the cluster's view of that node is stale (a node restarted right
        after its SIGKILL can still look unfenced and in every ISR)."""

    def log(self, text: str) -> None:
        self._log(f"[chaos +{time.monotonic() - self.t0:7.2f}s] {text}")

    # ------------------------------------------------------------ cluster views
    def live_addresses(self, exclude: int | None = None) -> list[str]:
        return [self.driver.address(n) for n in self.driver.node_ids
                if n != exclude and self.driver.is_running(n)]

    async def _ask(self, method: str, request: object, exclude: int | None = None, timeout_s: float = 1.0,
                   admin: bool = True) -> object | None:
        for address in self.live_addresses(exclude):
            try:
                answer: object = await self.rpc.call(address, method, request, timeout_s, admin=admin)
                return answer
            except KafkaError:
                continue
        return None

    async def quorum(self, exclude: int | None = None) -> admin_pb2.DescribeQuorumResponse | None:
        view = await self._ask("DescribeQuorum", admin_pb2.DescribeQuorumRequest(), exclude)
        return view if isinstance(view, admin_pb2.DescribeQuorumResponse) else None

    async def partition_leaders(self) -> dict[int, int]:
        md = await self._ask("Metadata", broker_pb2.MetadataRequest(topics=[self.topic]), admin=False)
        if not isinstance(md, broker_pb2.MetadataResponse):
            return {}
        return {p.partition: p.leader for t in md.topics for p in t.partitions}

    async def healthy(self) -> str | None:
        """None when every node runs, every broker is unfenced and every partition of
        the topic has a leader and a full ISR; else what is missing."""
        down = [n for n in self.driver.node_ids if not self.driver.is_running(n)]
        if down:
            return f"nodes {down} are down"
        cluster = await self._ask("DescribeCluster", admin_pb2.DescribeClusterRequest())
        if not isinstance(cluster, admin_pb2.DescribeClusterResponse) or not cluster.controller_id:
            return "no active controller"
        fenced = [b.broker_id for b in cluster.brokers if b.fenced]
        if fenced or len(cluster.brokers) < len(self.driver.node_ids):
            return f"brokers fenced: {fenced}, registered: {len(cluster.brokers)}"
        incarnations = {b.broker_id: b.incarnation_id for b in cluster.brokers}
        stale = [n for n, old in self._restarted.items() if incarnations.get(n, old) == old]
        if stale:
            return f"restarted nodes {stale} not registered again yet"
        # The topic from the node that described the cluster: an image at least as new.
        desc = await self._ask_node(cluster.answered_by, "DescribeTopic",
                                    admin_pb2.DescribeTopicRequest(name=self.topic))
        if not isinstance(desc, admin_pb2.TopicDescription):
            return "topic not described"
        short = [p.partition for p in desc.partitions if p.leader < 0 or len(p.isr) < len(p.replicas)]
        if short:
            return f"partitions {short} lack a leader or a full ISR"
        self._restarted.clear()
        return None

    async def _ask_node(self, node_id: int, method: str, request: object) -> object | None:
        if node_id in self.driver.node_ids and self.driver.is_running(node_id):
            try:
                answer: object = await self.rpc.call(self.driver.address(node_id), method, request, 1.0, admin=True)
                return answer
            except KafkaError:
                pass
        return await self._ask(method, request)

    async def incarnations(self) -> dict[int, str]:
        for _ in range(20):
            cluster = await self._ask("DescribeCluster", admin_pb2.DescribeClusterRequest())
            if isinstance(cluster, admin_pb2.DescribeClusterResponse) and cluster.brokers:
                return {b.broker_id: b.incarnation_id for b in cluster.brokers}
            await asyncio.sleep(0.1)
        return {}

    async def wait_healthy(self, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while True:
            why = await self.healthy()
            if why is None or time.monotonic() >= deadline:
                return why
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ faults
    async def restart_down(self, fault: str = "restart", note: str = "") -> None:
        down = [n for n in self.driver.node_ids if not self.driver.is_running(n)]
        before = await self.incarnations() if down else {}
        for node in down:
            if not self.driver.is_running(node):
                self._restarted[node] = before.get(node, "")
                await asyncio.to_thread(self.driver.restart, node)
                self.history.faults.append(FaultEvent(time.monotonic(), fault, node, "restart", note=note))
                self.log(f"restart node {node} {note}".rstrip())

    async def heal_all(self) -> None:
        """Everything back: resume, reconnect, restart."""
        for node in self.driver.node_ids:
            if self.driver.is_running(node):
                await asyncio.to_thread(self.driver.resume, node)
        await asyncio.to_thread(self.driver.heal)
        await self.restart_down(note="(final heal)")

    async def run(self, deadline: float, abort: Callable[[], str | None] = lambda: None) -> None:
        while time.monotonic() < deadline:
            if (why := abort()) is not None:
                raise RuntimeError(f"workload broke: {why}")
            gap = self.rng.uniform(*self.gap_s)
            fault = self.rng.choice(self.faults)
            pick = self.rng.random()  # drawn every step, so the schedule does not depend on timing
            await asyncio.sleep(max(0.0, min(gap, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                break
            await self.step(fault, pick)
        for task in self._pollers:
            try:
                await asyncio.wait_for(task, 30)
            except TimeoutError:
                task.cancel()

    async def step(self, fault: str, pick: float) -> None:
        if fault == "restart":
            await self.restart_down()
            return
        await self.restart_down(note=f"(before {fault})")
        why = await self.wait_healthy(60)
        if why is not None:
            self.history.faults.append(FaultEvent(time.monotonic(), fault, None, "skip", note=why))
            self.log(f"skip {fault}: cluster not whole after 60 s ({why})")
            return
        nodes = self.driver.node_ids
        if fault == "kill-controller":
            view = await self.quorum()
            if view is None or view.leader_id not in nodes:
                self.history.faults.append(FaultEvent(time.monotonic(), fault, None, "skip", note="no controller"))
                return
            await self.kill(fault, view.leader_id)
        elif fault == "kill-leader":
            leaders = await self.partition_leaders()
            partition = sorted(leaders)[int(pick * len(leaders))] if leaders else None
            victim = leaders.get(partition, -1) if partition is not None else -1
            if victim not in nodes:
                self.history.faults.append(FaultEvent(time.monotonic(), fault, None, "skip", note="no leader"))
                return
            await self.kill(fault, victim)
        elif fault == "kill-random":
            await self.kill(fault, nodes[int(pick * len(nodes))])
        elif fault in ("pause", "partition"):
            victim = nodes[int(pick * len(nodes))]
            hold = self.session_timeout_s + 0.5 + pick * 1.5
            leaders = await self.partition_leaders()
            view = await self.quorum()
            event = FaultEvent(time.monotonic(), fault, victim, "pause" if fault == "pause" else "isolate",
                               was_controller=view is not None and view.leader_id == victim,
                               led_partitions=sorted(p for p, b in leaders.items() if b == victim))
            if fault == "pause":
                await asyncio.to_thread(self.driver.pause, victim)
            else:
                await asyncio.to_thread(self.driver.isolate, victim)
            self.history.faults.append(event)
            self.log(f"{event.action} node {victim} for {hold:.1f}s (controller={event.was_controller},"
                     f" leads {event.led_partitions})")
            await asyncio.sleep(hold)
            if fault == "pause":
                await asyncio.to_thread(self.driver.resume, victim)
            else:
                await asyncio.to_thread(self.driver.heal)
            self.history.faults.append(FaultEvent(time.monotonic(), fault, victim,
                                                  "resume" if fault == "pause" else "heal"))
            self.log(f"{'resume' if fault == 'pause' else 'heal'} node {victim}")
        else:
            raise ValueError(f"unknown fault {fault!r}")

    async def kill(self, fault: str, victim: int) -> None:
        leaders = await self.partition_leaders()
        view = await self.quorum()
        was_controller = view is not None and view.leader_id == victim
        event = FaultEvent(0.0, fault, victim, "kill", address=self.driver.address(victim),
                           was_controller=was_controller,
                           led_partitions=sorted(p for p, b in leaders.items() if b == victim),
                           quorum_hw=view.high_watermark if view is not None else None)
        event.t = time.monotonic()
        await asyncio.to_thread(self.driver.kill, victim)
        self.history.faults.append(event)
        self.log(f"SIGKILL node {victim} ({fault}; controller={was_controller}, leads {event.led_partitions})")
        if was_controller and event.quorum_hw is not None:
            self._pollers.append(asyncio.get_running_loop().create_task(self._time_controller_failover(event)))

    async def _time_controller_failover(self, event: FaultEvent, timeout_s: float = 60.0) -> None:
        assert event.quorum_hw is not None
        while time.monotonic() - event.t < timeout_s:
            view = await self.quorum(exclude=event.node)
            if (view is not None and view.leader_id not in (0, event.node)
                    and view.high_watermark > event.quorum_hw):
                event.controller_failover_s = time.monotonic() - event.t
                self.log(f"controller failover: node {view.leader_id} committed metadata offset"
                         f" {view.high_watermark} {event.controller_failover_s * 1000:.0f} ms after the kill")
                return
            await asyncio.sleep(0.01)
