"""KIP-966: the leader's high watermark does not advance while the ISR is smaller
than min.insync.replicas (records written then are not exposed to consumers)."""

from __future__ import annotations

from raftlog.node.metadata.image import PartitionRegistration
from raftlog.topic_config import TopicConfig
from tests.broker.harness import run
from tests.broker.test_partition_unit import LIVE, append, leader_partition

MIN_ISR_2 = {"min.insync.replicas": "2"}


def test_hw_does_not_advance_below_min_isr() -> None:
    async def scenario() -> None:
        p = leader_partition(isr=(1, 2), configs=MIN_ISR_2)
        await append(p, 3)
        p.update_follower_fetch_state(2, 3, 20)
        assert p.high_watermark == 3
        # The ISR shrinks to the leader alone: acks=1 writes go on, the HW stays.
        p.apply_metadata(PartitionRegistration((1, 2, 3), (1,), 1, 0, 1), TopicConfig.of(MIN_ISR_2), LIVE, "")
        await append(p, 2)
        assert p.log_end_offset == 5
        assert p.high_watermark == 3, "the HW advanced with the ISR below min.insync.replicas"
        # Back to two in-sync replicas: the HW catches up.
        p.update_follower_fetch_state(2, 5, 20)
        assert p.high_watermark == 3
        p.apply_metadata(PartitionRegistration((1, 2, 3), (1, 2), 1, 0, 2), TopicConfig.of(MIN_ISR_2), LIVE, "")
        assert p.high_watermark == 5

    run(scenario())
