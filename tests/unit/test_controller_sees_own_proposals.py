"""Bug 2: every controller decision sees every record the same leader proposed before,
committed or not (Kafka's QuorumController applies records at append time).

A fake Raft log stands in for the quorum: it appends at once and commits only when
the test says so, so a proposal can time out and still commit later.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Callable

from raftlog.node.controller.quorum_controller import QuorumController
from raftlog.node.metadata.loader import MetadataLoader
from raftlog.node.metadata.image import MetadataImage
from raftlog.node.quorum.driver import ProposalResult
from raftlog.node.quorum.errors import NotLeaderError
from raftlog.errors import ErrorCode, KafkaError
from raftlog.raft.types import Entry
from raftlog.v1 import admin_pb2, controller_pb2, metadata_pb2
from tests.unit.test_controller_topics import Cluster


class FakeQuorum:
    """The leader's side of a Raft log whose commit the test releases by hand."""

    node_id = 1
    leader_id = 1
    is_leader = True
    decisions_ready = True
    running = True
    term = 1
    append_failures = 0
    config = SimpleNamespace(election_tick=10, tick_ms=10)

    def __init__(self, base: Cluster) -> None:
        self.loader = MetadataLoader(node_id=1)
        self.loader.load_snapshot(base.loader.snapshot_data())
        self.last_index = base.loader.image.offset
        self.uncommitted: list[tuple[Entry, asyncio.Future[ProposalResult] | None]] = []
        self.last_proposal_at = 0.0
        self._results: dict[int, ProposalResult] = {}

    @property
    def next_index(self) -> int:
        return self.last_index + 1

    @property
    def applied(self) -> int:
        return self.loader.image.offset

    @property
    def image(self) -> MetadataImage:
        return self.loader.image

    def not_leader(self, message: str = "not the leader") -> NotLeaderError:
        return NotLeaderError(message)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        return predicate()

    async def wait_for_leader(self, timeout_s: float) -> int:
        return self.leader_id

    def append(self, records: list[bytes]) -> tuple[ProposalResult, asyncio.Future[ProposalResult]]:
        future: asyncio.Future[ProposalResult] = asyncio.get_running_loop().create_future()
        first = self.last_index + 1
        for i, data in enumerate(records):
            last = i == len(records) - 1
            self.uncommitted.append((Entry(term=self.term, index=first + i, data=data), future if last else None))
        self.last_index += len(records)
        self._results[id(future)] = ProposalResult(self.term, first, self.last_index)
        return self._results[id(future)], future

    async def propose(self, records: list[bytes], timeout_s: float) -> ProposalResult:
        _, future = self.append(records)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, "proposal not committed in time") from None

    def commit_all(self) -> None:
        entries = [entry for entry, _ in self.uncommitted]
        futures = [f for _, f in self.uncommitted if f is not None]
        self.uncommitted = []
        self.loader.apply_entries(entries)
        for future in futures:
            if not future.done():
                future.set_result(self._results[id(future)])


def a_cluster_with_one_partition() -> tuple[Cluster, str]:
    """Brokers 1..3 live; topic t with one partition, replicas = ISR = [1, 2, 3], leader 1."""
    cluster = Cluster(brokers=3)
    topic_id = "t-id"
    cluster.commit([
        metadata_pb2.MetadataRecord(topic=metadata_pb2.TopicRecord(name="t", topic_id=topic_id)),
        metadata_pb2.MetadataRecord(partition=metadata_pb2.PartitionRecord(
            topic_id=topic_id, partition_id=0, replicas=[1, 2, 3], isr=[1, 2, 3], leader=1)),
    ])
    return cluster, topic_id


def runtime(quorum: FakeQuorum) -> QuorumController:
    config = SimpleNamespace(node_id=1, cluster_id="c", request_timeout_ms=5000, no_op_interval_ms=500)
    return QuorumController(config, quorum)  # type: ignore[arg-type]


async def poll(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def shrink_to_1_2(quorum: FakeQuorum, topic_id: str) -> controller_pb2.AlterPartitionRequest:
    """Leader 1's AlterPartition shrinking partition 0's ISR {1,2,3} to {1,2}."""
    part = quorum.image.topics[topic_id].partitions[0]
    return controller_pb2.AlterPartitionRequest(
        broker_id=1, broker_epoch=quorum.image.brokers[1].broker_epoch,
        partitions=[controller_pb2.AlterPartitionItem(
            topic_id=topic_id, partition=0, leader_epoch=part.leader_epoch,
            partition_epoch=part.partition_epoch, new_isr=[1, 2])],
    )


def test_fencing_after_a_timed_out_isr_shrink_sees_the_shrink() -> None:
    """The issue's scenario: the leader shrinks ISR {1,2,3} to {1,2}; the proposal times
    out but stays in the log; broker 2 is fenced next. The fence must be decided on
    ISR {1,2} (giving {1}), never on the old {1,2,3} (giving {1,3}, which would make 3,
    whose log end is below the HW, eligible to lead)."""

    async def scenario() -> None:
        base, topic_id = a_cluster_with_one_partition()
        quorum = FakeQuorum(base)
        node = runtime(quorum)
        shrink = shrink_to_1_2(quorum, topic_id)
        try:
            await node.alter_partition(shrink, 0.05)
        except KafkaError as exc:
            assert exc.code == ErrorCode.REQUEST_TIMED_OUT
        else:
            raise AssertionError("the shrink should have timed out (nothing commits yet)")
        assert len(quorum.uncommitted) == 1, "the timed-out shrink stays in the leader's log"

        # Broker 2's heartbeat stream breaks: the controller fences it (what the
        # BrokerHeartbeatManager asks for).
        fence = asyncio.get_running_loop().create_task(
            node.fence_broker(2, quorum.image.brokers[2].broker_epoch, 5.0))
        await poll(lambda: len(quorum.uncommitted) >= 2, "the fence proposal")
        quorum.commit_all()
        await fence

        after = quorum.image.topics[topic_id].partitions[0]
        assert quorum.image.brokers[2].fenced
        assert after.isr == (1,), f"ISR is {after.isr}: the fence was decided on an image without the shrink"
        assert after.leader == 1

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_create_topic_retried_after_a_timeout_does_not_create_a_second_topic() -> None:
    async def scenario() -> None:
        base, _ = a_cluster_with_one_partition()
        quorum = FakeQuorum(base)
        node = runtime(quorum)
        request = admin_pb2.CreateTopicRequest(name="orders", partitions=1, replication_factor=3)
        try:
            await node.create_topic(request, 0.05)
        except KafkaError as exc:
            assert exc.code == ErrorCode.REQUEST_TIMED_OUT
        else:
            raise AssertionError("the create should have timed out (nothing commits yet)")
        retry = asyncio.get_running_loop().create_task(node.create_topic(request, 5.0))
        try:
            await poll(lambda: retry.done() or len(quorum.uncommitted) >= 4, "the retried create")
            quorum.commit_all()
            await retry
        except KafkaError as exc:
            assert exc.code == ErrorCode.TOPIC_ALREADY_EXISTS
        else:
            raise AssertionError("the retry created the topic a second time")
        names = [t.name for t in quorum.image.topics.values()]
        assert names.count("orders") == 1, f"topics: {names}"

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_an_append_that_never_reached_the_log_is_reverted() -> None:
    """An append that fails before it lands (leadership transfer in progress, ...) must
    not stay in the state the next decision is made on."""

    async def scenario() -> None:
        base, topic_id = a_cluster_with_one_partition()
        quorum = FakeQuorum(base)
        node = runtime(quorum)
        shrink = shrink_to_1_2(quorum, topic_id)
        task = asyncio.get_running_loop().create_task(node.alter_partition(shrink, 5.0))
        await poll(lambda: len(quorum.uncommitted) == 1, "the shrink appended")
        # The driver reports the append failed: it is not in the log.
        entry, future = quorum.uncommitted.pop()
        quorum.last_index -= 1
        quorum.append_failures += 1
        assert future is not None
        future.set_exception(NotLeaderError("proposal dropped: leadership transfer in progress"))
        try:
            await task
        except KafkaError as exc:
            assert exc.code == ErrorCode.NOT_CONTROLLER
        else:
            raise AssertionError("the failed append was answered as a success")
        # The same request again is decided on the committed state (ISR {1,2,3}), so
        # it is a change to write, not a no-op on a state that never reached the log.
        retry = asyncio.get_running_loop().create_task(node.alter_partition(shrink, 5.0))
        await poll(lambda: len(quorum.uncommitted) == 1, "the retried shrink appended")
        quorum.commit_all()
        response = await retry
        assert not response.partitions[0].HasField("error")
        assert quorum.image.topics[topic_id].partitions[0].isr == (1, 2)

    asyncio.run(asyncio.wait_for(scenario(), 10))
