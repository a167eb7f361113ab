"""The per-peer sender: batching while an RPC is in flight, order, failure handling."""

from __future__ import annotations

import asyncio

from raftlog.node.quorum.codec import messages_from_pb
from raftlog.node.quorum.transport import Transport
from raftlog.raft.types import Message, MessageType, Snapshot, SnapshotMeta
from raftlog.v1 import raft_pb2
from tests.node.conftest import poll, run


class Feedback:
    def __init__(self) -> None:
        self.unreachable: list[int] = []
        self.snapshots: list[tuple[int, bool]] = []

    def report_unreachable(self, peer: int) -> None:
        self.unreachable.append(peer)

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self.snapshots.append((peer, ok))


def hb(to: int, term: int) -> Message:
    return Message(type=MessageType.HEARTBEAT, to=to, sender=1, term=term)


def test_batches_while_in_flight_and_keeps_order() -> None:
    async def scenario() -> None:
        calls: list[tuple[int, list[int]]] = []
        gate = asyncio.Event()

        async def step(peer: int, req: raft_pb2.StepRequest, timeout: float) -> None:
            assert req.cluster_id == "c" and req.sender == 1 and timeout == 2.0
            calls.append((peer, [m.term for m in messages_from_pb(req.messages)]))
            await gate.wait()

        t = Transport(1, "c", [1, 2, 3], step_call=step)
        t.start()
        t.send([hb(2, 1)])
        await poll(lambda: len(calls) == 1, what="first RPC in flight")
        # While the first RPC to peer 2 is in flight, these queue up and go as one.
        for term in range(2, 6):
            t.send([hb(2, term), hb(3, term)])
        await poll(lambda: len(calls) >= 2, what="peer 3's RPC")
        gate.set()
        await poll(lambda: sum(len(ts) for p, ts in calls if p == 2) == 5, what="all of peer 2's")
        to_2 = [ts for p, ts in calls if p == 2]
        assert to_2 == [[1], [2, 3, 4, 5]]
        assert [m for p, ts in calls if p == 3 for m in ts] == [2, 3, 4, 5]
        await t.close()

    run(scenario())


def test_failure_reports_unreachable_drops_and_retries() -> None:
    async def scenario() -> None:
        attempts: list[list[int]] = []
        healthy = False

        async def step(peer: int, req: raft_pb2.StepRequest, timeout: float) -> None:
            attempts.append([m.term for m in messages_from_pb(req.messages)])
            if not healthy:
                raise ConnectionError("peer down")

        fb = Feedback()
        t = Transport(1, "c", [1, 2], step_call=step, backoff_min_s=0.01, backoff_max_s=0.02)
        t.feedback = fb
        t.start()
        snap = Message(type=MessageType.SNAPSHOT, to=2, sender=1, term=1,
                       snapshot=Snapshot(SnapshotMeta(1, 1, (1, 2)), b"x"))
        t.send([snap])
        await poll(lambda: fb.unreachable == [2], what="unreachable report")
        assert fb.snapshots == [(2, False)]
        for term in range(2, 5):
            t.send([hb(2, term)])
            await poll(lambda: len(attempts) >= term, what=f"attempt {term}")
        assert len(fb.unreachable) >= 3  # every failed batch is reported, and retried later
        healthy = True
        t.send([hb(2, 9)])
        await poll(lambda: attempts[-1][-1] == 9, what="delivery after recovery")
        failed_batches = len(fb.unreachable)
        t.send([snap])
        await poll(lambda: fb.snapshots[-1] == (2, True), what="snapshot delivered report")
        assert len(fb.unreachable) == failed_batches
        # The first failed batch was dropped, not resent.
        assert sum(1 for a in attempts if a == [1]) == 2  # once failed, once the second snapshot
        await t.close()

    run(scenario())


def test_queue_is_bounded_while_a_peer_hangs() -> None:
    async def scenario() -> None:
        async def step(peer: int, req: raft_pb2.StepRequest, timeout: float) -> None:
            await asyncio.sleep(3600)

        t = Transport(1, "c", [1, 2], step_call=step, max_queued=100)
        t.start()
        t.send([hb(2, 1)])
        await asyncio.sleep(0)
        for term in range(2, 1000):
            t.send([hb(2, term)])
        assert t.queued(2) <= 100
        await t.close()
        t.send([hb(2, 1)])  # after close: ignored, no error

    run(scenario())


def test_unknown_recipient_is_dropped() -> None:
    async def scenario() -> None:
        async def step(peer: int, req: raft_pb2.StepRequest, timeout: float) -> None:
            raise AssertionError("nothing to send")

        t = Transport(1, "c", [1, 2], step_call=step)
        t.start()
        t.send([hb(9, 1)])
        await t.close()

    run(scenario())
