"""Followers whose log diverged from the leader's after unclean elections
(KIP-101/279 and Kafka's fetch-time DivergingEpoch, KIP-595), over real gRPC with
the RocksDB log."""

from __future__ import annotations

from pathlib import Path

from raftlog.node.broker.partition import FollowerFetch, Partition, PartitionState, Transition
from raftlog.node.broker.partition.epochs import diverging_epoch
from raftlog.node.broker.partition.follower import FollowerFetchState
from raftlog.node.controller.topics import new_topic_id
from raftlog.node.metadata.image import PartitionRegistration
from raftlog.records import read_header, read_records, split_batches, stamp
from raftlog.storage.node_db import NodeDB
from raftlog.storage.partition_log import EpochEntry, PartitionLog
from raftlog.topic_config import TopicConfig
from raftlog.v1 import metadata_pb2
from tests.broker.fake_log import MemoryPartitionLog
from tests.broker.harness import Cluster, Record, batch, poll, run

B, X = 1, 2


async def write(log: PartitionLog, base: int, epoch: int, values: list[bytes]) -> None:
    data = stamp(batch(values), base, epoch)
    await log.append([(read_header(data), data)], epoch)


def records_of(log_bytes: bytes) -> list[tuple[int, bytes | None]]:
    out: list[tuple[int, bytes | None]] = []
    for _, view in split_batches(log_bytes):
        out.extend((r.offset, r.value) for r in read_records(view))
    return out


async def prepare_unclean_history(base_dir: Path, topic_id: str) -> None:
    """The logs the issue's scenario leaves behind (RF 2, unclean election on):
    B led epoch 1 and wrote 0-9 while X had 0-4; X led epoch 2 (unclean) and wrote
    5-7; B led epoch 4 and wrote nothing; X leads epoch 6 and wrote 8-11."""
    common = [b"c0", b"c1", b"c2", b"c3", b"c4"]
    db_b = NodeDB.open(base_dir / f"broker-{B}")
    log_b = PartitionLog.open(db_b, topic_id, 0)
    await write(log_b, 0, 1, common)
    await write(log_b, 5, 1, [b"b5", b"b6", b"b7", b"b8", b"b9"])
    await log_b.assign_epoch(4)  # elected, wrote nothing, died
    await log_b.checkpoint_high_watermark(5)
    db_b.close()
    db_x = NodeDB.open(base_dir / f"broker-{X}")
    log_x = PartitionLog.open(db_x, topic_id, 0)
    await write(log_x, 0, 1, common)
    await write(log_x, 5, 2, [b"x5", b"x6", b"x7"])
    await write(log_x, 8, 6, [b"x8", b"x9"])
    await write(log_x, 10, 6, [b"x10", b"x11"])
    await log_x.checkpoint_high_watermark(5)
    db_x.close()


def test_follower_drops_divergent_suffix_after_unclean_elections(tmp_path: Path) -> None:
    """Bug 1: B must end up with exactly X's records, and X must not count B toward
    its HW or ISR while B still holds its epoch-1 records 5-9."""

    async def scenario() -> None:
        topic_id = new_topic_id()
        await prepare_unclean_history(tmp_path, topic_id)
        cluster = Cluster(tmp_path, size=2)
        # In metadata before the brokers start, so their first image has the topic.
        cluster.controller.commit([
            Record(topic=metadata_pb2.TopicRecord(name="t", topic_id=topic_id)),
            Record(partition=metadata_pb2.PartitionRecord(
                topic_id=topic_id, partition_id=0, replicas=[B, X], isr=[X],
                leader=X, leader_epoch=6, partition_epoch=9,
            )),
            Record(config=metadata_pb2.ConfigRecord(
                resource_name="t", name="unclean.leader.election.enable", value="true")),
        ])
        async with cluster as c:
            await poll(lambda: c[X].partition("t").is_leader, what="X leads")
            leader = c[X].partition("t")
            follower = c[B].partition("t")
            expected = records_of(c.log_bytes(X, "t", 12))
            assert [o for o, _ in expected] == list(range(12))
            # X adds B to the ISR only once B has caught up; by then B must hold X's records.
            await poll(lambda: B in c.isr_of("t"), timeout_s=10, what="B back in the ISR")
            assert records_of(c.log_bytes(B, "t", follower.log_end_offset)) == expected
            assert leader.high_watermark == 12
            assert [(e.epoch, e.start_offset) for e in follower.log.epochs()] == [(1, 0), (2, 5), (6, 8)]

    run(scenario())


def test_follower_replaces_its_batch_under_a_straddling_leader_batch() -> None:
    """A leader batch that starts below the follower's log end and ends after it:
    the follower's own batches under it cannot be the leader's (replicas copy whole
    batches), so it cuts to the batch's base and appends it, instead of dropping it
    and asking for the same offset forever."""

    async def scenario() -> None:
        log = MemoryPartitionLog("tid", 0)
        p = Partition(B, "t", "tid", 0, log, replica_lag_time_max_ms=1000)
        await write_memory(log, 0, 1, [b"c0", b"c1", b"c2", b"c3", b"c4"])
        await write_memory(log, 5, 1, [b"b5", b"b6", b"b7", b"b8", b"b9"])
        reg = PartitionRegistration((B, X), (X,), X, 6, 9)
        assert p.apply_metadata(reg, TopicConfig.of({}), {B: 1, X: 1}, "") is Transition.BECAME_FOLLOWER
        data = stamp(batch([b"x8", b"x9", b"x10", b"x11"]), 8, 6)
        assert await p.append_as_follower([(read_header(data), data)], p.follower_generation, 12)
        # Its batch 5-9 holds offset 8 and goes whole; the next fetch asks from 5.
        assert p.log_end_offset == 5
        assert [h.base_offset for h, _ in log.batches] == [0]
        first = stamp(batch([b"x5", b"x6", b"x7"]), 5, 2)
        assert await p.append_as_follower([(read_header(first), first), (read_header(data), data)],
                                          p.follower_generation, 12)
        assert p.log_end_offset == 12
        assert [h.base_offset for h, _ in log.batches] == [0, 5, 8]
        assert p.high_watermark == 12

    run(scenario())


async def write_memory(log: MemoryPartitionLog, base: int, epoch: int, values: list[bytes]) -> None:
    data = stamp(batch(values), base, epoch)
    await log.append([(read_header(data), data)], epoch)


class EpochLog:
    """An epoch cache and log bounds only: what the pure epoch logic reads."""

    def __init__(self, end: int, epochs: list[tuple[int, int]], start: int = 0) -> None:
        self.log_start_offset, self.log_end_offset = start, end
        self.entries = [EpochEntry(e, s) for e, s in epochs]

    def latest_epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else -1

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        if epoch < 0 or not self.entries:
            return -1, -1
        if epoch == self.entries[-1].epoch:
            return epoch, self.log_end_offset
        higher = next((e for e in self.entries if e.epoch > epoch), None)
        if higher is None:
            return -1, -1
        floor = [e for e in self.entries if e.epoch <= epoch]
        return (floor[-1].epoch if floor else epoch), higher.start_offset

    def truncate_to(self, offset: int) -> None:
        self.log_end_offset = min(offset, self.log_end_offset)
        self.entries = [e for e in self.entries if e.start_offset < self.log_end_offset]


def test_pure_follower_loop_converges_on_the_scenario() -> None:
    """The decisions a simulation drives: the leader's per-fetch check and the
    follower's truncation loop, with no log I/O."""
    leader = EpochLog(12, [(1, 0), (2, 5), (6, 8)])
    follower = EpochLog(10, [(1, 0), (4, 10)])
    state = FollowerFetchState(generation=1, needs_truncation=False)
    steps = []
    while True:
        last = state.last_fetched_epoch(follower)
        assert last is not None
        found = diverging_epoch(leader, 6, last, state.fetch_offset(follower))
        if found is None:
            break
        before = (follower.log_end_offset, follower.latest_epoch())
        step = state.on_diverging_epoch(follower, 5, *found)
        follower.truncate_to(step.offset)
        state.after_truncation(step, before[0], before[1], follower)
        steps.append((found, step.offset, step.truncation_completed))
        assert len(steps) < 5
    assert steps == [((2, 8), 10, False), ((1, 5), 5, True)]
    assert follower.log_end_offset == 5 and follower.latest_epoch() == 1


def test_pure_leader_counts_a_follower_only_once_its_log_agrees() -> None:
    leader_log = EpochLog(12, [(1, 0), (2, 5), (6, 8)])
    state = PartitionState(X, replica_lag_time_max_ms=1000, high_watermark=5)
    reg = PartitionRegistration((B, X), (X,), X, 6, 9)
    live = {B: 1, X: 1}
    assert state.apply_metadata(reg, TopicConfig.of({}), live, now_ms=0, log_end_offset=12) is Transition.BECAME_LEADER
    state.assign_epoch_start(8)
    assert state.high_watermark == 12
    # B at 12 with its stale epoch 4: diverged; neither its offset nor an expansion counts.
    seen = state.on_follower_fetch(leader_log, B, 12, 4, 1, now_ms=1)
    assert seen == FollowerFetch(diverging_epoch=(2, 8), hw_moved=False, isr_change=None)
    assert state.followers[B].log_end_offset == -1 and state.pending_isr is None
    # After its cut to 5 (epoch 1) it agrees, and catches up: now it may join.
    assert state.on_follower_fetch(leader_log, B, 5, 1, 1, now_ms=2).diverging_epoch is None
    seen = state.on_follower_fetch(leader_log, B, 12, 6, 1, now_ms=3)
    assert seen.diverging_epoch is None and seen.isr_change is not None
    assert seen.isr_change.new_isr == (X, B)


def test_pure_follower_backs_off_when_a_divergence_cut_changes_nothing() -> None:
    follower = EpochLog(5, [(1, 0)])
    state = FollowerFetchState(generation=1, needs_truncation=False)
    step = state.on_diverging_epoch(follower, 5, -1, -1)  # the leader knows no such epoch
    assert step.offset == 5
    follower.truncate_to(step.offset)
    assert not state.after_truncation(step, 5, 1, follower)
    state.on_no_progress(100.0, 50)
    assert state.delayed_until_ms == 150.0 and not state.needs_truncation
