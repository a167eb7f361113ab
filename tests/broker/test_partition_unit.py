"""The ISR/HW rules and the producer state of one partition, without a network."""

from __future__ import annotations

import asyncio

import pytest

from raftlog.node.broker.partition import Partition, Role, Transition, validate_produce
from raftlog.node.broker.producer_state import ProducerStateManager
from raftlog.node.metadata.image import PartitionRegistration
from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import read_header
from raftlog.topic_config import TopicConfig
from tests.broker.fake_log import MemoryPartitionLog
from tests.broker.harness import batch, run

LIVE = {1: 10, 2: 20, 3: 30}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def leader_partition(isr: tuple[int, ...] = (1, 2, 3), clock: Clock | None = None,
                     configs: dict[str, str] | None = None) -> Partition:
    p = Partition(1, "t", "tid", 0, MemoryPartitionLog("tid", 0), replica_lag_time_max_ms=1000,
                  clock=clock or Clock())
    reg = PartitionRegistration((1, 2, 3), isr, 1, 0, 0)
    assert p.apply_metadata(reg, TopicConfig.of(configs or {}), LIVE, "h:1") is Transition.BECAME_LEADER
    return p


async def append(p: Partition, n: int = 1, acks: int = 1) -> int:
    result = await p.append_as_leader(validate_produce(batch([b"v"] * n), 1 << 20), acks)
    return result.base_offset


def test_hw_is_min_isr_leo_and_never_decreases() -> None:
    async def scenario() -> None:
        p = leader_partition()
        await append(p, 5)
        assert p.high_watermark == 0  # no follower has fetched yet
        p.update_follower_fetch_state(2, 5, 20)
        assert p.high_watermark == 0
        p.update_follower_fetch_state(3, 3, 30)
        assert p.high_watermark == 3
        p.update_follower_fetch_state(3, 5, 30)
        assert p.high_watermark == 5
        # A follower that reports a lower offset (it truncated) never moves the HW back.
        p.update_follower_fetch_state(3, 2, 30)
        assert p.high_watermark == 5
        # Shrinking the ISR lets the HW move to the remaining members' minimum.
        await append(p, 2)
        p.update_follower_fetch_state(2, 7, 20)
        assert p.high_watermark == 5
        p.apply_metadata(PartitionRegistration((1, 2, 3), (1, 2), 1, 0, 1), TopicConfig.of({}), LIVE, "")
        assert p.high_watermark == 7

    run(scenario())


def test_maximal_isr_counts_pending_expansion() -> None:
    async def scenario() -> None:
        clock = Clock()
        p = leader_partition(isr=(1, 2), clock=clock)
        await append(p, 4)
        p.update_follower_fetch_state(2, 4, 20)
        assert p.high_watermark == 4
        async with p.log_lock:
            await p.ensure_leader_ready()
        p.update_follower_fetch_state(3, 4, 30)
        change = p.prepare_isr_expansion()
        assert change is not None and change.new_isr == (1, 2, 3)
        assert p.maximal_isr == (1, 2, 3) and p.isr == (1, 2)
        await append(p, 2)
        p.update_follower_fetch_state(2, 6, 20)
        assert p.high_watermark == 4  # 3 may already be in the ISR at the controller
        p.on_alter_partition_result(change, ErrorCode.INVALID_UPDATE_VERSION, -1)
        assert p.pending_isr is change and p.high_watermark == 4  # still unknown: wait for metadata
        p.on_alter_partition_result(change, ErrorCode.OPERATION_NOT_ATTEMPTED, -1)
        assert p.pending_isr is None and p.high_watermark == 6

    run(scenario())


def test_shrink_uses_last_caught_up_time() -> None:
    async def scenario() -> None:
        clock = Clock()
        p = leader_partition(clock=clock)
        await append(p, 3)
        clock.now += 100  # tA
        p.update_follower_fetch_state(2, 3, 20)
        p.update_follower_fetch_state(3, 2, 30)  # behind the leader's end (3) at tA
        clock.now += 500
        await append(p, 1)
        p.update_follower_fetch_state(2, 4, 20)
        # 3 now reached what the leader had at its previous fetch: caught up as of tA.
        p.update_follower_fetch_state(3, 3, 30)
        clock.now += 450  # tA + 950
        assert p.prepare_isr_shrink() is None
        clock.now += 100  # tA + 1050
        p.update_follower_fetch_state(2, 4, 20)
        change = p.prepare_isr_shrink()
        assert change is not None and change.new_isr == (1, 2)
        assert p.maximal_isr == (1, 2, 3)  # a pending shrink keeps the larger ISR for the HW

    run(scenario())


def test_acks_all_waits_and_fails_on_leadership_loss_or_shrink() -> None:
    async def scenario() -> None:
        p = leader_partition(configs={"min.insync.replicas": "2"})
        result = await p.append_as_leader(validate_produce(batch([b"v"]), 1 << 20), -1)
        waiter = asyncio.ensure_future(p.wait_for_hw(result.required_hw, 5))
        await asyncio.sleep(0)
        p.update_follower_fetch_state(2, 1, 20)
        assert not waiter.done()
        # ISR shrinks to just the leader: the HW passes the batch, min.insync is not met.
        p.apply_metadata(PartitionRegistration((1, 2, 3), (1,), 1, 0, 1), TopicConfig.of(
            {"min.insync.replicas": "2"}), LIVE, "")
        with pytest.raises(KafkaError) as err:
            await waiter
        assert err.value.code == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        with pytest.raises(KafkaError) as err:
            await append(p, acks=-1)
        assert err.value.code == ErrorCode.NOT_ENOUGH_REPLICAS
        p.apply_metadata(PartitionRegistration((1, 2, 3), (1, 2, 3), 1, 0, 2), TopicConfig.of({}), LIVE, "")
        result = await p.append_as_leader(validate_produce(batch([b"v"]), 1 << 20), -1)
        waiter = asyncio.ensure_future(p.wait_for_hw(result.required_hw, 5))
        await asyncio.sleep(0)
        assert p.apply_metadata(PartitionRegistration((1, 2, 3), (2, 3), 2, 1, 3), TopicConfig.of({}), LIVE,
                                "h:2") is Transition.BECAME_FOLLOWER
        assert p.role is Role.FOLLOWER
        with pytest.raises(KafkaError) as err:
            await waiter
        assert err.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert err.value.info.leader_id == 2 and err.value.info.leader_address == "h:2"
        with pytest.raises(KafkaError) as err:
            await p.wait_for_hw(1, 0.01)
        assert err.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER

    run(scenario())


def test_acks_all_times_out() -> None:
    async def scenario() -> None:
        p = leader_partition()
        result = await p.append_as_leader(validate_produce(batch([b"v"]), 1 << 20), -1)
        with pytest.raises(KafkaError) as err:
            await p.wait_for_hw(result.required_hw, 0.05)
        assert err.value.code == ErrorCode.REQUEST_TIMED_OUT

    run(scenario())


def test_stale_metadata_is_ignored() -> None:
    p = leader_partition()
    p.apply_metadata(PartitionRegistration((1, 2, 3), (1, 2, 3), 2, 3, 5), TopicConfig.of({}), LIVE, "")
    assert p.role is Role.FOLLOWER and p.leader_epoch == 3
    assert p.apply_metadata(PartitionRegistration((1, 2, 3), (1, 2, 3), 1, 2, 4), TopicConfig.of({}), LIVE,
                            "") is Transition.NONE
    assert p.role is Role.FOLLOWER and p.leader_epoch == 3


def _header(pid: int, epoch: int, seq: int, n: int = 1, offset: int = 0):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    h = read_header(batch([b"x"] * n, producer_id=pid, producer_epoch=epoch, base_sequence=seq))
    return replace(h, base_offset=offset)


def test_producer_state_rules() -> None:
    state = ProducerStateManager()
    state.built_to = 0
    # Unknown producers are accepted at any sequence (state may have aged out).
    assert state.check(_header(7, 0, 42), {}) is None
    state.update(_header(7, 0, 0, n=2, offset=0))
    assert state.check(_header(7, 0, 0, n=2), {}) is not None  # duplicate
    assert state.check(_header(7, 0, 2), {}) is None
    with pytest.raises(KafkaError) as err:
        state.check(_header(7, 0, 3), {})
    assert err.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    with pytest.raises(KafkaError) as err:
        state.check(_header(7, 1, 5), {})  # a new epoch starts at 0
    assert err.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state.check(_header(7, 1, 0), {}) is None
    for i in range(1, 7):
        state.update(_header(7, 0, 2 * i, n=2, offset=2 * i))
    # Only the last 5 batches are remembered.
    assert len(state.producers[7].batches) == 5
    assert state.check(_header(7, 0, 12, n=2), {}) is not None
    with pytest.raises(KafkaError):
        state.check(_header(7, 0, 0, n=2), {})
    state.update(_header(7, 2, 0, offset=20))
    with pytest.raises(KafkaError) as err:
        state.check(_header(7, 1, 1), {})
    assert err.value.code == ErrorCode.INVALID_PRODUCER_EPOCH


def test_producer_state_truncation() -> None:
    state = ProducerStateManager()
    state.built_to = 0
    state.update(_header(7, 0, 0, n=2, offset=0))
    state.update(_header(7, 0, 2, n=2, offset=2))
    state.update(_header(8, 0, 0, n=1, offset=4))
    state.truncate(3)
    assert state.built_to == 3 and 8 not in state.producers
    assert [b.first_seq for b in state.producers[7].batches] == [0]
    assert state.check(_header(7, 0, 2), {}) is None  # the dropped batch may be written again
