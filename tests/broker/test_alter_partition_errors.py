"""A refused AlterPartition keeps the maximal ISR until metadata shows the outcome
(KIP-497, Kafka's handleAlterPartitionError): only OPERATION_NOT_ATTEMPTED and
INELIGIBLE_REPLICA prove the change was not applied."""

from __future__ import annotations

import pytest

from raftlog.errors import ErrorCode
from raftlog.node.broker.partition import Partition
from raftlog.node.metadata.image import PartitionRegistration
from raftlog.topic_config import TopicConfig
from tests.broker.harness import run
from tests.broker.test_partition_unit import LIVE, Clock, append, leader_partition


async def expansion_with_unknown_outcome(clock: Clock) -> Partition:
    """Leader 1 with ISR {1}; follower 2 caught up at 4; the expansion to {1, 2} was
    sent, its outcome unknown, and it was sent again."""
    p = leader_partition(isr=(1,), clock=clock)
    async with p.log_lock:
        await p.ensure_leader_ready()
    await append(p, 4)
    p.update_follower_fetch_state(2, 4, 20)
    change = p.prepare_isr_expansion()
    assert change is not None and change.new_isr == (1, 2)
    p.on_alter_partition_result(change, None, -1, transport_failed=True)
    assert p.resend_candidate() is change
    return p


@pytest.mark.parametrize("error", [ErrorCode.INVALID_UPDATE_VERSION, ErrorCode.FENCED_LEADER_EPOCH])
def test_refused_retry_of_a_maybe_committed_expansion_keeps_the_maximal_isr(error: ErrorCode) -> None:
    async def scenario() -> None:
        clock = Clock()
        p = await expansion_with_unknown_outcome(clock)
        change = p.pending_isr
        assert change is not None
        # The first attempt was committed: the retry is refused.
        p.on_alter_partition_result(change, error, -1)
        await append(p, 2)  # leader end 6; 2 is still at 4
        assert p.high_watermark == 4, "the HW moved without a replica the controller has in the ISR"
        assert p.maximal_isr == (1, 2)
        clock.now += 10_000
        assert p.prepare_isr_expansion() is None and p.prepare_isr_shrink() is None  # still in flight
        # Metadata shows the outcome: the pending state gives way to it.
        p.apply_metadata(PartitionRegistration((1, 2, 3), (1, 2), 1, 0, 1), TopicConfig.of({}), LIVE, "")
        assert p.pending_isr is None and p.isr == (1, 2)
        p.update_follower_fetch_state(2, 6, 20)
        assert p.high_watermark == 6

    run(scenario())


@pytest.mark.parametrize("error", [ErrorCode.OPERATION_NOT_ATTEMPTED, ErrorCode.INELIGIBLE_REPLICA])
def test_not_attempted_or_ineligible_resets_to_the_committed_isr(error: ErrorCode) -> None:
    async def scenario() -> None:
        clock = Clock()
        p = await expansion_with_unknown_outcome(clock)
        change = p.pending_isr
        assert change is not None
        p.on_alter_partition_result(change, error, -1)
        assert p.pending_isr is None and p.maximal_isr == (1,)
        await append(p, 2)
        assert p.high_watermark == 6

    run(scenario())
