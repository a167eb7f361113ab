"""The Raft transport's queue overflow is reported to the core.

A leader that sent a snapshot keeps the follower in snapshot state (sending it
nothing else) until it hears how the snapshot went. If the transport drops the
snapshot from an overflowing queue without saying so, the follower stays stuck
until the next election; the report lets the leader fall back to probing and
send a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from raftlog.node.quorum.transport import Transport
from raftlog.raft import Message, MessageType, RaftNode
from raftlog.v1 import raft_pb2
from tests.raft.harness import Cluster

MT = MessageType
DEADLINE_S = 10.0


class CoreFeedback:
    """Forwards transport reports to a core, as RaftDriver does (between Readies)."""

    def __init__(self, core: RaftNode) -> None:
        self.core = core
        self.unreachable: list[int] = []
        self.snapshots: list[tuple[int, bool]] = []

    def report_unreachable(self, peer: int) -> None:
        self.unreachable.append(peer)
        self.core.report_unreachable(peer)

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self.snapshots.append((peer, ok))
        self.core.report_snapshot(peer, ok)


def progress_state(core: RaftNode, peer: int) -> str:
    return dict(core.status().progress)[peer].state


def leader_with_snapshot_in_flight() -> tuple[Cluster, Message]:
    """Leader 1 has compacted past follower 3 and has just sent it a snapshot,
    which the test network withheld (the transport gets it instead)."""
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    for k in range(5):
        c[1].propose([f"s{k}".encode()])
    c.deliver()
    c.tick(1, 2, times=2)
    applied = c[1].status().applied
    c.storages[1].create_snapshot(applied, c.ids, f"state@{applied}".encode())
    c.storages[1].compact(applied)
    c.heal()
    c.filter = lambda m: m.type is not MT.SNAPSHOT
    for _ in range(10):
        if progress_state(c[1], 3) == "snapshot":
            break
        c.tick()
    assert progress_state(c[1], 3) == "snapshot"
    snaps = [m for m in c.sent if m.type is MT.SNAPSHOT and m.to == 3]
    assert snaps
    return c, snaps[-1]


async def poll(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE_S}s waiting for {what}")
        await asyncio.sleep(0.01)


def test_dropped_snapshot_on_overflow_makes_the_leader_retry() -> None:
    c, snap = leader_with_snapshot_in_flight()
    leader = c[1]

    async def scenario() -> CoreFeedback:
        in_flight = asyncio.Event()
        release = asyncio.Event()

        async def hanging_step(peer: int, request: raft_pb2.StepRequest, timeout: float) -> None:
            in_flight.set()
            await release.wait()

        feedback = CoreFeedback(leader)
        transport = Transport(1, "c", [1, 2, 3], step_call=hanging_step, max_queued=4)
        transport.feedback = feedback
        transport.start()
        heartbeat = Message(type=MT.HEARTBEAT, to=3, sender=1, term=leader.term)
        transport.send([heartbeat])  # becomes the RPC that hangs: the queue fills behind it
        await poll(in_flight.is_set, "the first RPC in flight")
        transport.send([snap])
        for _ in range(4):
            transport.send([heartbeat])
        assert transport.queued(3) <= 4
        release.set()
        await transport.close()
        return feedback

    feedback = asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
    # The leader gave up on that snapshot instead of waiting for an election...
    assert progress_state(leader, 3) == "probe", "follower left in snapshot state"
    assert feedback.snapshots == [(3, False)]
    assert feedback.unreachable == [3]
    # ...and, once the follower answers a heartbeat, sends a new one.
    c.filter = lambda m: True
    c.sent.clear()
    c.tick(1)  # one heartbeat (heartbeat_tick = 1)
    c.deliver()
    assert any(m.type is MT.SNAPSHOT and m.to == 3 for m in c.sent)
    assert c[3].status().commit == leader.status().commit


def test_overflow_without_a_snapshot_reports_unreachable_only() -> None:
    async def scenario() -> None:
        in_flight = asyncio.Event()

        async def hanging_step(peer: int, request: raft_pb2.StepRequest, timeout: float) -> None:
            in_flight.set()
            await asyncio.Event().wait()

        class Recorder:
            def __init__(self) -> None:
                self.unreachable: list[int] = []
                self.snapshots: list[tuple[int, bool]] = []

            def report_unreachable(self, peer: int) -> None:
                self.unreachable.append(peer)

            def report_snapshot(self, peer: int, ok: bool) -> None:
                self.snapshots.append((peer, ok))

        recorder = Recorder()
        transport = Transport(1, "c", [1, 2], step_call=hanging_step, max_queued=10)
        transport.feedback = recorder
        transport.start()
        transport.send([Message(type=MT.HEARTBEAT, to=2, sender=1, term=1)])
        await poll(in_flight.is_set, "the first RPC in flight")
        for term in range(2, 40):
            transport.send([Message(type=MT.HEARTBEAT, to=2, sender=1, term=term)])
        assert transport.queued(2) <= 10
        # One report per overflow, never one per dropped message.
        assert recorder.unreachable and set(recorder.unreachable) == {2}
        assert len(recorder.unreachable) < 38
        assert recorder.snapshots == []
        await transport.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))
